/*
 * ast.h - tokens, lexer and abstract syntax tree for SL.
 */
#ifndef SL_AST_H
#define SL_AST_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "sl.h"

typedef enum {
    T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_LBRACKET, T_RBRACKET,
    T_COMMA, T_DOT, T_SEMI, T_COLON, T_QUESTION,
    T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PERCENT,
    T_BANG, T_TILDE, T_AMP, T_PIPE, T_CARET, T_SHL, T_SHR,
    T_ASSIGN, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_ANDAND, T_OROR,
    T_PLUS_ASSIGN, T_MINUS_ASSIGN, T_STAR_ASSIGN, T_SLASH_ASSIGN, T_PERCENT_ASSIGN, T_ARROW,
    T_IDENT, T_INT, T_FLOAT, T_STRING,
    T_LET, T_FN, T_IF, T_ELSE, T_WHILE, T_FOR, T_IN, T_RETURN, T_BREAK,
    T_CONTINUE, T_TRUE, T_FALSE, T_NIL, T_TRY, T_CATCH, T_THROW,
    T_EOF, T_ERROR
} TokenType;

typedef struct {
    TokenType type;
    const char *start;
    int length;
    int line;
} Token;

typedef struct {
    const char *start;
    const char *current;
    int line;
} Lexer;

void lexer_init(Lexer *lx, const char *source);
Token lexer_next(Lexer *lx);
const char *token_type_name(TokenType t);

/* ------------------------------------------------------------------ */

typedef enum {
    /* expressions */
    N_NIL, N_TRUE, N_FALSE, N_INT, N_FLOAT, N_STRING, N_NAME,
    N_ARRAY, N_MAP, N_UNARY, N_BINARY, N_LOGICAL, N_TERNARY,
    N_ASSIGN, N_COMPOUND, N_INDEX, N_FIELD, N_CALL, N_INVOKE, N_FUNC,
    /* statements */
    N_EXPR_STMT, N_LET, N_FNDECL, N_BLOCK, N_IF, N_WHILE, N_FOR, N_FORIN,
    N_RETURN, N_BREAK, N_CONTINUE, N_TRY, N_THROW
} NodeKind;

typedef struct Node Node;

typedef struct {
    Node **items;
    int count;
    int capacity;
} NodeList;

struct Node {
    NodeKind kind;
    int line;
    TokenType op;
    int64_t ival;
    double fval;
    const char *str; /* identifier or unescaped string literal (arena) */
    int len;
    Node *a, *b, *c, *d;
    NodeList list;
};

/* Bump allocator owning every node and string of one parse. */
typedef struct ArenaBlock {
    struct ArenaBlock *next;
    size_t used;
    size_t size;
    unsigned char data[];
} ArenaBlock;

typedef struct {
    ArenaBlock *head;
    size_t total;
} Arena;

void arena_init(Arena *a);
void *arena_alloc(Arena *a, size_t size);
char *arena_strndup(Arena *a, const char *s, size_t n);
void arena_free(Arena *a);

Node *node_new(Arena *a, NodeKind kind, int line);
void node_list_push(Arena *a, NodeList *list, Node *n);
const char *node_kind_name(NodeKind k);
int ast_count_nodes(const Node *n);

/* Parser: returns a N_BLOCK of statements, or NULL with *errors filled. */
typedef struct {
    Lexer lexer;
    Token current;
    Token previous;
    Arena *arena;
    StrBuf *errors;
    jmp_buf bail;
    int depth;
} Parser;

Node *parse_program(Parser *p, const char *source, Arena *arena, StrBuf *errors);

#endif /* SL_AST_H */
