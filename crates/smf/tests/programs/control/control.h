#ifndef CONTROL_H
#define CONTROL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

/* exceptions.c: a small try/throw built on setjmp/longjmp */
#define MAX_TRY_DEPTH 16
extern jmp_buf *try_stack[MAX_TRY_DEPTH];
extern int try_depth;
extern int throw_count;
void throw_error(int code) __attribute__((noreturn));
int test_exceptions(void);

/* varargs.c */
long sum_ints(int count, ...);
double mean_doubles(int count, ...);
int format_into(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vformat_twice(char *buf, size_t size, const char *fmt, va_list ap);
int test_varargs(void);

/* recurse.c */
unsigned long ackermann(unsigned long m, unsigned long n);
int queens(int n);
int test_recursion(void);

/* loops.c */
unsigned long test_loops(void);

#endif
