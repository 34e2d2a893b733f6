/* Indirect functions defined here, called from main.c. */
#include "ifunc.h"

#if defined(__x86_64__)
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
#elif defined(__aarch64__)
/* gcc 12 has no target_clones for AArch64: the same exported STT_GNU_IFUNC symbol, written
   out, its resolver choosing by the AT_HWCAP bits glibc (and the loader) pass it. */
#include <stdint.h>
#include <sys/auxv.h>
static long sum_squares_loop(const int *v, int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++)
        sum += (long)v[i] * v[i];
    return sum;
}
__attribute__((target("+nosimd"))) static long sum_squares_scalar(const int *v, int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++)
        sum += (long)v[i] * v[i];
    return sum;
}
static long (*resolve_sum_squares(uint64_t hwcap))(const int *, int)
{
    return (hwcap & HWCAP_ASIMD) ? sum_squares_loop : sum_squares_scalar;
}
long sum_squares(const int *v, int n) __attribute__((ifunc("resolve_sum_squares")));
#else
#error "ifunc: no clones for this architecture"
#endif

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

#if defined(__x86_64__)
/* An explicit `ifunc` whose resolver picks by a CPU feature. */
static const char *name_avx2(void) { return "avx2"; }
static const char *name_generic(void) { return "generic"; }

static const char *(*resolve_cpu_name(void))(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? name_avx2 : name_generic;
}
#elif defined(__aarch64__)
/* An explicit `ifunc` whose resolver picks by a CPU feature, from its arguments as glibc
   passes them on AArch64: AT_HWCAP with _IFUNC_ARG_HWCAP set, and an __ifunc_arg_t holding
   AT_HWCAP and AT_HWCAP2. A loader passing anything else picks a name main.c tells apart. */
#include <sys/ifunc.h>
static const char *name_asimd(void) { return "asimd"; }
static const char *name_generic(void) { return "generic"; }
static const char *name_bad_arguments(void) { return "resolver arguments differ from getauxval"; }

static const char *(*resolve_cpu_name(uint64_t hwcap, const __ifunc_arg_t *arg))(void)
{
    if (!(hwcap & _IFUNC_ARG_HWCAP) || arg == 0 || arg->_size < sizeof *arg
        || arg->_hwcap != (hwcap & ~_IFUNC_ARG_HWCAP) || arg->_hwcap != getauxval(AT_HWCAP)
        || arg->_hwcap2 != getauxval(AT_HWCAP2))
        return name_bad_arguments;
    return (hwcap & HWCAP_ASIMD) ? name_asimd : name_generic;
}
#endif
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
