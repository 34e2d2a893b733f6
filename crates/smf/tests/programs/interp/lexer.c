/*
 * lexer.c - converts SL source text into tokens on demand.
 */
#include <ctype.h>
#include <string.h>

#include "ast.h"

void lexer_init(Lexer *lx, const char *source)
{
    lx->start = source;
    lx->current = source;
    lx->line = 1;
}

static int at_end(const Lexer *lx)
{
    return *lx->current == '\0';
}

static char advance(Lexer *lx)
{
    return *lx->current++;
}

static char peek(const Lexer *lx)
{
    return *lx->current;
}

static char peek_next(const Lexer *lx)
{
    return lx->current[0] ? lx->current[1] : '\0';
}

static int match(Lexer *lx, char expected)
{
    if (at_end(lx) || *lx->current != expected)
        return 0;
    lx->current++;
    return 1;
}

static Token make_token(const Lexer *lx, TokenType type)
{
    Token t;
    t.type = type;
    t.start = lx->start;
    t.length = (int)(lx->current - lx->start);
    t.line = lx->line;
    return t;
}

static Token error_token(const Lexer *lx, const char *message)
{
    Token t;
    t.type = T_ERROR;
    t.start = message;
    t.length = (int)strlen(message);
    t.line = lx->line;
    return t;
}

static void skip_space_and_comments(Lexer *lx)
{
    for (;;) {
        char c = peek(lx);
        switch (c) {
        case ' ':
        case '\r':
        case '\t':
            advance(lx);
            break;
        case '\n':
            lx->line++;
            advance(lx);
            break;
        case '/':
            if (peek_next(lx) == '/') {
                while (peek(lx) != '\n' && !at_end(lx))
                    advance(lx);
            } else if (peek_next(lx) == '*') {
                advance(lx);
                advance(lx);
                while (!at_end(lx) && !(peek(lx) == '*' && peek_next(lx) == '/')) {
                    if (peek(lx) == '\n')
                        lx->line++;
                    advance(lx);
                }
                if (!at_end(lx)) {
                    advance(lx);
                    advance(lx);
                }
            } else {
                return;
            }
            break;
        case '#':
            while (peek(lx) != '\n' && !at_end(lx))
                advance(lx);
            break;
        default:
            return;
        }
    }
}

static int is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static int is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static const struct {
    const char *word;
    TokenType type;
} keywords[] = {
    { "let", T_LET },     { "fn", T_FN },         { "if", T_IF },
    { "else", T_ELSE },   { "while", T_WHILE },   { "for", T_FOR },
    { "in", T_IN },       { "return", T_RETURN }, { "break", T_BREAK },
    { "continue", T_CONTINUE }, { "true", T_TRUE }, { "false", T_FALSE },
    { "nil", T_NIL },     { "try", T_TRY },       { "catch", T_CATCH },
    { "throw", T_THROW },
};

static TokenType identifier_type(const Lexer *lx)
{
    size_t len = (size_t)(lx->current - lx->start);
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        if (strlen(keywords[i].word) == len && memcmp(keywords[i].word, lx->start, len) == 0)
            return keywords[i].type;
    }
    return T_IDENT;
}

static Token identifier(Lexer *lx)
{
    while (is_ident_char(peek(lx)))
        advance(lx);
    return make_token(lx, identifier_type(lx));
}

static Token number(Lexer *lx)
{
    if (lx->start[0] == '0' && (peek(lx) == 'x' || peek(lx) == 'X')) {
        advance(lx);
        if (!isxdigit((unsigned char)peek(lx)))
            return error_token(lx, "malformed hex literal");
        while (isxdigit((unsigned char)peek(lx)))
            advance(lx);
        return make_token(lx, T_INT);
    }
    int is_float = 0;
    while (isdigit((unsigned char)peek(lx)))
        advance(lx);
    if (peek(lx) == '.' && isdigit((unsigned char)peek_next(lx))) {
        is_float = 1;
        advance(lx);
        while (isdigit((unsigned char)peek(lx)))
            advance(lx);
    }
    if (peek(lx) == 'e' || peek(lx) == 'E') {
        const char *save = lx->current;
        advance(lx);
        if (peek(lx) == '+' || peek(lx) == '-')
            advance(lx);
        if (isdigit((unsigned char)peek(lx))) {
            is_float = 1;
            while (isdigit((unsigned char)peek(lx)))
                advance(lx);
        } else {
            lx->current = save;
        }
    }
    if (is_ident_start(peek(lx)))
        return error_token(lx, "invalid character after number");
    return make_token(lx, is_float ? T_FLOAT : T_INT);
}

static Token string(Lexer *lx, char quote)
{
    while (peek(lx) != quote && !at_end(lx)) {
        if (peek(lx) == '\n')
            lx->line++;
        if (peek(lx) == '\\' && peek_next(lx) != '\0')
            advance(lx);
        advance(lx);
    }
    if (at_end(lx))
        return error_token(lx, "unterminated string");
    advance(lx); /* closing quote */
    return make_token(lx, T_STRING);
}

Token lexer_next(Lexer *lx)
{
    skip_space_and_comments(lx);
    lx->start = lx->current;
    if (at_end(lx))
        return make_token(lx, T_EOF);

    char c = advance(lx);
    if (is_ident_start(c))
        return identifier(lx);
    if (isdigit((unsigned char)c))
        return number(lx);

    switch (c) {
    case '(': return make_token(lx, T_LPAREN);
    case ')': return make_token(lx, T_RPAREN);
    case '{': return make_token(lx, T_LBRACE);
    case '}': return make_token(lx, T_RBRACE);
    case '[': return make_token(lx, T_LBRACKET);
    case ']': return make_token(lx, T_RBRACKET);
    case ',': return make_token(lx, T_COMMA);
    case '.': return make_token(lx, T_DOT);
    case ';': return make_token(lx, T_SEMI);
    case ':': return make_token(lx, T_COLON);
    case '?': return make_token(lx, T_QUESTION);
    case '~': return make_token(lx, T_TILDE);
    case '^': return make_token(lx, T_CARET);
    case '+': return make_token(lx, match(lx, '=') ? T_PLUS_ASSIGN : T_PLUS);
    case '-':
        if (match(lx, '>'))
            return make_token(lx, T_ARROW);
        return make_token(lx, match(lx, '=') ? T_MINUS_ASSIGN : T_MINUS);
    case '*': return make_token(lx, match(lx, '=') ? T_STAR_ASSIGN : T_STAR);
    case '/': return make_token(lx, match(lx, '=') ? T_SLASH_ASSIGN : T_SLASH);
    case '%': return make_token(lx, match(lx, '=') ? T_PERCENT_ASSIGN : T_PERCENT);
    case '!': return make_token(lx, match(lx, '=') ? T_NE : T_BANG);
    case '=': return make_token(lx, match(lx, '=') ? T_EQ : T_ASSIGN);
    case '&': return make_token(lx, match(lx, '&') ? T_ANDAND : T_AMP);
    case '|': return make_token(lx, match(lx, '|') ? T_OROR : T_PIPE);
    case '<':
        if (match(lx, '<'))
            return make_token(lx, T_SHL);
        return make_token(lx, match(lx, '=') ? T_LE : T_LT);
    case '>':
        if (match(lx, '>'))
            return make_token(lx, T_SHR);
        return make_token(lx, match(lx, '=') ? T_GE : T_GT);
    case '"':
    case '\'':
        return string(lx, c);
    default:
        break;
    }
    return error_token(lx, "unexpected character");
}

const char *token_type_name(TokenType t)
{
    static const char *const names[] = {
        "'('", "')'", "'{'", "'}'", "'['", "']'", "','", "'.'", "';'", "':'", "'?'",
        "'+'", "'-'", "'*'", "'/'", "'%'", "'!'", "'~'", "'&'", "'|'", "'^'", "'<<'", "'>>'",
        "'='", "'=='", "'!='", "'<'", "'<='", "'>'", "'>='", "'&&'", "'||'",
        "'+='", "'-='", "'*='", "'/='", "'%='", "'->'",
        "identifier", "integer", "float", "string",
        "'let'", "'fn'", "'if'", "'else'", "'while'", "'for'", "'in'", "'return'", "'break'",
        "'continue'", "'true'", "'false'", "'nil'", "'try'", "'catch'", "'throw'",
        "end of input", "error",
    };
    if ((size_t)t < sizeof names / sizeof names[0])
        return names[t];
    return "?";
}
