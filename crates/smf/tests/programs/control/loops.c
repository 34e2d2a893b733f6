/* Array loops that the optimiser likes to vectorise, unroll or rewrite,
 * plus a computed-goto interpreter (GNU labels-as-values). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "control.h"

#define N 1024

static int32_t a[N], b[N], c[N];
static uint8_t bytes[N * 4];
static double da[N], db[N];

static unsigned long mix_u(unsigned long h, unsigned long v)
{
    return (h ^ v) * 0x100000001b3ul;
}

static long dot(const int32_t *x, const int32_t *y, int n)
{
    long s = 0;
    for (int i = 0; i < n; i++)
        s += (long)x[i] * y[i];
    return s;
}

static void saxpy(int32_t *restrict out, const int32_t *restrict x, const int32_t *restrict y,
                  int k, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = k * x[i] + y[i];
}

static void prefix_sum(int32_t *x, int n)
{
    for (int i = 1; i < n; i++)
        x[i] += x[i - 1];
}

static int count_matches(const uint8_t *p, size_t n, uint8_t v)
{
    int count = 0;
    for (size_t i = 0; i < n; i++)
        count += p[i] == v;
    return count;
}

static void matmul(int n, const double *x, const double *y, double *out)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++)
                s += x[i * n + k] * y[k * n + j];
            out[i * n + j] = s;
        }
}

static int vla_work(int n)
{
    int tmp[n];
    for (int i = 0; i < n; i++)
        tmp[i] = (i * 37) % n;
    int acc = 0;
    for (int i = 0; i < n; i++)
        acc += tmp[tmp[i]];
    return acc;
}

/* direct-threaded bytecode using computed goto */
static long threaded(const unsigned char *code)
{
    static const void *const labels[] = { &&op_halt, &&op_inc, &&op_dbl, &&op_dec, &&op_loop };
    long acc = 0, counter = 10;
    const unsigned char *pc = code;
#define NEXT goto *labels[*pc++]
    NEXT;
op_inc:
    acc += 1;
    NEXT;
op_dbl:
    acc *= 2;
    NEXT;
op_dec:
    acc -= 3;
    NEXT;
op_loop:
    if (--counter > 0) {
        pc = code;
    }
    NEXT;
op_halt:
    return acc;
#undef NEXT
}

unsigned long test_loops(void)
{
    unsigned long h = 0;
    printf("== loops ==\n");
    for (int i = 0; i < N; i++) {
        a[i] = (i * 7919) % 1000 - 500;
        b[i] = (i * 104729) % 777 - 388;
    }
    long d = dot(a, b, N);
    printf("  dot=%ld\n", d);
    h = mix_u(h, (unsigned long)d);
    saxpy(c, a, b, 3, N);
    long s = 0;
    for (int i = 0; i < N; i++)
        s += c[i];
    printf("  saxpy sum=%ld\n", s);
    h = mix_u(h, (unsigned long)s);
    prefix_sum(c, N);
    printf("  prefix c[100]=%d c[1023]=%d\n", c[100], c[N - 1]);
    h = mix_u(h, (unsigned long)(unsigned)c[N - 1]);
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * i + i / 3);
    int m = count_matches(bytes, sizeof bytes, 42);
    printf("  matches of 42: %d\n", m);
    h = mix_u(h, (unsigned long)m);
    /* reverse in place and compare with memcmp */
    uint8_t copy[64];
    memcpy(copy, bytes, 64);
    for (int i = 0; i < 32; i++) {
        uint8_t t = copy[i];
        copy[i] = copy[63 - i];
        copy[63 - i] = t;
    }
    int same = 1;
    for (int i = 0; i < 64; i++)
        same &= copy[i] == bytes[63 - i];
    printf("  reverse ok: %d\n", same);
    /* 24x24 double matmul with exactly representable values */
    const int n = 24;
    for (int i = 0; i < n * n; i++) {
        da[i] = (double)((i % 13) - 6);
        db[i] = (double)((i % 7) - 3) * 0.5;
    }
    static double out[24 * 24];
    matmul(n, da, db, out);
    double trace = 0;
    for (int i = 0; i < n; i++)
        trace += out[i * n + i];
    printf("  matmul trace=%.1f out[5]=%.1f\n", trace, out[5]);
    h = mix_u(h, (unsigned long)(long)trace);
    int v = vla_work(97);
    printf("  vla_work=%d\n", v);
    h = mix_u(h, (unsigned long)v);
    static const unsigned char code[] = { 1, 1, 2, 3, 2, 4, 0 };
    long t = threaded(code);
    printf("  threaded=%ld\n", t);
    h = mix_u(h, (unsigned long)t);
    /* unsigned overflow arithmetic in a hot loop */
    uint32_t x = 2463534242u;
    uint32_t acc = 0;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        acc += x >> 7;
    }
    printf("  xorshift acc=%u last=%u\n", acc, x);
    h = mix_u(h, acc);
    printf("  loops hash=%lu\n", h);
    return h;
}
