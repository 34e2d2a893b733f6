/* Arithmetic helpers plus function-pointer data that refers to them. */
#include <stddef.h>
#include "tables.h"

int op_add(int a, int b) { return a + b; }
int op_sub(int a, int b) { return a - b; }
int op_mul(int a, int b) { return a * b; }
int op_div(int a, int b) { return b ? a / b : 0; }
int op_mod(int a, int b) { return b ? a % b : 0; }
int op_max(int a, int b) { return a > b ? a : b; }
int op_min(int a, int b) { return a < b ? a : b; }
int op_xor(int a, int b) { return a ^ b; }

static int op_first(int a, int b) { (void)b; return a; }

binop_fn hooks[6] = { op_add, op_sub, op_mul, op_first, NULL, op_xor };
const binop_fn *const hook_alias = &hooks[2];

/* A static singly linked list in read-only data. */
static const struct shape shape_hexagon = { "hexagon", 6, NULL, op_mul };
static const struct shape shape_pentagon = { "pentagon", 5, &shape_hexagon, op_add };
static const struct shape shape_square = { "square", 4, &shape_pentagon, op_mul };
const struct shape shape_triangle = { "triangle", 3, &shape_square, op_first };

/* A circular list in writable data (forward references). */
extern struct shape shape_ring_b, shape_ring_c;
struct shape shape_ring_a = { "ring-a", 1, &shape_ring_b, op_add };
struct shape shape_ring_b = { "ring-b", 2, &shape_ring_c, op_sub };
struct shape shape_ring_c = { "ring-c", 3, &shape_ring_a, op_max };
