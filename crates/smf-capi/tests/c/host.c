/* Loads a module through smf.h, calls it through smf_sym and smf_current, reloads a
 * rebuilt version and checks the new code runs with the state kept; errors name the file.
 * Usage: host LIB.smf V2.smf BAD.smf */
#include "check.h"

static int in_list(const smf_report *report, int list, const char *name) {
    size_t i;
    for (i = 0; i < smf_report_count(report, list); i++) {
        if (strcmp(smf_report_name(report, list, i), name) == 0) {
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    smf_registry *registry;
    smf_module *module, *again, *now;
    smf_report *report;
    long_fn version_v1, bump, version;
    uint8_t hash[32];

    CHECK(argc == 4);
    registry = smf_registry_new();
    CHECK(registry != NULL);
    CHECK(smf_error() == NULL);

    /* Errors: a missing file, a file that is not a module, NULL arguments. */
    CHECK(smf_load(registry, "/nonexistent/dir/missing.smf") == NULL);
    expect_error("missing file", "/nonexistent/dir/missing.smf", NULL);
    CHECK(smf_load(registry, argv[3]) == NULL);
    expect_error("bad file", argv[3], NULL);
    CHECK(smf_load(NULL, argv[1]) == NULL);
    expect_error("NULL registry", "smf_load", "registry is NULL");
    CHECK(smf_load(registry, NULL) == NULL);
    expect_error("NULL path", "smf_load", "path is NULL");

    module = smf_load(registry, argv[1]);
    CHECK(module != NULL);
    CHECK(smf_module_is_reloadable(module) == 1);
    CHECK(strstr(smf_module_name(module), "lib.smf") != NULL);
    CHECK(smf_module_size(module) > 0 && smf_module_base(module) != NULL);
    CHECK(smf_module_hash(module, hash) == 0);
    again = smf_load(registry, argv[1]);
    CHECK(again != NULL && smf_module_base(again) == smf_module_base(module));
    smf_module_release(again);

    CHECK(smf_sym(module, "missing_function") == NULL);
    expect_error("missing symbol", "lib.smf", "missing_function");
    CHECK(smf_current(registry, argv[1], "missing_function") == NULL);
    expect_error("missing symbol (current)", "lib.smf", "missing_function");

    version_v1 = as_fn(smf_sym(module, "version"));
    CHECK(version_v1() == 1);
    bump = as_fn(smf_current(registry, argv[1], "bump"));
    version = as_fn(smf_current(registry, argv[1], "version"));
    CHECK(smf_current(registry, argv[1], "bump") == (void *)*(void **)&bump);
    CHECK(version() == 1);
    CHECK(bump() == 1);
    CHECK(bump() == 2);
    CHECK(bump() == 3);

    /* The rebuilt module replaces the file by rename, as a build does. */
    CHECK(rename(argv[2], argv[1]) == 0);
    report = smf_reload_with_report(registry, argv[1]);
    CHECK(report != NULL);
    printf("%s\n", smf_report_text(report));
    CHECK(smf_report_version(report) == 2);
    CHECK(smf_report_unchanged(report) == 0);
    CHECK(in_list(report, SMF_REPORT_CHANGED, "version"));
    CHECK(in_list(report, SMF_REPORT_ADDED, "extra"));
    CHECK(in_list(report, SMF_REPORT_KEPT, "counter"));
    CHECK(!in_list(report, SMF_REPORT_CHANGED, "bump"));
    CHECK(smf_report_name(report, SMF_REPORT_ADDED, 99) == NULL);
    expect_error("report index", "smf_report_name", "index 99");
    now = smf_report_module(report);
    CHECK(now != NULL && as_fn(smf_sym(now, "version"))() == 2);
    smf_module_release(now);
    smf_report_free(report);

    /* The same addresses reach the new code; the state carried over. */
    CHECK(version() == 2);
    CHECK(bump() == 4);
    CHECK(as_fn(smf_current(registry, argv[1], "extra"))() == 42);
    /* The reference from smf_load still holds the first version. */
    CHECK(version_v1() == 1);
    /* Unchanged file: a no-op. */
    CHECK(smf_reload(registry, argv[1]) == 0);
    CHECK(version() == 2 && bump() == 5);
    now = smf_get(registry, argv[1]);
    CHECK(now != NULL && as_fn(smf_sym(now, "version"))() == 2);
    smf_module_release(now);

    smf_module_release(module);
    CHECK(smf_unload(registry, argv[1]) == 1);
    CHECK(smf_unload(registry, argv[1]) == 0);
    CHECK(smf_reload(registry, argv[1]) == -1);
    expect_error("reload after unload", "lib.smf", NULL);
    /* A smf_current address stays callable until the registry is freed. */
    CHECK(version() == 2);
    smf_registry_free(registry);
    smf_registry_free(NULL);
    smf_module_release(NULL);
    printf("ok\n");
    return 0;
}
