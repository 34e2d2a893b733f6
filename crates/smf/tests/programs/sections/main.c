#include <stdio.h>
#include "registry.h"

extern int doubled_calls, squared_calls;
extern const char double_banner[], square_banner[];
extern const char *double_alias;

int main(void) {
    int sum = 0;
    /* Natively the order follows the link order of the objects, and so it does in the module. */
    for (const struct command *c = __start_commands; c < __stop_commands; c++) {
        int r = c->run(7);
        printf("%s(7) = %d\n", c->name, r);
        sum += r;
    }
    printf("%d commands\n", (int)(__stop_commands - __start_commands));
    int weight = 0;
    for (const int *w = __start_weights; w < __stop_weights; w++)
        weight += 3 * *w;  /* the order of entries within one object is the compiler's */
    printf("%d weights, total %d\n", (int)(__stop_weights - __start_weights), weight);
    printf("%s (%s) %d, %s %d\n", double_banner, double_alias, doubled_calls, square_banner, squared_calls);
    return (sum + weight + doubled_calls + squared_calls) & 0x7f;
}
