/* Thread-locals defined here and used from main.c too (general-dynamic across objects),
   static ones (local-dynamic), a zero-filled array (.tbss) and a pointer in .tdata. */
#include <stdio.h>
#include <string.h>

#include "tls.h"

__thread long counter = 100;          /* .tdata, reached from both objects */
_Thread_local int calls;              /* .tbss, C11 spelling */
static __thread char history[256];    /* .tbss, local-dynamic */
static __thread size_t history_len;
static __thread unsigned seed = 12345;
static const char default_tag[] = "none";
__thread const char *tag = default_tag; /* a pointer relocated in the template */

static unsigned next_random(void) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) & 0x7fff;
}

long bump(long by) {
    calls++;
    counter += by;
    if (history_len + 8 < sizeof history) {
        history_len += (size_t)snprintf(history + history_len, sizeof history - history_len, "%ld,", by);
    }
    return counter + (long)(next_random() % 7);
}

const char *history_text(void) { return history; }

int tls_calls(void) { return calls; }

unsigned current_seed(void) { return seed; }

void set_tag(const char *t) { tag = t; }

void *counter_address(void) { return &counter; }
