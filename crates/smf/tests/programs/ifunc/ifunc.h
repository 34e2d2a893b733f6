long sum_squares(const int *v, int n);
int scale(int x);
const char *cpu_name(void);
int resolver_call_count(void);
