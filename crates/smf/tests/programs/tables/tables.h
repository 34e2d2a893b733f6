#ifndef TABLES_H
#define TABLES_H

typedef int (*binop_fn)(int, int);

/* ops.c */
int op_add(int a, int b);
int op_sub(int a, int b);
int op_mul(int a, int b);
int op_div(int a, int b);
int op_mod(int a, int b);
int op_max(int a, int b);
int op_min(int a, int b);
int op_xor(int a, int b);
extern binop_fn hooks[6];          /* writable function pointer table */
extern const binop_fn *const hook_alias; /* pointer into hooks[2] */

struct shape {
    const char *name;
    int sides;
    const struct shape *next;      /* static linked list in data */
    binop_fn area_op;
};
extern const struct shape shape_triangle;
extern struct shape shape_ring_a;  /* circular, writable */

/* data.c */
extern const char *const names[];
extern const unsigned names_count;
extern char *words[];
extern const unsigned words_count;
extern const char *const grid[4][3];
extern const char *const *const grid_rows[4];
extern const char *greeting_tail;  /* points into the middle of a literal */

#endif
