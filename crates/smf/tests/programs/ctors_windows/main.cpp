// Every way a mingw-w64 program gets code run before and after `main`, each printing when it
// runs, so that the order is the output: C++ global objects (with and without
// `init_priority`), `__attribute__((constructor(N)))` and `destructor(N)` functions, pointers
// placed by hand in the C runtime's tables `.CRT$XI*` (C initialisers), `.CRT$XC*` (C++
// initialisers) and `.CRT$XT*` (terminators), `atexit` handlers registered from a
// constructor and from `main`, and a function-local static. `tables.c` adds a second
// object's entries in the same sections. A native mingw-w64 program runs `.CRT$XI*`, then
// `.CRT$XC*` (msvcrt's start-up), then the `.ctors` list backwards (`__main`); it never runs
// its own `.CRT$XT*` (msvcrt.dll runs only the terminators of its own image).
#include <cstdio>
#include <cstdlib>

extern "C" void more_report(void);

static int step = 0;
static void say(const char *what) { std::printf("%2d %s\n", ++step, what); }

struct Global {
    const char *name;
    explicit Global(const char *n) : name(n) { say(name); }
    ~Global() { std::printf("~%s\n", name); }
};

Global plain_a("global a (default priority)");
Global early __attribute__((init_priority(150))) ("global early (init_priority 150)");
Global plain_b("global b (default priority)");
Global later __attribute__((init_priority(3000))) ("global later (init_priority 3000)");

__attribute__((constructor(101))) static void ctor_101() { say("constructor(101)"); }
__attribute__((constructor(2000))) static void ctor_2000() { say("constructor(2000)"); }
__attribute__((constructor)) static void ctor_default() { say("constructor (default priority)"); }
__attribute__((destructor(101))) static void dtor_101() { std::puts("destructor(101)"); }
__attribute__((destructor(2000))) static void dtor_2000() { std::puts("destructor(2000)"); }
__attribute__((destructor)) static void dtor_default() { std::puts("destructor (default priority)"); }

static void from_ctor_atexit() { std::puts("atexit handler registered by a constructor"); }
__attribute__((constructor(500))) static void registers() {
    say("constructor(500) registers an atexit handler");
    std::atexit(from_ctor_atexit);
}

typedef void (*initialiser)(void);
typedef int (*c_initialiser)(void);
static int xi_u() { say(".CRT$XIU initialiser"); return 0; }
static void xc_u() { say(".CRT$XCU initialiser"); }
static void xc_m() { say(".CRT$XCM initialiser"); }
static void xc_t() { say(".CRT$XCT initialiser"); }
static void xt_u() { std::puts(".CRT$XTU terminator"); }
__attribute__((section(".CRT$XIU"), used)) static c_initialiser xi_u_entry = xi_u;
__attribute__((section(".CRT$XCU"), used)) static initialiser xc_u_entry = xc_u;
__attribute__((section(".CRT$XCT"), used)) static initialiser xc_t_entry = xc_t;
__attribute__((section(".CRT$XCM"), used)) static initialiser xc_m_entry = xc_m;
// A null entry, which the runtime skips.
__attribute__((section(".CRT$XCU"), used)) static initialiser xc_null = nullptr;
__attribute__((section(".CRT$XTU"), used)) static initialiser xt_u_entry = xt_u;

static Global &lazy() {
    static Global instance("function-local static");
    return instance;
}

static void from_main_atexit() { std::puts("atexit handler registered by main"); }

int main() {
    say("main");
    more_report();
    std::atexit(from_main_atexit);
    lazy();
    std::fflush(stdout);
    return step;
}
