/* The program of tests/source_lines.rs: lines marked `LINE:name` are found by the test. */
#include <stdio.h>
#include <string.h>

int deref(int *p);
int helper_sum(int n);

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "none";
    printf("mode %s\n", mode);
    fflush(stdout);
    if (strcmp(mode, "segv") == 0)
        return deref(NULL); /* LINE:deref-call */
    int total = helper_sum(10); /* LINE:sum-call */
    printf("total %d\n", total);
    return total & 0x7f;
}
