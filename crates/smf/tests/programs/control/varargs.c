/* Variadic functions: va_list iteration, forwarding and va_copy. */
#include <stdio.h>
#include <string.h>
#include "control.h"

long sum_ints(int count, ...)
{
    va_list ap;
    long s = 0;
    va_start(ap, count);
    for (int i = 0; i < count; i++)
        s += va_arg(ap, int);
    va_end(ap);
    return s;
}

double mean_doubles(int count, ...)
{
    va_list ap;
    double s = 0;
    va_start(ap, count);
    for (int i = 0; i < count; i++)
        s += va_arg(ap, double);
    va_end(ap);
    return count ? s / count : 0.0;
}

/* formats twice using va_copy: once to measure, once for real */
int vformat_twice(char *buf, size_t size, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int need = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    int wrote = vsnprintf(buf, size, fmt, ap);
    return need == wrote ? wrote : -1;
}

int format_into(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vformat_twice(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* mixed-type list described by a type string */
static unsigned long mixed(const char *types, ...)
{
    va_list ap;
    unsigned long h = 1469598103934665603ul;
    va_start(ap, types);
    for (const char *t = types; *t; t++) {
        unsigned long v = 0;
        switch (*t) {
        case 'i': v = (unsigned long)va_arg(ap, int); break;
        case 'l': v = (unsigned long)va_arg(ap, long); break;
        case 'd': v = (unsigned long)(long)(va_arg(ap, double) * 1000.0); break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            v = strlen(s) * 131 + (unsigned char)s[0];
            break;
        }
        case 'p': v = va_arg(ap, void *) != NULL; break;
        }
        h = (h ^ v) * 1099511628211ul;
    }
    va_end(ap);
    return h;
}

/* walks a va_list twice by copying it up front */
static long max_and_min(int count, ...)
{
    va_list ap, again;
    va_start(ap, count);
    va_copy(again, ap);
    int mx = va_arg(ap, int);
    for (int i = 1; i < count; i++) {
        int v = va_arg(ap, int);
        if (v > mx)
            mx = v;
    }
    int mn = va_arg(again, int);
    for (int i = 1; i < count; i++) {
        int v = va_arg(again, int);
        if (v < mn)
            mn = v;
    }
    va_end(again);
    va_end(ap);
    return (long)mx * 1000 + mn;
}

int test_varargs(void)
{
    char buf[160];
    int total = 0;
    printf("== varargs ==\n");
    long s1 = sum_ints(0);
    long s2 = sum_ints(3, 1, 2, 3);
    long s3 = sum_ints(12, 1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, 1000);
    printf("  sum_ints: %ld %ld %ld\n", s1, s2, s3);
    total += (int)(s1 + s2 + s3);
    printf("  mean_doubles: %.4f %.4f\n", mean_doubles(4, 1.5, 2.5, 3.5, 4.5),
           mean_doubles(9, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.5));
    int n = format_into(buf, sizeof buf, "%s-%05d-%x-%.3f-%c%c", "fmt", 42, 48879, 2.0 / 7.0, 'o', 'k');
    printf("  format_into: '%s' (%d)\n", buf, n);
    total += n;
    n = format_into(buf, 12, "%s", "this will be truncated by the size limit");
    printf("  truncated: '%s' (%d)\n", buf, n);
    total += n;
    unsigned long h = mixed("ilsdip", 7, 123456789012L, "hello", 3.25, -9, (void *)buf);
    printf("  mixed hash: %lu\n", h);
    total += (int)(h & 0xffff);
    long mm = max_and_min(7, 5, -3, 99, 12, -40, 7, 0);
    printf("  max_and_min: %ld\n", mm);
    total += (int)mm;
    /* more args than registers: forces stack-passed varargs */
    long many = sum_ints(20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20);
    printf("  many: %ld\n", many);
    total += (int)many;
    return total;
}
