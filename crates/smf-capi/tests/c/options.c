/* Load options through smf.h: limits refuse a module beyond them, a required signature
 * refuses an unsigned module, bad arguments are named.
 * Usage: options LIB.smf SIGNED.smf PUBLIC_KEY_FILE (SIGNED.smf.sig signs SIGNED.smf) */
#include "check.h"

int main(int argc, char **argv) {
    smf_options *options;
    smf_registry *registry;
    smf_module *module;

    CHECK(argc == 4);
    options = smf_options_new();
    CHECK(options != NULL);
    CHECK(smf_options_set_verify_hash(options, 1) == 0);
    CHECK(smf_options_set_limit(options, 99, 1) == -1);
    expect_error("unknown limit", "smf_options_set_limit", "unknown limit 99");
    CHECK(smf_options_set_limit(options, SMF_LIMIT_SECTIONS, 1ull << 40) == -1);
    expect_error("limit too large", "smf_options_set_limit", "exceeds");
    CHECK(smf_options_require_signature(options, "/nonexistent/key.pub") == -1);
    expect_error("missing key file", "/nonexistent/key.pub", NULL);
    CHECK(smf_options_set_verify_hash(NULL, 1) == -1);
    expect_error("NULL options", "smf_options_set_verify_hash", "options is NULL");

    /* An image limit of one page: the module is refused, naming the file. */
    CHECK(smf_options_set_limit(options, SMF_LIMIT_IMAGE_SIZE, 1) == 0);
    registry = smf_registry_new_with_options(options);
    CHECK(registry != NULL);
    CHECK(smf_load(registry, argv[1]) == NULL);
    expect_error("image limit", "lib.smf", NULL);
    smf_registry_free(registry);

    /* Default limits again, and a trusted key: the unsigned module is refused. */
    smf_options_free(options);
    options = smf_options_new();
    CHECK(smf_options_require_signature(options, argv[3]) == 0);
    registry = smf_registry_new_with_options(options);
    smf_options_free(options);
    CHECK(smf_load(registry, argv[1]) == NULL);
    expect_error("unsigned", "lib.smf", NULL);
    module = smf_load(registry, argv[2]);
    CHECK(module != NULL);
    CHECK(as_fn(smf_sym(module, "version"))() == 1);
    smf_module_release(module);
    smf_registry_free(registry);

    /* Without the requirement it loads. */
    options = smf_options_new();
    CHECK(smf_options_set_map_file(options, 0) == 0);
    CHECK(smf_options_set_debugger(options, 0) == 0);
    registry = smf_registry_new_with_options(options);
    smf_options_free(options);
    module = smf_load(registry, argv[1]);
    CHECK(module != NULL);
    CHECK(as_fn(smf_sym(module, "version"))() == 1);
    smf_module_release(module);
    smf_registry_free(registry);
    printf("ok\n");
    return 0;
}
