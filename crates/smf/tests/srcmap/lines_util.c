/* Functions of tests/source_lines.rs's program, in a second file. */
volatile int sink;

int deref(int *p)
{
    sink = 1;
    return *p + 1; /* LINE:crash */
}

int helper_sum(int n)
{ /* LINE:sum-open */
    int total = 0;
    for (int i = 0; i < n; i++)
        total += i * sink; /* LINE:loop */
    return total + n;
}
