/* Exercises libc functions and libc data objects (stdout, stderr, errno). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long checksum = 0;

static void mix(unsigned long v)
{
    checksum = checksum * 1099511628211ul + v + 0x9e3779b9ul;
}

static void mix_str(const char *s)
{
    while (*s)
        mix((unsigned char)*s++);
}

/* ---------- stdout / stderr ---------- */
static void test_streams(void)
{
    fprintf(stdout, "== streams ==\n");
    fprintf(stderr, "this line goes to stderr (not compared)\n");
    fputs("fputs to stdout\n", stdout);
    puts("puts to stdout");
    putchar('c');
    putchar('\n');
    fwrite("fwrite 12345\n", 1, 13, stdout);
    fprintf(stderr, "stderr number %d\n", 42);
    fflush(stderr);
    mix(1);
}

/* ---------- errno ---------- */
static void test_errno(void)
{
    printf("== errno ==\n");
    errno = 0;
    long v = strtol("999999999999999999999999999", NULL, 10);
    printf("strtol overflow: value==LONG_MAX:%d errno==ERANGE:%d msg=%s\n",
           v == LONG_MAX, errno == ERANGE, strerror(errno));
    mix((unsigned long)(errno == ERANGE));

    errno = 0;
    FILE *f = fopen("/nonexistent-smf-dir/missing-file.txt", "r");
    int e = errno;
    printf("fopen missing: null:%d errno==ENOENT:%d msg=%s\n",
           f == NULL, e == ENOENT, strerror(e));
    if (f)
        fclose(f);
    mix((unsigned long)(e == ENOENT) * 3);
    mix_str(strerror(e));

    errno = 0;
    char *end;
    double d = strtod("1e99999", &end);
    printf("strtod overflow: inf:%d errno==ERANGE:%d rest='%s'\n",
           d > 1e308, errno == ERANGE, end);
    errno = 0;
    unsigned long u = strtoul("12345xyz", &end, 10);
    printf("strtoul partial: %lu rest='%s' errno=%d\n", u, end, errno);
    mix(u);
}

/* ---------- qsort / bsearch ---------- */
struct person {
    char name[16];
    int age;
    double score;
};

static int qsort_calls;

static int cmp_person(const void *a, const void *b)
{
    const struct person *pa = a, *pb = b;
    qsort_calls++;
    if (pa->age != pb->age)
        return pa->age < pb->age ? -1 : 1;
    return strcmp(pa->name, pb->name);
}

static int cmp_int_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_sort(void)
{
    printf("== qsort/bsearch ==\n");
    struct person people[] = {
        { "mallory", 41, 3.5 }, { "alice", 30, 9.25 }, { "bob", 25, 7.0 },
        { "carol", 30, 8.5 },   { "dave", 19, 1.75 },  { "eve", 41, 6.0 },
        { "trent", 55, 2.25 },  { "peggy", 25, 4.5 },  { "victor", 33, 5.0 },
        { "walter", 19, 0.5 },
    };
    size_t n = sizeof people / sizeof people[0];
    qsort(people, n, sizeof people[0], cmp_person);
    for (size_t i = 0; i < n; i++) {
        printf("  %-8s %3d %6.2f\n", people[i].name, people[i].age, people[i].score);
        mix_str(people[i].name);
        mix((unsigned long)people[i].age);
    }
    printf("comparator was called: %s\n", qsort_calls > 0 ? "yes" : "no");

    struct person key = { "eve", 41, 0 };
    struct person *found = bsearch(&key, people, n, sizeof people[0], cmp_person);
    printf("bsearch eve: %s score=%.2f\n", found ? found->name : "(none)",
           found ? found->score : -1.0);
    struct person key2 = { "zed", 41, 0 };
    found = bsearch(&key2, people, n, sizeof people[0], cmp_person);
    printf("bsearch zed: %s\n", found ? "found" : "not found");

    int nums[64];
    unsigned seed = 12345;
    for (int i = 0; i < 64; i++) {
        seed = seed * 1103515245u + 12345u;
        nums[i] = (int)((seed >> 16) % 1000);
    }
    qsort(nums, 64, sizeof nums[0], cmp_int_desc);
    printf("ints desc:");
    for (int i = 0; i < 64; i += 8)
        printf(" %d", nums[i]);
    printf("\n");
    for (int i = 0; i < 64; i++)
        mix((unsigned long)nums[i]);
    int want = nums[17];
    int *hit = bsearch(&want, nums, 64, sizeof nums[0], cmp_int_desc);
    printf("bsearch int %d: %s\n", want, hit && *hit == want ? "found" : "missing");

    const char *words[] = { "pear", "apple", "fig", "banana", "cherry", "date" };
    qsort(words, 6, sizeof words[0], cmp_str);
    printf("words:");
    for (int i = 0; i < 6; i++)
        printf(" %s", words[i]);
    printf("\n");
}

/* ---------- snprintf ---------- */
static void test_snprintf(void)
{
    char buf[256];
    int n;
    printf("== snprintf ==\n");
    n = snprintf(buf, sizeof buf, "[%d|%i|%u|%x|%X|%o]", -42, 17, 4000000000u, 0xbeef, 0xcafe, 8);
    printf("%s (%d)\n", buf, n); mix_str(buf);
    n = snprintf(buf, sizeof buf, "[%5d|%-5d|%05d|%+d|% d|%*d|%-*d]", 42, 42, 42, 42, 42, 6, 7, 6, 7);
    printf("%s (%d)\n", buf, n); mix_str(buf);
    n = snprintf(buf, sizeof buf, "[%ld|%lld|%lu|%zu|%hd|%hhd|%jd]", -1234567890123L,
                 9223372036854775807LL, 18446744073709551615UL, (size_t)99, (short)-300,
                 (signed char)-7, (intmax_t)-5);
    printf("%s (%d)\n", buf, n); mix_str(buf);
    n = snprintf(buf, sizeof buf, "[%f|%.2f|%e|%.3E|%g|%G|%10.4f|%-10.1f|%a]", 3.14159265358979,
                 2.0 / 3.0, 123456.789, 0.000123456, 1e-10, 1e20, -1.5, 2.25, 1.0);
    printf("%s (%d)\n", buf, n); mix_str(buf);
    n = snprintf(buf, sizeof buf, "[%s|%10s|%-10s|%.3s|%c|%%|%#x|%#o|%.0f]", "str", "right",
                 "left", "truncate", 'Z', 255, 8, 2.5);
    printf("%s (%d)\n", buf, n); mix_str(buf);
    char small[8];
    const char *volatile too_long = "this is far too long";
    n = snprintf(small, sizeof small, "%s", too_long);
    printf("truncated: '%s' would-be=%d\n", small, n);
    mix((unsigned long)n);
    int pos = 0;
    n = snprintf(buf, sizeof buf, "abc%ndef", &pos);
    printf("%%n: %s pos=%d\n", buf, pos);
    mix((unsigned long)pos);
}

/* ---------- strings ---------- */
static void test_strings(void)
{
    printf("== strings ==\n");
    char text[] = "alpha, beta;gamma  delta,,epsilon;";
    int count = 0;
    for (char *tok = strtok(text, ",; "); tok; tok = strtok(NULL, ",; ")) {
        printf("  tok[%d]=%s\n", count++, tok);
        mix_str(tok);
    }
    char line[] = "k1=v1&k2=v2&k3=v3";
    char *save1, *save2;
    for (char *pair = strtok_r(line, "&", &save1); pair; pair = strtok_r(NULL, "&", &save1)) {
        char *k = strtok_r(pair, "=", &save2);
        char *v = strtok_r(NULL, "=", &save2);
        printf("  %s -> %s\n", k, v);
    }

    char buf[64];
    memset(buf, 'x', sizeof buf);
    memcpy(buf, "0123456789", 10);
    buf[20] = '\0';
    printf("memset/memcpy: %s\n", buf);
    memmove(buf + 2, buf, 10);   /* overlapping forward */
    printf("memmove fwd: %s\n", buf);
    memmove(buf, buf + 5, 10);   /* overlapping backward */
    printf("memmove back: %s\n", buf);
    mix_str(buf);
    printf("memcmp: %d %d %d\n", memcmp("abc", "abd", 3) < 0, memcmp("abc", "abc", 3) == 0,
           memcmp("b", "a", 1) > 0);
    printf("strchr: %s strrchr: %s strstr: %s\n", strchr("hello.world.c", '.'),
           strrchr("hello.world.c", '.'), strstr("needle in haystack", "hay"));
    printf("strlen: %zu strspn: %zu strcspn: %zu\n", strlen("seventeen chars!!"),
           strspn("aaabbbccc", "ab"), strcspn("hello world", " "));
    char up[32];
    const char *src = "Mixed Case 123";
    size_t i;
    for (i = 0; src[i]; i++)
        up[i] = (char)toupper((unsigned char)src[i]);
    up[i] = 0;
    printf("toupper: %s isdigit(7)=%d isalpha(7)=%d\n", up, !!isdigit('7'), !!isalpha('7'));
    mix_str(up);
    char *dup = strdup("duplicated string");
    printf("strdup: %s\n", dup);
    free(dup);
    int a, b;
    char word[16];
    int got = sscanf("12 34 word", "%d %d %15s", &a, &b, word);
    printf("sscanf: %d -> %d %d %s\n", got, a, b, word);
    mix((unsigned long)(a * b));
    printf("atoi: %d atol: %ld strtod: %.3f\n", atoi("-77"), atol("123456789"), strtod("2.718281828", NULL));
}

/* ---------- heap ---------- */
static void test_heap(void)
{
    printf("== heap ==\n");
    enum { NBLK = 500 };
    unsigned char *blocks[NBLK];
    size_t sizes[NBLK];
    unsigned seed = 777;
    for (int i = 0; i < NBLK; i++) {
        seed = seed * 1664525u + 1013904223u;
        sizes[i] = 1 + (seed >> 8) % 2000;
        blocks[i] = malloc(sizes[i]);
        if (!blocks[i]) {
            printf("malloc failed\n");
            exit(3);
        }
        memset(blocks[i], i & 0xff, sizes[i]);
    }
    /* free every third, realloc the rest bigger */
    for (int i = 0; i < NBLK; i++) {
        if (i % 3 == 0) {
            free(blocks[i]);
            blocks[i] = NULL;
            continue;
        }
        size_t ns = sizes[i] * 2 + 16;
        unsigned char *p = realloc(blocks[i], ns);
        if (!p) {
            printf("realloc failed\n");
            exit(3);
        }
        memset(p + sizes[i], 0xab, ns - sizes[i]);
        blocks[i] = p;
        sizes[i] = ns;
    }
    unsigned long sum = 0;
    size_t live = 0, bytes = 0;
    for (int i = 0; i < NBLK; i++) {
        if (!blocks[i])
            continue;
        live++;
        bytes += sizes[i];
        for (size_t j = 0; j < sizes[i]; j += 7)
            sum += blocks[i][j];
        free(blocks[i]);
    }
    printf("live=%zu bytes=%zu sum=%lu\n", live, bytes, sum);
    mix(sum);
    int *zeros = calloc(1000, sizeof *zeros);
    int zs = 0;
    for (int i = 0; i < 1000; i++)
        zs += zeros[i];
    printf("calloc zero sum=%d\n", zs);
    free(zeros);
}

/* ---------- env / files / atexit ---------- */
static void at_exit_handler(void)
{
    printf("atexit handler ran\n");
}

static void at_exit_handler2(void)
{
    printf("second atexit handler ran first (LIFO)\n");
}

static void test_env_and_files(void)
{
    printf("== env/files ==\n");
    const char *v = getenv("SMF_TEST_SURELY_UNSET_VARIABLE_XYZ");
    printf("getenv absent: %s\n", v ? "present" : "NULL");
    mix(v == NULL);

    FILE *t = tmpfile();
    if (t) {
        for (int i = 0; i < 10; i++)
            fprintf(t, "line %d value %d\n", i, i * i);
        rewind(t);
        char line[64];
        long total = 0;
        int lines = 0;
        while (fgets(line, sizeof line, t)) {
            int idx, val;
            if (sscanf(line, "line %d value %d", &idx, &val) == 2)
                total += val;
            lines++;
        }
        printf("tmpfile: lines=%d total=%ld\n", lines, total);
        mix((unsigned long)total);
        fclose(t);
    } else {
        printf("tmpfile: unavailable\n");
    }

    char membuf[128];
    FILE *m = fmemopen(membuf, sizeof membuf, "w");
    if (m) {
        fprintf(m, "fmemopen %d %s", 99, "ok");
        fclose(m);
        printf("%s\n", membuf);
    }
}

/* vfprintf through a wrapper */
static void logf_stdout(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("log: ", stdout);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
}

int main(void)
{
    atexit(at_exit_handler);
    atexit(at_exit_handler2);
    test_streams();
    test_errno();
    test_sort();
    test_snprintf();
    test_strings();
    test_heap();
    test_env_and_files();
    logf_stdout("%s=%d\n", "answer", 42);
    printf("checksum: %lu\n", checksum);
    return (int)(checksum & 0x7f);
}
