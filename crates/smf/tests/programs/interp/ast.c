/*
 * ast.c - arena allocation and helpers for syntax tree nodes.
 */
#include <stdlib.h>
#include <string.h>

#include "ast.h"

#define ARENA_BLOCK_SIZE (32 * 1024)

void arena_init(Arena *a)
{
    a->head = NULL;
    a->total = 0;
}

void *arena_alloc(Arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!a->head || a->head->used + size > a->head->size) {
        size_t block_size = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
        ArenaBlock *b = malloc(sizeof(ArenaBlock) + block_size);
        if (!b) {
            fputs("out of memory (arena)\n", stdout);
            exit(71);
        }
        b->next = a->head;
        b->used = 0;
        b->size = block_size;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void arena_free(Arena *a)
{
    ArenaBlock *b = a->head;
    while (b) {
        ArenaBlock *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

Node *node_new(Arena *a, NodeKind kind, int line)
{
    Node *n = arena_alloc(a, sizeof(Node));
    n->kind = kind;
    n->line = line;
    return n;
}

void node_list_push(Arena *a, NodeList *list, Node *n)
{
    if (list->count == list->capacity) {
        int cap = list->capacity ? list->capacity * 2 : 4;
        Node **items = arena_alloc(a, sizeof(Node *) * (size_t)cap);
        if (list->count)
            memcpy(items, list->items, sizeof(Node *) * (size_t)list->count);
        list->items = items;
        list->capacity = cap;
    }
    list->items[list->count++] = n;
}

const char *node_kind_name(NodeKind k)
{
    static const char *const names[] = {
        "nil", "true", "false", "int", "float", "string", "name",
        "array", "map", "unary", "binary", "logical", "ternary",
        "assign", "compound", "index", "field", "call", "invoke", "func",
        "expr-stmt", "let", "fn-decl", "block", "if", "while", "for", "for-in",
        "return", "break", "continue", "try", "throw",
    };
    if ((size_t)k < sizeof names / sizeof names[0])
        return names[k];
    return "?";
}

int ast_count_nodes(const Node *n)
{
    if (!n)
        return 0;
    int count = 1;
    count += ast_count_nodes(n->a);
    count += ast_count_nodes(n->b);
    count += ast_count_nodes(n->c);
    count += ast_count_nodes(n->d);
    for (int i = 0; i < n->list.count; i++)
        count += ast_count_nodes(n->list.items[i]);
    return count;
}
