/*
 * parser.c - recursive descent parser for statements and a Pratt parser
 * for expressions.  Produces an AST allocated in an arena.  The first
 * syntax error aborts the parse with longjmp.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

#define MAX_PARSE_DEPTH 200

typedef enum {
    PREC_NONE,
    PREC_ASSIGN,   /* = += -= ... */
    PREC_TERNARY,  /* ?: */
    PREC_OR,       /* || */
    PREC_AND,      /* && */
    PREC_BOR,      /* | */
    PREC_BXOR,     /* ^ */
    PREC_BAND,     /* & */
    PREC_EQUALITY, /* == != */
    PREC_COMPARE,  /* < <= > >= */
    PREC_SHIFT,    /* << >> */
    PREC_TERM,     /* + - */
    PREC_FACTOR,   /* * / % */
    PREC_UNARY,    /* ! - ~ */
    PREC_CALL      /* () [] . -> */
} Precedence;

static Node *expression(Parser *p);
static Node *statement(Parser *p);
static Node *block(Parser *p);
static Node *parse_precedence(Parser *p, Precedence prec);

/* ------------------------------------------------------------------ */
/* error handling and token plumbing                                   */
/* ------------------------------------------------------------------ */

static void error_at(Parser *p, const Token *t, const char *message) __attribute__((noreturn));

static void error_at(Parser *p, const Token *t, const char *message)
{
    sb_printf(p->errors, "line %d: syntax error", t->line);
    if (t->type == T_EOF)
        sb_puts(p->errors, " at end of input");
    else if (t->type != T_ERROR)
        sb_printf(p->errors, " at '%.*s'", t->length, t->start);
    sb_printf(p->errors, ": %s", message);
    longjmp(p->bail, 1);
}

static void error_current(Parser *p, const char *message) __attribute__((noreturn));

static void error_current(Parser *p, const char *message)
{
    error_at(p, &p->current, message);
}

static void error_previous(Parser *p, const char *message) __attribute__((noreturn));

static void error_previous(Parser *p, const char *message)
{
    error_at(p, &p->previous, message);
}

static void advance(Parser *p)
{
    p->previous = p->current;
    p->current = lexer_next(&p->lexer);
    if (p->current.type == T_ERROR) {
        char msg[96];
        snprintf(msg, sizeof msg, "%.*s", p->current.length, p->current.start);
        error_current(p, msg);
    }
}

static int check(const Parser *p, TokenType type)
{
    return p->current.type == type;
}

static int match(Parser *p, TokenType type)
{
    if (!check(p, type))
        return 0;
    advance(p);
    return 1;
}

static void consume(Parser *p, TokenType type, const char *what)
{
    if (check(p, type)) {
        advance(p);
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "expected %s %s", token_type_name(type), what);
    error_current(p, msg);
}

/* Peeks at the token after the current one without consuming anything. */
static Token peek_next_token(const Parser *p)
{
    Lexer copy = p->lexer;
    return lexer_next(&copy);
}

static void enter(Parser *p)
{
    if (++p->depth > MAX_PARSE_DEPTH)
        error_current(p, "program nests too deeply");
}

static void leave(Parser *p)
{
    p->depth--;
}

static Node *new_node(Parser *p, NodeKind kind)
{
    return node_new(p->arena, kind, p->previous.line);
}

static Node *name_node(Parser *p, const Token *t)
{
    Node *n = node_new(p->arena, N_NAME, t->line);
    n->str = arena_strndup(p->arena, t->start, (size_t)t->length);
    n->len = t->length;
    return n;
}

/* ------------------------------------------------------------------ */
/* literals                                                            */
/* ------------------------------------------------------------------ */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static Node *string_literal(Parser *p)
{
    const Token *t = &p->previous;
    const char *src = t->start + 1;
    size_t n = (size_t)t->length - 2;
    char *out = arena_alloc(p->arena, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i >= n)
            error_previous(p, "dangling backslash in string");
        switch (src[i]) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case '0': out[o++] = '\0'; break;
        case '\\': out[o++] = '\\'; break;
        case '"': out[o++] = '"'; break;
        case '\'': out[o++] = '\''; break;
        case 'x': {
            int hi = i + 1 < n ? hex_digit(src[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                error_previous(p, "bad \\x escape");
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
            break;
        }
        default:
            error_previous(p, "unknown escape sequence");
        }
    }
    out[o] = '\0';
    Node *node = new_node(p, N_STRING);
    node->str = out;
    node->len = (int)o;
    return node;
}

static Node *int_literal(Parser *p)
{
    char buf[64];
    const Token *t = &p->previous;
    if (t->length >= (int)sizeof buf)
        error_previous(p, "integer literal too long");
    memcpy(buf, t->start, (size_t)t->length);
    buf[t->length] = '\0';
    Node *n = new_node(p, N_INT);
    errno = 0;
    if (t->length > 2 && (buf[1] == 'x' || buf[1] == 'X')) {
        unsigned long long v = strtoull(buf + 2, NULL, 16);
        if (errno == ERANGE)
            error_previous(p, "hex literal out of range");
        n->ival = (int64_t)v;
    } else {
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            error_previous(p, "integer literal out of range");
        n->ival = v;
    }
    return n;
}

static Node *float_literal(Parser *p)
{
    char buf[128];
    const Token *t = &p->previous;
    if (t->length >= (int)sizeof buf)
        error_previous(p, "float literal too long");
    memcpy(buf, t->start, (size_t)t->length);
    buf[t->length] = '\0';
    Node *n = new_node(p, N_FLOAT);
    n->fval = strtod(buf, NULL);
    return n;
}

/* ------------------------------------------------------------------ */
/* prefix expressions                                                  */
/* ------------------------------------------------------------------ */

static void parameter_list(Parser *p, Node *fn)
{
    consume(p, T_LPAREN, "before parameter list");
    if (!check(p, T_RPAREN)) {
        do {
            consume(p, T_IDENT, "as parameter name");
            for (int i = 0; i < fn->list.count; i++) {
                const Node *prev = fn->list.items[i];
                if (prev->len == p->previous.length &&
                    memcmp(prev->str, p->previous.start, (size_t)prev->len) == 0)
                    error_previous(p, "duplicate parameter name");
            }
            if (fn->list.count >= 32)
                error_previous(p, "too many parameters");
            node_list_push(p->arena, &fn->list, name_node(p, &p->previous));
        } while (match(p, T_COMMA));
    }
    consume(p, T_RPAREN, "after parameters");
}

static Node *function_body(Parser *p, const char *name, int name_len)
{
    Node *fn = new_node(p, N_FUNC);
    fn->str = name;
    fn->len = name_len;
    parameter_list(p, fn);
    if (!check(p, T_LBRACE))
        error_current(p, "expected '{' before function body");
    advance(p);
    fn->a = block(p);
    return fn;
}

static Node *array_literal(Parser *p)
{
    Node *n = new_node(p, N_ARRAY);
    while (!check(p, T_RBRACKET)) {
        if (n->list.count >= 255)
            error_current(p, "too many elements in array literal");
        node_list_push(p->arena, &n->list, expression(p));
        if (!match(p, T_COMMA))
            break;
    }
    consume(p, T_RBRACKET, "after array elements");
    return n;
}

static Node *map_literal(Parser *p)
{
    Node *n = new_node(p, N_MAP);
    while (!check(p, T_RBRACE)) {
        Node *key;
        if (n->list.count >= 254)
            error_current(p, "too many entries in map literal");
        if (check(p, T_IDENT) && peek_next_token(p).type == T_COLON) {
            advance(p);
            key = new_node(p, N_STRING);
            key->str = arena_strndup(p->arena, p->previous.start, (size_t)p->previous.length);
            key->len = p->previous.length;
        } else if (match(p, T_LBRACKET)) {
            key = expression(p);
            consume(p, T_RBRACKET, "after computed key");
        } else if (match(p, T_STRING)) {
            key = string_literal(p);
        } else if (match(p, T_INT)) {
            key = int_literal(p);
        } else {
            error_current(p, "expected map key");
        }
        consume(p, T_COLON, "after map key");
        node_list_push(p->arena, &n->list, key);
        node_list_push(p->arena, &n->list, expression(p));
        if (!match(p, T_COMMA))
            break;
    }
    consume(p, T_RBRACE, "after map entries");
    return n;
}

static Node *prefix(Parser *p)
{
    Token t = p->previous;
    switch (t.type) {
    case T_INT:
        return int_literal(p);
    case T_FLOAT:
        return float_literal(p);
    case T_STRING:
        return string_literal(p);
    case T_TRUE:
        return new_node(p, N_TRUE);
    case T_FALSE:
        return new_node(p, N_FALSE);
    case T_NIL:
        return new_node(p, N_NIL);
    case T_IDENT:
        return name_node(p, &t);
    case T_LPAREN: {
        Node *inner = expression(p);
        consume(p, T_RPAREN, "after parenthesised expression");
        return inner;
    }
    case T_LBRACKET:
        return array_literal(p);
    case T_LBRACE:
        return map_literal(p);
    case T_FN:
        return function_body(p, NULL, 0);
    case T_MINUS:
    case T_BANG:
    case T_TILDE: {
        Node *operand = parse_precedence(p, PREC_UNARY);
        if (t.type == T_MINUS && operand->kind == N_INT) {
            operand->ival = (int64_t)(0u - (uint64_t)operand->ival);
            return operand;
        }
        if (t.type == T_MINUS && operand->kind == N_FLOAT) {
            operand->fval = -operand->fval;
            return operand;
        }
        Node *n = node_new(p->arena, N_UNARY, t.line);
        n->op = t.type;
        n->a = operand;
        return n;
    }
    default:
        error_previous(p, "expected expression");
    }
}

/* ------------------------------------------------------------------ */
/* infix expressions                                                   */
/* ------------------------------------------------------------------ */

static Precedence infix_precedence(TokenType t)
{
    switch (t) {
    case T_ASSIGN:
    case T_PLUS_ASSIGN:
    case T_MINUS_ASSIGN:
    case T_STAR_ASSIGN:
    case T_SLASH_ASSIGN:
    case T_PERCENT_ASSIGN:
        return PREC_ASSIGN;
    case T_QUESTION:
        return PREC_TERNARY;
    case T_OROR:
        return PREC_OR;
    case T_ANDAND:
        return PREC_AND;
    case T_PIPE:
        return PREC_BOR;
    case T_CARET:
        return PREC_BXOR;
    case T_AMP:
        return PREC_BAND;
    case T_EQ:
    case T_NE:
        return PREC_EQUALITY;
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE:
        return PREC_COMPARE;
    case T_SHL:
    case T_SHR:
        return PREC_SHIFT;
    case T_PLUS:
    case T_MINUS:
        return PREC_TERM;
    case T_STAR:
    case T_SLASH:
    case T_PERCENT:
        return PREC_FACTOR;
    case T_LPAREN:
    case T_LBRACKET:
    case T_DOT:
    case T_ARROW:
        return PREC_CALL;
    default:
        return PREC_NONE;
    }
}

static void argument_list(Parser *p, Node *call)
{
    if (!check(p, T_RPAREN)) {
        do {
            if (call->list.count >= 250)
                error_current(p, "too many arguments");
            node_list_push(p->arena, &call->list, expression(p));
        } while (match(p, T_COMMA));
    }
    consume(p, T_RPAREN, "after arguments");
}

static int is_assignable(const Node *n)
{
    return n->kind == N_NAME || n->kind == N_INDEX || n->kind == N_FIELD;
}

static TokenType compound_to_binary(TokenType t)
{
    switch (t) {
    case T_PLUS_ASSIGN: return T_PLUS;
    case T_MINUS_ASSIGN: return T_MINUS;
    case T_STAR_ASSIGN: return T_STAR;
    case T_SLASH_ASSIGN: return T_SLASH;
    case T_PERCENT_ASSIGN: return T_PERCENT;
    default: return t;
    }
}

static Node *infix(Parser *p, Node *left)
{
    Token t = p->previous;
    Precedence prec = infix_precedence(t.type);
    Node *n;
    switch (t.type) {
    case T_ASSIGN:
        if (!is_assignable(left))
            error_previous(p, "invalid assignment target");
        n = node_new(p->arena, N_ASSIGN, t.line);
        n->a = left;
        n->b = parse_precedence(p, PREC_ASSIGN);
        return n;
    case T_PLUS_ASSIGN:
    case T_MINUS_ASSIGN:
    case T_STAR_ASSIGN:
    case T_SLASH_ASSIGN:
    case T_PERCENT_ASSIGN:
        if (!is_assignable(left))
            error_previous(p, "invalid compound assignment target");
        n = node_new(p->arena, N_COMPOUND, t.line);
        n->op = compound_to_binary(t.type);
        n->a = left;
        n->b = parse_precedence(p, PREC_ASSIGN);
        return n;
    case T_QUESTION:
        n = node_new(p->arena, N_TERNARY, t.line);
        n->a = left;
        n->b = parse_precedence(p, PREC_ASSIGN);
        consume(p, T_COLON, "in conditional expression");
        n->c = parse_precedence(p, PREC_TERNARY);
        return n;
    case T_OROR:
    case T_ANDAND:
        n = node_new(p->arena, N_LOGICAL, t.line);
        n->op = t.type;
        n->a = left;
        n->b = parse_precedence(p, (Precedence)(prec + 1));
        return n;
    case T_LPAREN:
        n = node_new(p->arena, N_CALL, t.line);
        n->a = left;
        argument_list(p, n);
        return n;
    case T_LBRACKET:
        n = node_new(p->arena, N_INDEX, t.line);
        n->a = left;
        n->b = expression(p);
        consume(p, T_RBRACKET, "after index");
        return n;
    case T_DOT:
        consume(p, T_IDENT, "as field name after '.'");
        n = node_new(p->arena, N_FIELD, t.line);
        n->a = left;
        n->str = arena_strndup(p->arena, p->previous.start, (size_t)p->previous.length);
        n->len = p->previous.length;
        return n;
    case T_ARROW:
        consume(p, T_IDENT, "as method name after '->'");
        n = node_new(p->arena, N_INVOKE, t.line);
        n->a = left;
        n->str = arena_strndup(p->arena, p->previous.start, (size_t)p->previous.length);
        n->len = p->previous.length;
        consume(p, T_LPAREN, "after method name");
        argument_list(p, n);
        return n;
    default:
        n = node_new(p->arena, N_BINARY, t.line);
        n->op = t.type;
        n->a = left;
        n->b = parse_precedence(p, (Precedence)(prec + 1));
        return n;
    }
}

static Node *parse_precedence(Parser *p, Precedence prec)
{
    enter(p);
    advance(p);
    Node *left = prefix(p);
    while (prec <= infix_precedence(p->current.type)) {
        advance(p);
        left = infix(p, left);
    }
    leave(p);
    return left;
}

static Node *expression(Parser *p)
{
    return parse_precedence(p, PREC_ASSIGN);
}

/* ------------------------------------------------------------------ */
/* statements                                                          */
/* ------------------------------------------------------------------ */

/* Parses the statements of a block; the '{' has been consumed. */
static Node *block(Parser *p)
{
    Node *b = new_node(p, N_BLOCK);
    enter(p);
    while (!check(p, T_RBRACE) && !check(p, T_EOF))
        node_list_push(p->arena, &b->list, statement(p));
    consume(p, T_RBRACE, "to close block");
    leave(p);
    return b;
}

static Node *let_statement(Parser *p)
{
    consume(p, T_IDENT, "as variable name");
    Node *n = new_node(p, N_LET);
    n->str = arena_strndup(p->arena, p->previous.start, (size_t)p->previous.length);
    n->len = p->previous.length;
    if (match(p, T_ASSIGN))
        n->a = expression(p);
    consume(p, T_SEMI, "after variable declaration");
    return n;
}

static Node *fn_declaration(Parser *p)
{
    consume(p, T_IDENT, "as function name");
    Token name = p->previous;
    Node *n = new_node(p, N_FNDECL);
    n->str = arena_strndup(p->arena, name.start, (size_t)name.length);
    n->len = name.length;
    n->a = function_body(p, n->str, n->len);
    return n;
}

static Node *if_statement(Parser *p)
{
    Node *n = new_node(p, N_IF);
    consume(p, T_LPAREN, "after 'if'");
    n->a = expression(p);
    consume(p, T_RPAREN, "after condition");
    n->b = statement(p);
    if (match(p, T_ELSE))
        n->c = statement(p);
    return n;
}

static Node *while_statement(Parser *p)
{
    Node *n = new_node(p, N_WHILE);
    consume(p, T_LPAREN, "after 'while'");
    n->a = expression(p);
    consume(p, T_RPAREN, "after condition");
    n->b = statement(p);
    return n;
}

static Node *for_statement(Parser *p)
{
    int line = p->previous.line;
    consume(p, T_LPAREN, "after 'for'");
    if (check(p, T_IDENT) && peek_next_token(p).type == T_IN) {
        advance(p);
        Node *n = node_new(p->arena, N_FORIN, line);
        n->str = arena_strndup(p->arena, p->previous.start, (size_t)p->previous.length);
        n->len = p->previous.length;
        consume(p, T_IN, "in for-in loop");
        n->a = expression(p);
        consume(p, T_RPAREN, "after for-in sequence");
        n->b = statement(p);
        return n;
    }
    Node *n = node_new(p->arena, N_FOR, line);
    if (match(p, T_LET)) {
        n->a = let_statement(p);
    } else if (!match(p, T_SEMI)) {
        Node *init = node_new(p->arena, N_EXPR_STMT, p->current.line);
        init->a = expression(p);
        n->a = init;
        consume(p, T_SEMI, "after loop initialiser");
    }
    if (!check(p, T_SEMI))
        n->b = expression(p);
    consume(p, T_SEMI, "after loop condition");
    if (!check(p, T_RPAREN))
        n->c = expression(p);
    consume(p, T_RPAREN, "after for clauses");
    n->d = statement(p);
    return n;
}

static Node *try_statement(Parser *p)
{
    Node *n = new_node(p, N_TRY);
    consume(p, T_LBRACE, "after 'try'");
    n->a = block(p);
    consume(p, T_CATCH, "after try block");
    consume(p, T_LPAREN, "after 'catch'");
    consume(p, T_IDENT, "as catch variable");
    n->str = arena_strndup(p->arena, p->previous.start, (size_t)p->previous.length);
    n->len = p->previous.length;
    consume(p, T_RPAREN, "after catch variable");
    consume(p, T_LBRACE, "before catch block");
    n->b = block(p);
    return n;
}

static Node *statement(Parser *p)
{
    Node *n;
    enter(p);
    if (match(p, T_LET)) {
        n = let_statement(p);
    } else if (check(p, T_FN) && peek_next_token(p).type == T_IDENT) {
        advance(p);
        n = fn_declaration(p);
    } else if (match(p, T_IF)) {
        n = if_statement(p);
    } else if (match(p, T_WHILE)) {
        n = while_statement(p);
    } else if (match(p, T_FOR)) {
        n = for_statement(p);
    } else if (match(p, T_RETURN)) {
        n = new_node(p, N_RETURN);
        if (!check(p, T_SEMI))
            n->a = expression(p);
        consume(p, T_SEMI, "after return value");
    } else if (match(p, T_BREAK)) {
        n = new_node(p, N_BREAK);
        consume(p, T_SEMI, "after 'break'");
    } else if (match(p, T_CONTINUE)) {
        n = new_node(p, N_CONTINUE);
        consume(p, T_SEMI, "after 'continue'");
    } else if (match(p, T_TRY)) {
        n = try_statement(p);
    } else if (match(p, T_THROW)) {
        n = new_node(p, N_THROW);
        n->a = expression(p);
        consume(p, T_SEMI, "after thrown value");
    } else if (match(p, T_LBRACE)) {
        n = block(p);
    } else if (match(p, T_SEMI)) {
        n = new_node(p, N_BLOCK); /* empty statement */
    } else {
        n = node_new(p->arena, N_EXPR_STMT, p->current.line);
        n->a = expression(p);
        consume(p, T_SEMI, "after expression");
    }
    leave(p);
    return n;
}

Node *parse_program(Parser *p, const char *source, Arena *arena, StrBuf *errors)
{
    p->arena = arena;
    p->errors = errors;
    p->depth = 0;
    lexer_init(&p->lexer, source);
    if (setjmp(p->bail))
        return NULL;
    advance(p);
    Node *program = node_new(arena, N_BLOCK, 1);
    while (!check(p, T_EOF))
        node_list_push(arena, &program->list, statement(p));
    return program;
}
