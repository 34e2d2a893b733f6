#include <stdio.h>
struct item { unsigned id, weight; };
__attribute__((section("rs_items"), used)) static const struct item from_c = {3, 100};
unsigned rs_items_total(void);
int main(void) { unsigned t = rs_items_total(); printf("total %u\n", t); return t & 0x7f; }
