#ifndef MULTI_H
#define MULTI_H

#include <stddef.h>

/* trace.c */
extern char ctor_trace[128];
void trace_append(const char *s);

/* util.c */
extern int util_calls;
extern long global_accum;
int util_mix(int a, int b);
long util_fold(const int *v, size_t n);
unsigned long util_big_checksum(void);
void util_big_touch(size_t index, unsigned char value);
int page_aligned_ok(void);

/* weak.c */
int overridable(int x);       /* weak in weak.c, strong in util.c */
int weak_only(int x);         /* weak in weak.c, no strong override */
int weak_caller(int x);       /* calls both from inside weak.c */
extern void maybe_missing(void) __attribute__((weak)); /* never defined */

/* counter shared as a common symbol (see main.c / util.c) */
void bump_shared(int by);
int read_shared(void);

#endif
