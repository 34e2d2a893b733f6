/* Types through smf.h, on modules compiled from C with -g: smf_sym_typed and
 * smf_current_typed check the caller's expectation, smf_type_of prints a type, and a reload
 * that changes the type of a function an smf_current address is linked to is refused
 * (nothing switches) unless the options say to report it.
 * Usage: types LIB.smf V2.smf (V2 changes `scale`'s second parameter from long to int) */
#include "check.h"

typedef long (*scale_fn)(long, long);

static scale_fn as_scale(void *address) {
    scale_fn f;
    CHECK(address != NULL);
    memcpy(&f, &address, sizeof f);
    return f;
}

/* Replaces the module file at path by the one at from, as a rebuild would (rename). */
static void install(const char *from, const char *path) {
    char tmp[4096];
    FILE *in, *out;
    char buffer[65536];
    size_t n;
    CHECK(strlen(path) + 5 < sizeof tmp);
    strcpy(tmp, path);
    strcat(tmp, ".new");
    in = fopen(from, "rb");
    out = fopen(tmp, "wb");
    CHECK(in != NULL && out != NULL);
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0) {
        CHECK(fwrite(buffer, 1, n, out) == n);
    }
    fclose(in);
    CHECK(fclose(out) == 0);
    CHECK(rename(tmp, path) == 0);
}

int main(int argc, char **argv) {
    smf_registry *registry;
    smf_options *options;
    smf_module *module;
    smf_report *report;
    scale_fn scale;
    char text[64];
    char original[4096];
    long n;

    CHECK(argc == 3);
    CHECK(strlen(argv[1]) + 6 < sizeof original);
    /* Keep version 1 to go back to. */
    strcpy(original, argv[1]);
    strcat(original, ".orig");
    install(argv[1], original);
    install(original, argv[1]);

    registry = smf_registry_new();
    module = smf_load(registry, argv[1]);
    CHECK(module != NULL);

    n = smf_type_of(module, "scale", text, sizeof text);
    CHECK(n > 0 && strcmp(text, "fn(i64, i64) -> i64") == 0);
    printf("scale: %s\n", text);
    CHECK(smf_type_of(module, "scale", text, 4) == n && strcmp(text, "fn(") == 0);
    CHECK(smf_type_of(module, "missing", text, sizeof text) == -1);
    expect_error("type of a missing symbol", "missing", NULL);

    /* The caller's expectation, in C's names or the module's. */
    CHECK(smf_sym_typed(module, "scale", "long (long, long)") == NULL);
    expect_error("C declarator syntax is not the text form", "smf_sym_typed", NULL);
    CHECK(as_scale(smf_sym_typed(module, "scale", "fn(long, long) -> long"))(6, 7) == 42);
    CHECK(as_scale(smf_sym_typed(module, "scale", "fn(i64, i64) -> i64"))(2, 3) == 6);
    CHECK(smf_sym_typed(module, "scale", "fn(int, long) -> long") == NULL);
    expect_error("wrong parameter", "`scale` is not of the type expected",
                 "expected fn(i32, i64) -> i64, the module has fn(i64, i64) -> i64");
    CHECK(smf_sym_typed(module, "scale", "fn(long, long") == NULL);
    expect_error("unparsable type", "smf_sym_typed", "fn(long, long");

    scale = as_scale(smf_current_typed(registry, argv[1], "scale", "fn(long, long) -> long"));
    CHECK(scale(4, 5) == 20);
    CHECK(smf_current_typed(registry, argv[1], "scale", "fn(long) -> long") == NULL);
    expect_error("wrong arity (current)", "`scale` is not of the type expected", NULL);

    /* Version 2 changes scale's type: refused while the address is linked to it. */
    install(argv[2], argv[1]);
    CHECK(smf_reload(registry, argv[1]) == -1);
    expect_error("reload changing a linked type", "cannot replace `scale`",
                 "fn(i64, i64) -> i64 to fn(i64, i32) -> i64");
    CHECK(scale(4, 5) == 20); /* still version 1 */
    smf_module_release(module);
    smf_registry_free(registry);

    /* With SMF_TYPE_CHANGES_REPORT it goes through and the report says so. */
    install(original, argv[1]);
    options = smf_options_new();
    CHECK(smf_options_set_type_changes(options, 7) == -1);
    expect_error("bad policy", "smf_options_set_type_changes", "unknown policy 7");
    CHECK(smf_options_set_type_changes(options, SMF_TYPE_CHANGES_REPORT) == 0);
    registry = smf_registry_new_with_options(options);
    smf_options_free(options);
    module = smf_load(registry, argv[1]);
    CHECK(module != NULL);
    scale = as_scale(smf_current(registry, argv[1], "scale"));
    CHECK(scale(4, 5) == 20);
    install(argv[2], argv[1]);
    report = smf_reload_with_report(registry, argv[1]);
    CHECK(report != NULL);
    CHECK(strstr(smf_report_text(report), "type changed: scale") != NULL);
    printf("%s\n", smf_report_text(report));
    smf_report_free(report);
    smf_module_release(module);
    smf_registry_free(registry);
    printf("ok\n");
    return 0;
}
