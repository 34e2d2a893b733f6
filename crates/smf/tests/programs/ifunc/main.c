#include <stdio.h>
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif
#include "ifunc.h"

/* Function pointers in data (relocated pointer tables) and taken in code. */
static long (*const sums[])(const int *, int) = { sum_squares };
static int (*scales[])(int) = { scale };

int main(void)
{
    int v[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 };
    int n = sizeof v / sizeof v[0];
    long direct = sum_squares(v, n);
    long (*volatile fp)(const int *, int) = sum_squares;
    printf("sum_squares direct %ld, pointer %ld, table %ld\n", direct, fp(v, n), sums[0](v, n));
    printf("pointers equal: %d %d\n", fp == sums[0], (void *)scales[0] == (void *)scale);
    int (*volatile sp)(int) = scale;
    printf("scale direct %d, pointer %d, table %d\n", scale(14), sp(14), scales[0](14));
#if defined(__x86_64__)
    __builtin_cpu_init();
    printf("cpu_name %s (avx2 %s)\n", cpu_name(),
           __builtin_cpu_supports("avx2") ? "yes" : "no");
#elif defined(__aarch64__)
    printf("cpu_name %s (asimd %s)\n", cpu_name(),
           (getauxval(AT_HWCAP) & HWCAP_ASIMD) ? "yes" : "no");
#endif
    int calls = resolver_call_count();
    printf("count %d\n", calls);
    return (int)((direct + scale(5) + calls) & 0x7f);
}
