/* Helpers called from other files; owns the big bss array. */
#include <stdint.h>
#include <stdio.h>
#include "multi.h"

/* common symbol: also declared without initializer in main.c (-fcommon) */
int shared_counter;

int util_calls;          /* bss, written from several files */
long global_accum = 0;   /* updated by constructors and main */

#define BIG_SIZE (16u * 1024u * 1024u + 8192u)
static unsigned char big_array[BIG_SIZE];

/* page-aligned writable object */
struct page_obj {
    int tag;
    char payload[100];
};
struct page_obj page_object __attribute__((aligned(4096))) = { 0x5a5a, "page" };

static int rotate_mix(int a, int b)
{
    unsigned ua = (unsigned)a, ub = (unsigned)b;
    return (int)(((ua << 5) | (ua >> 27)) ^ (ub * 2654435761u));
}

int util_mix(int a, int b)
{
    util_calls++;
    return rotate_mix(a, b) & 0x7fffffff;
}

long util_fold(const int *v, size_t n)
{
    long acc = 0;
    util_calls++;
    for (size_t i = 0; i < n; i++)
        acc = acc * 31 + v[i];
    global_accum += acc % 1000;
    return acc;
}

void util_big_touch(size_t index, unsigned char value)
{
    big_array[index % BIG_SIZE] = value;
}

unsigned long util_big_checksum(void)
{
    unsigned long sum = 0, nonzero = 0;
    for (size_t i = 0; i < BIG_SIZE; i++) {
        sum += (unsigned long)big_array[i] * (i % 251 + 1);
        nonzero += big_array[i] != 0;
    }
    util_calls++;
    return sum * 1000 + nonzero;
}

int page_aligned_ok(void)
{
    return ((uintptr_t)&page_object & 4095u) == 0 && page_object.tag == 0x5a5a;
}

/* strong definition overriding the weak one in weak.c */
int overridable(int x)
{
    return x * 100 + 1;
}

void bump_shared(int by)
{
    shared_counter += by;
}
