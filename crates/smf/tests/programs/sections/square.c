#include "registry.h"

int squared_calls = 7;
const char square_banner[] = "square";

static int square(int x) { squared_calls++; return x * x; }

COMMAND(square_entry, square);
WEIGHT(w3, 11);
