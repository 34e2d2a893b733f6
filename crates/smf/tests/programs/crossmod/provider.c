/* provider: the exporting side of the cross-module test.
 * Exports two functions, a mutable counter behind a function, a global
 * int variable and a function returning a string from read-only data. */

int provider_value = 42;

static long provider_counter;

static const char provider_label[] = "provider";

int provider_add(int a, int b)
{
    return a + b;
}

long provider_counter_bump(void)
{
    return ++provider_counter;
}

const char *provider_name(void)
{
    return provider_label;
}
