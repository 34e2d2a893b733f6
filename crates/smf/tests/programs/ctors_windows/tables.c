/* The second object of ctors_windows: its own entries in the constructor lists and the C
 * runtime's tables, which the packer must merge with main.cpp's in the order GNU ld lays
 * them out. */
#include <stdio.h>

static int seen;
static void note(const char *what) { seen++; printf("   %s\n", what); }

__attribute__((constructor)) static void c_ctor(void) { note("tables.c constructor (default priority)"); }
__attribute__((constructor(101))) static void c_ctor_101(void) { note("tables.c constructor(101)"); }
__attribute__((constructor(2000))) static void c_ctor_2000(void) { note("tables.c constructor(2000)"); }
__attribute__((destructor)) static void c_dtor(void) { puts("tables.c destructor (default priority)"); }
__attribute__((destructor(150))) static void c_dtor_150(void) { puts("tables.c destructor(150)"); }
static void c_xc_u(void) { note("tables.c .CRT$XCU initialiser"); }
static void c_xc_a(void) { note("tables.c .CRT$XCAA initialiser"); }
static int c_xi_m(void) { note("tables.c .CRT$XIM initialiser"); return 0; }
__attribute__((section(".CRT$XCU"), used)) static void (*c_xc_u_entry)(void) = c_xc_u;
__attribute__((section(".CRT$XCAA"), used)) static void (*c_xc_a_entry)(void) = c_xc_a;
__attribute__((section(".CRT$XIM"), used)) static int (*c_xi_m_entry)(void) = c_xi_m;

void more_report(void) { printf("tables.c saw %d of its initialisers before main\n", seen); }
