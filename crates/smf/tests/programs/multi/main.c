/* Entry point: exercises cross-file calls, common, weak symbols, bss,
 * alignment and the constructor trace. */
#include <stdio.h>
#include <string.h>
#include "multi.h"

/* second tentative definition of the common symbol (see util.c) */
int shared_counter;

static int local_table[8] = { 3, 1, 4, 1, 5, 9, 2, 6 };

static int square_plus(int v)
{
    return v * v + 1;
}

int read_shared(void)
{
    return shared_counter;
}

int main(int argc, char **argv)
{
    (void)argv;
    unsigned long check = 0;

    printf("ctor trace: %s\n", ctor_trace);
    printf("accum after ctors: %ld\n", global_accum);
    printf("argc: %d\n", argc);

    /* cross-file calls */
    int m = util_mix(12345, 678);
    printf("util_mix: %d\n", m);
    for (int i = 0; i < 8; i++)
        local_table[i] = square_plus(local_table[i]);
    long f = util_fold(local_table, 8);
    printf("util_fold: %ld\n", f);
    check += (unsigned long)m + (unsigned long)f;

    /* common symbol written from two files */
    shared_counter = 5;
    bump_shared(10);
    shared_counter *= 2;
    bump_shared(1);
    printf("shared_counter: %d\n", read_shared());
    check += (unsigned long)shared_counter;

    /* weak symbols */
    printf("overridable(7): %d\n", overridable(7));
    printf("weak_only(7): %d\n", weak_only(7));
    printf("weak_caller(4): %d\n", weak_caller(4));
    check += (unsigned long)(overridable(7) + weak_only(7) + weak_caller(4));
    if (maybe_missing) {
        printf("maybe_missing: present\n");
        maybe_missing();
        check += 1000;
    } else {
        printf("maybe_missing: absent\n");
    }

    /* big bss array */
    unsigned long before = util_big_checksum();
    printf("big before: %lu\n", before);
    util_big_touch(0, 1);
    util_big_touch(4095, 2);
    util_big_touch(4096, 3);
    util_big_touch(1u << 20, 4);
    util_big_touch(8u << 20, 5);
    util_big_touch(16u << 20, 6);
    util_big_touch(16u * 1024u * 1024u + 8191u, 7);
    unsigned long after = util_big_checksum();
    printf("big after: %lu\n", after);
    check += after;

    /* alignment */
    printf("aligned: %s\n", page_aligned_ok() ? "yes" : "no");
    check += page_aligned_ok() ? 17 : 0;

    global_accum += 100;
    printf("util_calls: %d\n", util_calls);
    printf("accum: %ld\n", global_accum);
    check += (unsigned long)util_calls + (unsigned long)global_accum;
    check += strlen(ctor_trace);
    printf("checksum: %lu\n", check);
    return (int)(check & 0x7f);
}
