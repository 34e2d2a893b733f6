/* Constructors and destructors with priorities. */
#include <stdio.h>
#include <string.h>
#include "multi.h"

char ctor_trace[128];
static size_t trace_len;

void trace_append(const char *s)
{
    size_t n = strlen(s);
    if (trace_len + n + 1 < sizeof ctor_trace) {
        memcpy(ctor_trace + trace_len, s, n + 1);
        trace_len += n;
    }
}

__attribute__((constructor(101))) static void ctor_first(void)
{
    trace_append("[c101]");
    global_accum += 1;
}

__attribute__((constructor(102))) static void ctor_second(void)
{
    trace_append("[c102]");
    global_accum *= 10;
}

__attribute__((constructor)) static void ctor_plain(void)
{
    trace_append("[plain]");
    global_accum += 7;
}

__attribute__((destructor(101))) static void dtor_101(void)
{
    printf("destructor 101: accum=%ld shared=%d\n", global_accum, read_shared());
}

__attribute__((destructor(200))) static void dtor_200(void)
{
    printf("destructor 200: util_calls=%d\n", util_calls);
}
