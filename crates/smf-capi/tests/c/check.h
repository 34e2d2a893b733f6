/* Shared by the C tests of smf.h: a check that names the failed condition and the last
 * error, and a way to call through an address returned as void * (as with dlsym). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smf.h"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            const char *e_ = smf_error();                                                  \
            fprintf(stderr, "%s:%d: check failed: %s (smf_error: %s)\n", __FILE__,         \
                    __LINE__, #cond, e_ ? e_ : "none");                                    \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

typedef long (*long_fn)(void);

/* POSIX allows object pointers to hold function addresses (dlsym relies on it); ISO C
 * does not convert between them, so copy the bits. */
static inline long_fn as_fn(void *address) {
    long_fn f;
    CHECK(address != NULL);
    memcpy(&f, &address, sizeof f);
    return f;
}

/* The last error must exist and contain each of the given strings. */
static inline void expect_error(const char *what, const char *part1, const char *part2) {
    const char *e = smf_error();
    if (e == NULL || strstr(e, part1) == NULL || (part2 && strstr(e, part2) == NULL)) {
        fprintf(stderr, "%s: expected an error naming '%s' and '%s', got: %s\n", what, part1,
                part2 ? part2 : "", e ? e : "no error");
        exit(1);
    }
    printf("%s: %s\n", what, e);
    /* Read once, the error is cleared, as dlerror's. */
    CHECK(smf_error() == NULL);
}
