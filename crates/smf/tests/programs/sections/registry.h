/* A registry built by the linker: each file adds entries to sections named `commands`
 * (pointers: a writable section under -fPIC) and `weights` (plain constants: read-only),
 * and main walks them between __start_NAME and __stop_NAME. */
struct command {
    const char *name;
    int (*run)(int);
};

#define COMMAND(id, fn) \
    __attribute__((section("commands"), used)) static const struct command id = {#fn, fn}

#define WEIGHT(id, value) \
    __attribute__((section("weights"), used)) static const int id = (value)

extern const struct command __start_commands[], __stop_commands[];
extern const int __start_weights[], __stop_weights[];
