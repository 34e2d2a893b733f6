/* Several threads call through smf_current (pinned) and look up symbols while the main
 * thread reloads the module back and forth; each thread sees only its own errors.
 * Usage: threads LIB.smf V1.smf V2.smf */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define THREADS 4
#define CALLS 20000
#define RELOADS 40

static smf_registry *registry;
static smf_module *module;
static const char *lib;

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg, i;
    char missing[64];
    long_fn version = as_fn(smf_current(registry, lib, "version"));
    long_fn bump = as_fn(smf_current(registry, lib, "bump"));
    snprintf(missing, sizeof missing, "missing_in_thread_%ld", id);
    for (i = 0; i < CALLS; i++) {
        smf_pin_guard *pin = smf_pin(registry);
        long v;
        CHECK(pin != NULL);
        v = version();
        CHECK(v == 1 || v == 2);
        CHECK(bump() > 0);
        CHECK(smf_unpin(pin) == 0);
        if (i % 1000 == 0) {
            const char *e;
            CHECK(smf_sym(module, missing) == NULL);
            e = smf_error();
            CHECK(e != NULL && strstr(e, missing) != NULL);
        }
    }
    return NULL;
}

/* Installs src as lib by copy then rename: the loaded file is never rewritten in place. */
static void install(const char *src) {
    char tmp[4096], buf[65536];
    FILE *in, *out;
    size_t n;
    snprintf(tmp, sizeof tmp, "%s.tmp", lib);
    in = fopen(src, "rb");
    out = fopen(tmp, "wb");
    CHECK(in != NULL && out != NULL);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        CHECK(fwrite(buf, 1, n, out) == n);
    }
    fclose(in);
    CHECK(fclose(out) == 0);
    CHECK(rename(tmp, lib) == 0);
}

int main(int argc, char **argv) {
    pthread_t threads[THREADS];
    long i, before;
    long_fn bump;
    CHECK(argc == 4);
    lib = argv[1];
    registry = smf_registry_new();
    module = smf_load(registry, lib);
    CHECK(module != NULL);
    for (i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i) == 0);
    }
    for (i = 0; i < RELOADS; i++) {
        install(i % 2 == 0 ? argv[3] : argv[2]);
        CHECK(smf_reload(registry, lib) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
    }
    /* The counter survived every reload: one more reload, and it continues. */
    bump = as_fn(smf_current(registry, lib, "bump"));
    before = bump();
    install(argv[3]);
    CHECK(smf_reload(registry, lib) == 0);
    install(argv[2]);
    CHECK(smf_reload(registry, lib) == 0);
    CHECK(bump() == before + 1);
    printf("counter %ld after %d reloads\n", before, RELOADS + 2);
    CHECK(smf_collect(registry) == 0);
    smf_module_release(module);
    smf_registry_free(registry);
    printf("ok\n");
    return 0;
}
