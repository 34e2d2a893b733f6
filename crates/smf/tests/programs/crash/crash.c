/* Dies in module code on purpose, in the way argv[1] names, for the crash-report, gdb and
   perf-map tests (tests/runtime.rs). Every function is kept out of line so that it is a
   frame of its own with its own symbol. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

__attribute__((noinline)) int crash_here(volatile int *p) {
    *p = 42; /* SIGSEGV for a null p */
    return *p;
}

__attribute__((noinline)) int divide_by(volatile int d) {
    return 1000 / d; /* SIGFPE for d == 0 */
}

__attribute__((noinline)) void trap_here(void) {
#if defined(__aarch64__)
    /* udf: SIGILL. (__builtin_trap is brk there, which raises SIGTRAP.) */
    __asm__ volatile("udf #0");
#else
    __builtin_trap(); /* ud2: SIGILL */
#endif
}

__attribute__((noinline)) int read_past_end_of_file(void) {
    FILE *file = tmpfile(); /* empty: a page mapped from it has no bytes behind it */
    volatile char *page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fileno(file), 0);
    if (page == MAP_FAILED) return -1;
    return page[0]; /* SIGBUS */
}

__attribute__((noinline)) int reached_breakpoint(int x) {
    asm volatile("" ::: "memory");
    return x * 3;
}

__attribute__((noinline)) int call_chain(int depth, const char *mode) {
    if (depth > 0) return call_chain(depth - 1, mode) + 1;
    if (strcmp(mode, "segv") == 0) return crash_here(NULL);
    if (strcmp(mode, "fpe") == 0) return divide_by(0);
    if (strcmp(mode, "bus") == 0) return read_past_end_of_file();
    if (strcmp(mode, "ill") == 0) trap_here();
    if (strcmp(mode, "raise") == 0) raise(SIGSEGV);
    return reached_breakpoint(depth + 14);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "none";
    printf("mode %s\n", mode);
    fflush(stdout);
    int result = call_chain(3, mode);
    printf("result %d\n", result);
    return result & 0x7f;
}
