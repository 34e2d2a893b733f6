/* Dispatch tables, switch jump tables and a string-keyed state machine. */
#include <stdio.h>
#include <string.h>
#include "tables.h"

static unsigned long checksum;

static void mix(unsigned long v)
{
    checksum = (checksum ^ v) * 0x100000001b3ul;
}

static void mix_str(const char *s)
{
    while (*s)
        mix((unsigned char)*s++);
}

/* ---- const dispatch table with names and function pointers ---- */
static const struct {
    const char *name;
    int (*fn)(int, int);
} ops[] = {
    { "add", op_add }, { "sub", op_sub }, { "mul", op_mul }, { "div", op_div },
    { "mod", op_mod }, { "max", op_max }, { "min", op_min }, { "xor", op_xor },
};

static int dispatch(const char *name, int a, int b, int *ok)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, name) == 0) {
            *ok = 1;
            return ops[i].fn(a, b);
        }
    }
    *ok = 0;
    return 0;
}

static void test_dispatch(void)
{
    static const char *const program[] = { "add", "mul", "sub", "nop", "div", "mod", "max", "min", "xor" };
    printf("== dispatch ==\n");
    int acc = 7;
    for (size_t i = 0; i < sizeof program / sizeof program[0]; i++) {
        int ok;
        int r = dispatch(program[i], acc, (int)i + 3, &ok);
        if (!ok) {
            printf("  %s: unknown op\n", program[i]);
            continue;
        }
        printf("  %s(%d, %d) = %d\n", program[i], acc, (int)i + 3, r);
        acc = r;
        mix((unsigned long)(unsigned)r);
    }
    /* function pointer identity across files */
    printf("  ops[2].fn == op_mul: %s\n", ops[2].fn == op_mul ? "yes" : "no");
    printf("  ops[2].fn == hooks[2]: %s\n", ops[2].fn == hooks[2] ? "yes" : "no");
}

/* ---- writable function pointer table ---- */
static int local_sq(int a, int b) { return a * a + b; }

static void test_hooks(void)
{
    printf("== hooks ==\n");
    for (int round = 0; round < 3; round++) {
        int acc = 0;
        for (int i = 0; i < 6; i++) {
            if (hooks[i])
                acc = hooks[i](acc + i, i + 1);
        }
        printf("  round %d: acc=%d\n", round, acc);
        mix((unsigned long)(unsigned)acc);
        /* rotate the table and plug the hole */
        binop_fn first = hooks[0];
        memmove(&hooks[0], &hooks[1], 5 * sizeof hooks[0]);
        hooks[5] = first;
        for (int i = 0; i < 6; i++)
            if (!hooks[i])
                hooks[i] = round == 0 ? local_sq : op_min;
    }
    printf("  *hook_alias(6,7) = %d\n", (*hook_alias)(6, 7));
    mix((unsigned long)(*hook_alias)(6, 7));
}

/* ---- string tables ---- */
static void test_strings(void)
{
    printf("== strings ==\n");
    for (unsigned i = 0; i < names_count; i++) {
        printf("%s%s", i ? " " : "  ", names[(i * 7) % names_count]);
        mix_str(names[i]);
    }
    printf("\n");
    /* modify the non-const words table */
    words[0][0] = 'M';
    words[1] = words[3];
    words[2][5] = 'R';
    for (unsigned i = 0; words[i]; i++) {
        printf("  words[%u]=%s\n", i, words[i]);
        mix_str(words[i]);
    }
    printf("  words_count=%u\n", words_count);
    for (int r = 0; r < 4; r++) {
        printf(" ");
        for (int c = 0; c < 3; c++)
            printf(" [%s]", grid[r][c]);
        printf("\n");
    }
    for (int r = 0; r < 4; r++) {
        printf("  reversed row %d: %s/%s\n", r, grid_rows[r][0], grid_rows[r][2]);
        mix_str(grid_rows[r][1]);
    }
    printf("  greeting tail: %s\n", greeting_tail);
    mix_str(greeting_tail);
}

/* ---- linked structures in data ---- */
static void test_lists(void)
{
    printf("== lists ==\n");
    int total = 0;
    for (const struct shape *s = &shape_triangle; s; s = s->next) {
        int v = s->area_op(s->sides, s->sides + 1);
        printf("  %s sides=%d op=%d\n", s->name, s->sides, v);
        total += v;
        mix_str(s->name);
    }
    printf("  total=%d\n", total);
    struct shape *r = &shape_ring_a;
    int acc = 1;
    for (int i = 0; i < 10; i++) {
        acc = r->area_op(acc, r->sides * 3);
        r->sides++;
        r = (struct shape *)r->next;
    }
    printf("  ring: stopped at %s acc=%d sides=%d/%d/%d\n", r->name, acc, shape_ring_a.sides,
           shape_ring_a.next->sides, shape_ring_a.next->next->sides);
    printf("  ring closes: %s\n", shape_ring_a.next->next->next == &shape_ring_a ? "yes" : "no");
    mix((unsigned long)(unsigned)acc);
}

/* ---- dense switches (jump tables) ---- */
static int classify(int c)
{
    switch (c) {
    case 0: return 11;
    case 1: return 23;
    case 2: return 5;
    case 3: return 87;
    case 4: return 42;
    case 5: return 9;
    case 6: return 77;
    case 7: return 13;
    case 8: return 61;
    case 9: return 30;
    case 10: return 2;
    case 11: return 99;
    case 12: return 45;
    case 13: return 18;
    case 14: return 71;
    case 15: return 64;
    case 16: return 3;
    case 17: return 58;
    case 18: return 36;
    case 19: return 27;
    default: return -1;
    }
}

static const char *opname(unsigned char op)
{
    switch (op) {
    case 'a': return "alpha";
    case 'b': return "bravo";
    case 'c': return "charlie";
    case 'd': return "delta";
    case 'e': return "echo";
    case 'f': return "foxtrot";
    case 'g': return "golf";
    case 'h': return "hotel";
    case 'i': return "india";
    case 'j': return "juliett";
    case 'k': return "kilo";
    case 'l': return "lima";
    case 'm': return "mike";
    case 'n': return "november";
    case 'o': return "oscar";
    case 'p': return "papa";
    default: return "?";
    }
}

/* a tiny register machine whose decoder is a dense switch */
static int run_machine(const unsigned char *code, int n)
{
    int reg[4] = { 0, 0, 0, 0 };
    int pc = 0, steps = 0;
    while (pc < n && steps < 1000) {
        unsigned char op = code[pc] >> 4, arg = code[pc] & 15;
        steps++;
        switch (op) {
        case 0: reg[0] = arg; break;
        case 1: reg[1] = arg; break;
        case 2: reg[0] += reg[1]; break;
        case 3: reg[0] -= reg[1]; break;
        case 4: reg[0] *= arg; break;
        case 5: reg[2] = reg[0]; break;
        case 6: reg[0] = reg[2]; break;
        case 7: reg[3] += reg[0]; break;
        case 8: if (reg[1]) { reg[1]--; pc = arg; continue; } break;
        case 9: reg[0] ^= arg; break;
        case 10: reg[0] <<= 1; break;
        case 11: reg[0] >>= 1; break;
        case 12: reg[1] += arg; break;
        case 13: reg[3] ^= reg[2]; break;
        case 14: reg[0] = ~reg[0]; break;
        case 15: return reg[3];
        }
        pc++;
    }
    return reg[3] + 1000 * steps;
}

static void test_switch(void)
{
    printf("== switch ==\n");
    unsigned s = 0;
    for (int i = -2; i < 24; i++)
        s = s * 3u + (unsigned)classify(i);
    printf("  classify chain: %u\n", s);
    mix((unsigned long)s);
    const char *msg = "hidden-message-kop";
    printf(" ");
    for (const char *p = msg; *p; p++)
        printf(" %s", opname((unsigned char)*p));
    printf("\n");
    static const unsigned char code[] = {
        0x03, /* r0 = 3 */
        0x15, /* r1 = 5 */
        0x42, /* r0 *= 2  <- loop target 2 */
        0x70, /* r3 += r0 */
        0x91, /* r0 ^= 1 */
        0x82, /* if r1: r1--, goto 2 */
        0x50, /* r2 = r0 */
        0xd0, /* r3 ^= r2 */
        0xa0, /* r0 <<= 1 */
        0x70, /* r3 += r0 */
        0xf0, /* halt */
    };
    int r = run_machine(code, (int)sizeof code);
    printf("  machine result: %d\n", r);
    mix((unsigned long)r);
}

/* ---- string-keyed state machine ---- */
struct transition {
    const char *from;
    const char *event;
    const char *to;
};

static const struct transition transitions[] = {
    { "idle", "coin", "ready" },
    { "ready", "coin", "ready" },
    { "ready", "push", "vending" },
    { "vending", "done", "idle" },
    { "vending", "jam", "broken" },
    { "broken", "kick", "idle" },
    { "broken", "repair", "maintenance" },
    { "maintenance", "done", "idle" },
    { "idle", "push", "idle" },
};

static const char *step(const char *state, const char *event)
{
    for (size_t i = 0; i < sizeof transitions / sizeof transitions[0]; i++)
        if (!strcmp(transitions[i].from, state) && !strcmp(transitions[i].event, event))
            return transitions[i].to;
    return NULL;
}

static void test_state_machine(void)
{
    printf("== state machine ==\n");
    static const char *const events[] = {
        "push", "coin", "coin", "push", "jam", "repair", "done", "coin",
        "push", "done", "fly", "coin", "push", "jam", "kick",
    };
    const char *state = "idle";
    int visits[5] = { 0 };
    static const char *const state_names[5] = { "idle", "ready", "vending", "broken", "maintenance" };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        const char *next = step(state, events[i]);
        if (!next) {
            printf("  %-11s --%s--> (rejected)\n", state, events[i]);
            mix(77);
            continue;
        }
        printf("  %-11s --%s--> %s\n", state, events[i], next);
        state = next;
        for (int k = 0; k < 5; k++)
            if (!strcmp(state_names[k], state))
                visits[k]++;
        mix_str(state);
    }
    printf("  visits:");
    for (int k = 0; k < 5; k++)
        printf(" %s=%d", state_names[k], visits[k]);
    printf("\n  final: %s\n", state);
}

int main(void)
{
    test_dispatch();
    test_hooks();
    test_strings();
    test_lists();
    test_switch();
    test_state_machine();
    unsigned long folded = checksum ^ (checksum >> 29) ^ (checksum >> 57);
    printf("checksum: %lu folded: %lu\n", checksum, folded & 0x7f);
    return (int)(folded & 0x7f);
}
