/* control: setjmp/longjmp, varargs, recursion, optimiser-sensitive loops. */
#include <stdio.h>
#include "control.h"

int main(void)
{
    unsigned long check = 0;
    check += (unsigned long)test_exceptions();
    check = check * 31 + (unsigned long)test_varargs();
    check = check * 31 + (unsigned long)test_recursion();
    check = check * 31 + test_loops();
    check ^= check >> 32;
    check ^= check >> 16;
    check ^= check >> 8;
    printf("checksum: %lu\n", check & 0x7f);
    return (int)(check & 0x7f);
}
