#include "registry.h"

/* Other data of the same kinds between this file's entries and the next file's: the
 * entries of one name must still be laid out back to back. */
int doubled_calls = 1;
const char double_banner[] = "double";
/* An absolute pointer in writable data, as `commands` has: placed among them unless kept apart. */
const char *double_alias = double_banner + 1;

static int twice(int x) { doubled_calls++; return 2 * x; }
static int quadruple(int x) { doubled_calls++; return 4 * x; }

COMMAND(twice_entry, twice);
COMMAND(quadruple_entry, quadruple);
WEIGHT(w1, 3);
WEIGHT(w2, 5);
