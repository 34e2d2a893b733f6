/* Eight threads run at once (a barrier makes them overlap); each must see its own copy of
   every thread-local, starting from the template, while main's copy stays untouched. The
   results are printed by main in thread order, so the output is deterministic. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tls.h"

#define THREADS 8

struct result {
    long last;
    long counter;
    int calls;
    unsigned seed;
    char history[256];
    char tag[32];
    int distinct_address;
};

static pthread_barrier_t barrier;
static struct result results[THREADS];
static void *main_counter;
static __thread int local_only = 7; /* used only in this object */

static void *worker(void *arg) {
    long id = (long)arg;
    struct result *r = &results[id];
    char tag_text[32];
    snprintf(tag_text, sizeof tag_text, "worker-%ld", id);
    pthread_barrier_wait(&barrier);
    r->distinct_address = counter_address() != main_counter;
    set_tag(tag_text);
    for (long i = 0; i <= id; i++) r->last = bump(id * 10 + i);
    local_only += (int)id;
    pthread_barrier_wait(&barrier); /* all threads hold their values at once here */
    r->counter = counter + local_only;
    r->calls = calls;
    r->seed = current_seed();
    snprintf(r->history, sizeof r->history, "%s", history_text());
    snprintf(r->tag, sizeof r->tag, "%s", tag);
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    main_counter = counter_address();
    printf("main before: counter=%ld calls=%d tag=%s\n", counter, calls, tag);
    bump(1);
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    long sum = 0;
    for (int i = 0; i < THREADS; i++) {
        struct result *r = &results[i];
        printf("thread %d: last=%ld counter=%ld calls=%d seed=%u tag=%s own=%d history=%s\n", i, r->last,
               r->counter, r->calls, r->seed, r->tag, r->distinct_address, r->history);
        sum += r->counter + r->calls;
    }
    printf("main after: counter=%ld calls=%d tag=%s local_only=%d history=%s\n", counter, calls, tag,
           local_only, history_text());
    printf("sum %ld\n", sum);
    return (int)(sum & 0x7f);
}
