/* consumer: imports everything from provider.c through extern declarations. */
#include <stdio.h>
#include <string.h>

extern int provider_value;
extern int provider_add(int a, int b);
extern long provider_counter_bump(void);
extern const char *provider_name(void);

/* On a fresh process (provider counter == 0, provider_value == 42):
 *   sum_{i<n} (i + provider_value) + sum_{k=1..n} k * 3 + strlen(name) * 1000
 * consumer_run(5) = (10 + 210) + 45 + 8000 = 8265 */
long consumer_run(int n)
{
    long acc = 0;
    for (int i = 0; i < n; i++) {
        acc += provider_add(i, provider_value);
        acc += provider_counter_bump() * 3;
    }
    acc += (long)strlen(provider_name()) * 1000;
    return acc;
}

int main(void)
{
    long first = consumer_run(5);
    printf("consumer_run(5) = %ld\n", first);
    printf("provider_name() = %s\n", provider_name());
    printf("provider_value = %d\n", provider_value);
    provider_value = 100;  /* write through the extern declaration */
    long second = consumer_run(3);
    printf("after provider_value=100: consumer_run(3) = %ld\n", second);
    long bump = provider_counter_bump();
    printf("counter now %ld\n", bump);
    long total = first + second * 2 + bump;
    printf("total = %ld\n", total);
    return (int)(total & 0x7f);
}
