/* String tables in data. */
#include <stddef.h>
#include "tables.h"

const char *const names[] = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
};
const unsigned names_count = sizeof names / sizeof names[0];

static char word_buf_a[] = "mutable";
static char word_buf_b[] = "buffer";
char *words[] = { word_buf_a, "literal", word_buf_b, "another", NULL };
const unsigned words_count = 4;

const char *const grid[4][3] = {
    { "north-west", "north", "north-east" },
    { "west", "centre", "east" },
    { "south-west", "south", "south-east" },
    { "up", "down", "" },
};
const char *const *const grid_rows[4] = { grid[3], grid[2], grid[1], grid[0] };

const char *greeting_tail = &"Hello, relocated world!"[7];
