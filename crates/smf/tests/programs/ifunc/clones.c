/* Indirect functions defined here, called from main.c. */
#include "ifunc.h"

/* gcc emits one clone per target, a resolver that picks one with libgcc's
   __builtin_cpu_supports, and an STT_GNU_IFUNC symbol `sum_squares`. */
__attribute__((target_clones("avx2", "default")))
long sum_squares(const int *v, int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++)
        sum += (long)v[i] * v[i];
    return sum;
}

/* An explicit `ifunc` whose resolver reads a global flag: initialised data of the module,
   which the resolver sees as relocated (the flag is reached through a pointer in relro). */
int use_fast_scale = 1;
int *const scale_flag = &use_fast_scale;

static int scale_slow(int x) { int r = 0; for (int i = 0; i < 3; i++) r += x; return r; }
static int scale_fast(int x) { return x * 3; }
static int scale_wrong(int x) { return -x; }

static int (*resolve_scale(void))(int)
{
    if (scale_flag == 0)
        return scale_wrong;
    return *scale_flag ? scale_fast : scale_slow;
}
int scale(int x) __attribute__((ifunc("resolve_scale")));

/* An explicit `ifunc` whose resolver picks by a CPU feature. */
static const char *name_avx2(void) { return "avx2"; }
static const char *name_generic(void) { return "generic"; }

static const char *(*resolve_cpu_name(void))(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? name_avx2 : name_generic;
}
const char *cpu_name(void) __attribute__((ifunc("resolve_cpu_name")));

int resolver_calls;
static int count_impl(void) { return resolver_calls; }
static int (*resolve_count(void))(void)
{
    resolver_calls++;
    return count_impl;
}
/* Called only from this file: a local (static) IFUNC. */
static int count(void) __attribute__((ifunc("resolve_count")));
int resolver_call_count(void) { return count() + count(); }
