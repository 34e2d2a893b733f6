/* Nested setjmp/longjmp across several stack frames. */
#include <stdio.h>
#include <stdlib.h>
#include "control.h"

jmp_buf *try_stack[MAX_TRY_DEPTH];
int try_depth;
int throw_count;

void throw_error(int code)
{
    throw_count++;
    if (try_depth <= 0) {
        printf("uncaught error %d\n", code);
        fflush(stdout);
        _Exit(99);
    }
    longjmp(*try_stack[try_depth - 1], code);
}

static int leaf(int depth, int fail_at)
{
    if (depth == fail_at)
        throw_error(100 + depth);
    return depth * 2;
}

static int middle(int depth, int fail_at)
{
    int local[8];
    for (int i = 0; i < 8; i++)
        local[i] = i * depth;
    int r = leaf(depth, fail_at);
    for (int i = 0; i < 8; i++)
        r += local[i];
    if (depth < 5)
        r += middle(depth + 1, fail_at);
    return r;
}

/* An inner "try" that catches only even codes and rethrows others. */
static int guarded(int fail_at)
{
    jmp_buf env;
    volatile int attempts = 0;
    volatile int result = -1;
    try_stack[try_depth++] = &env;
    int code = setjmp(env);
    if (code == 0) {
        attempts++;
        result = middle(0, fail_at);
        try_depth--;
        return result;
    }
    /* caught */
    try_depth--;
    attempts++;
    if (code % 2 != 0) {
        printf("    inner: rethrowing %d after %d attempt(s)\n", code, attempts);
        throw_error(code + 1000);
    }
    printf("    inner: caught %d (attempts=%d)\n", code, attempts);
    return -code;
}

int test_exceptions(void)
{
    volatile int total = 0;  /* updated between setjmp and longjmp */
    printf("== exceptions ==\n");
    for (int fail_at = -1; fail_at <= 5; fail_at++) {
        jmp_buf outer;
        volatile int preserved = 1000 + fail_at;  /* modified after setjmp */
        volatile int stage = 0;
        try_stack[try_depth++] = &outer;
        int code = setjmp(outer);
        if (code == 0) {
            stage = 1;
            preserved += 5;
            int r = guarded(fail_at);
            stage = 2;
            try_depth--;
            printf("  fail_at=%d: result=%d preserved=%d stage=%d\n", fail_at, r,
                   preserved, stage);
            total += r;
        } else {
            try_depth--;
            printf("  fail_at=%d: outer caught %d preserved=%d stage=%d depth=%d\n", fail_at,
                   code, preserved, stage, try_depth);
            total += code + preserved;
        }
    }

    /* a longjmp that unwinds through many recursive frames */
    jmp_buf deep;
    volatile int counter = 0;
    try_stack[try_depth++] = &deep;
    int code = setjmp(deep);
    if (code == 0) {
        counter = 1;
        middle(0, 4);
        printf("  not reached\n");
    } else {
        try_depth--;
        counter += code;
        printf("  deep unwind: code=%d counter=%d\n", code, counter);
    }
    total += counter;
    printf("  throws=%d depth=%d total=%d\n", throw_count, try_depth, total);
    return total;
}
