/* Weak definitions: one overridden by util.c, one not. */
#include "multi.h"

__attribute__((weak)) int overridable(int x)
{
    return -x; /* must never run: util.c provides a strong version */
}

__attribute__((weak)) int weak_only(int x)
{
    return x * 3 + 2;
}

int weak_caller(int x)
{
    return overridable(x) + weak_only(x);
}
