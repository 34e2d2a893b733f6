#include <stddef.h>

extern __thread long counter;
extern _Thread_local int calls;
extern __thread const char *tag;

long bump(long by);
const char *history_text(void);
int tls_calls(void);
unsigned current_seed(void);
void set_tag(const char *t);
void *counter_address(void);
