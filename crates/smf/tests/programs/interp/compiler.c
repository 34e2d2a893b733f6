/*
 * compiler.c - walks the AST and emits bytecode for the stack VM.
 * Resolves variables to locals, upvalues (closures) or globals, manages
 * lexical scopes, loops with break/continue and try/catch regions.
 */
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "sl.h"

#define MAX_LOCALS 256
#define MAX_UPVALUES 256
#define MAX_LOOP_JUMPS 64

typedef struct {
    const char *name;
    int len;
    int depth; /* -1 while the initialiser is being compiled */
    int captured;
} Local;

typedef struct {
    uint8_t index;
    uint8_t is_local;
} UpvalRef;

typedef struct Loop {
    struct Loop *enclosing;
    int start;
    int continue_forward; /* 1: continue jumps are patched later */
    int scope_depth;
    int try_depth;
    int breaks[MAX_LOOP_JUMPS];
    int nbreaks;
    int continues[MAX_LOOP_JUMPS];
    int ncontinues;
} Loop;

typedef enum { FN_SCRIPT, FN_FUNCTION } FnKind;

typedef struct CompileCtx {
    VM *vm;
    StrBuf *errors;
    jmp_buf bail;
    int functions;
} CompileCtx;

typedef struct Compiler {
    struct Compiler *enclosing;
    ObjProto *proto;
    FnKind kind;
    Local locals[MAX_LOCALS];
    int local_count;
    UpvalRef upvalues[MAX_UPVALUES];
    int scope_depth;
    Loop *loop;
    int try_depth;
    int line;
    CompileCtx *ctx;
} Compiler;

static void compile_expr(Compiler *c, Node *n);
static void compile_stmt(Compiler *c, Node *n);

void mark_compiler_roots(VM *vm)
{
    for (Compiler *c = vm->compiler; c; c = c->enclosing)
        gc_mark_object(vm, (Obj *)c->proto);
}

/* ------------------------------------------------------------------ */
/* errors and emission                                                 */
/* ------------------------------------------------------------------ */

static void compile_error(Compiler *c, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static void compile_error(Compiler *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sb_printf(c->ctx->errors, "line %d: compile error: %s", c->line, msg);
    longjmp(c->ctx->bail, 1);
}

static Chunk *chunk(Compiler *c)
{
    return &c->proto->chunk;
}

static void emit_byte(Compiler *c, uint8_t b)
{
    chunk_write(c->ctx->vm, chunk(c), b, c->line);
}

static void emit_bytes(Compiler *c, uint8_t a, uint8_t b)
{
    emit_byte(c, a);
    emit_byte(c, b);
}

static void emit_short(Compiler *c, int v)
{
    emit_byte(c, (uint8_t)((v >> 8) & 0xff));
    emit_byte(c, (uint8_t)(v & 0xff));
}

static int emit_jump(Compiler *c, OpCode op)
{
    emit_byte(c, (uint8_t)op);
    emit_byte(c, 0xff);
    emit_byte(c, 0xff);
    return chunk(c)->count - 2;
}

static void patch_jump_to(Compiler *c, int offset, int target)
{
    int jump = target - offset - 2;
    if (jump < 0 || jump > 0xffff)
        compile_error(c, "jump too large");
    chunk(c)->code[offset] = (uint8_t)((jump >> 8) & 0xff);
    chunk(c)->code[offset + 1] = (uint8_t)(jump & 0xff);
}

static void patch_jump(Compiler *c, int offset)
{
    patch_jump_to(c, offset, chunk(c)->count);
}

static void emit_loop(Compiler *c, int start)
{
    emit_byte(c, OP_LOOP);
    int offset = chunk(c)->count - start + 2;
    if (offset > 0xffff)
        compile_error(c, "loop body too large");
    emit_short(c, offset);
}

static int make_constant(Compiler *c, Value v)
{
    int idx = chunk_add_constant(c->ctx->vm, chunk(c), v);
    if (idx > 0xffff)
        compile_error(c, "too many constants in one function");
    return idx;
}

/* v may be a freshly allocated string: register it as a constant (which
 * makes it reachable) before emitting, since emitting may collect. */
static void emit_constant(Compiler *c, Value v)
{
    int idx = make_constant(c, v);
    emit_byte(c, OP_CONST);
    emit_short(c, idx);
}

static int name_constant(Compiler *c, const char *name, int len)
{
    ObjString *s = string_copy(c->ctx->vm, name, (size_t)len);
    return make_constant(c, obj_value(s));
}

/* ------------------------------------------------------------------ */
/* compiler lifecycle                                                  */
/* ------------------------------------------------------------------ */

static void init_compiler(Compiler *c, CompileCtx *ctx, Compiler *enclosing, FnKind kind,
                          const char *name, int name_len, int line)
{
    VM *vm = ctx->vm;
    c->enclosing = enclosing;
    c->proto = NULL;
    c->kind = kind;
    c->local_count = 0;
    c->scope_depth = 0;
    c->loop = NULL;
    c->try_depth = 0;
    c->line = line;
    c->ctx = ctx;
    vm->compiler = c;
    c->proto = proto_new(vm);
    if (name)
        c->proto->name = string_copy(vm, name, (size_t)name_len);
    else if (kind == FN_SCRIPT)
        c->proto->name = string_from_cstr(vm, "script");
    Local *slot0 = &c->locals[c->local_count++];
    slot0->name = "";
    slot0->len = 0;
    slot0->depth = 0;
    slot0->captured = 0;
    ctx->functions++;
}

static ObjProto *end_compiler(Compiler *c)
{
    emit_byte(c, OP_NIL);
    emit_byte(c, OP_RETURN);
    ObjProto *p = c->proto;
    c->ctx->vm->compiler = c->enclosing;
    return p;
}

static void begin_scope(Compiler *c)
{
    c->scope_depth++;
}

static void end_scope(Compiler *c)
{
    c->scope_depth--;
    while (c->local_count > 0 && c->locals[c->local_count - 1].depth > c->scope_depth) {
        emit_byte(c, c->locals[c->local_count - 1].captured ? OP_CLOSE_UPVAL : OP_POP);
        c->local_count--;
    }
}

/* ------------------------------------------------------------------ */
/* variables                                                           */
/* ------------------------------------------------------------------ */

static int same_name(const char *a, int alen, const char *b, int blen)
{
    return alen == blen && memcmp(a, b, (size_t)alen) == 0;
}

static int add_local(Compiler *c, const char *name, int len)
{
    if (c->local_count == MAX_LOCALS)
        compile_error(c, "too many local variables in function");
    for (int i = c->local_count - 1; i >= 0; i--) {
        Local *l = &c->locals[i];
        if (l->depth != -1 && l->depth < c->scope_depth)
            break;
        if (len > 0 && name[0] != ' ' && same_name(l->name, l->len, name, len))
            compile_error(c, "variable '%.*s' already declared in this scope", len, name);
    }
    Local *l = &c->locals[c->local_count++];
    l->name = name;
    l->len = len;
    l->depth = -1;
    l->captured = 0;
    return c->local_count - 1;
}

static void mark_initialized(Compiler *c)
{
    c->locals[c->local_count - 1].depth = c->scope_depth;
}

static int resolve_local(Compiler *c, const char *name, int len)
{
    for (int i = c->local_count - 1; i >= 0; i--) {
        Local *l = &c->locals[i];
        if (same_name(l->name, l->len, name, len)) {
            if (l->depth == -1)
                compile_error(c, "cannot read '%.*s' in its own initialiser", len, name);
            return i;
        }
    }
    return -1;
}

static int add_upvalue(Compiler *c, uint8_t index, int is_local)
{
    int count = c->proto->upvalue_count;
    for (int i = 0; i < count; i++)
        if (c->upvalues[i].index == index && c->upvalues[i].is_local == is_local)
            return i;
    if (count == MAX_UPVALUES)
        compile_error(c, "too many captured variables in function");
    c->upvalues[count].is_local = (uint8_t)is_local;
    c->upvalues[count].index = index;
    return c->proto->upvalue_count++;
}

static int resolve_upvalue(Compiler *c, const char *name, int len)
{
    if (!c->enclosing)
        return -1;
    int local = resolve_local(c->enclosing, name, len);
    if (local >= 0) {
        c->enclosing->locals[local].captured = 1;
        return add_upvalue(c, (uint8_t)local, 1);
    }
    int up = resolve_upvalue(c->enclosing, name, len);
    if (up >= 0)
        return add_upvalue(c, (uint8_t)up, 0);
    return -1;
}

static void emit_get_var(Compiler *c, const char *name, int len)
{
    int slot = resolve_local(c, name, len);
    if (slot >= 0) {
        emit_bytes(c, OP_GET_LOCAL, (uint8_t)slot);
        return;
    }
    int up = resolve_upvalue(c, name, len);
    if (up >= 0) {
        emit_bytes(c, OP_GET_UPVAL, (uint8_t)up);
        return;
    }
    emit_byte(c, OP_GET_GLOBAL);
    emit_short(c, name_constant(c, name, len));
}

static void emit_set_var(Compiler *c, const char *name, int len)
{
    int slot = resolve_local(c, name, len);
    if (slot >= 0) {
        emit_bytes(c, OP_SET_LOCAL, (uint8_t)slot);
        return;
    }
    int up = resolve_upvalue(c, name, len);
    if (up >= 0) {
        emit_bytes(c, OP_SET_UPVAL, (uint8_t)up);
        return;
    }
    emit_byte(c, OP_SET_GLOBAL);
    emit_short(c, name_constant(c, name, len));
}

static int is_global_scope(const Compiler *c)
{
    return c->kind == FN_SCRIPT && c->scope_depth == 0;
}

/* ------------------------------------------------------------------ */
/* functions                                                           */
/* ------------------------------------------------------------------ */

static void compile_function(Compiler *parent, Node *fn)
{
    Compiler c;
    init_compiler(&c, parent->ctx, parent, FN_FUNCTION, fn->str, fn->len, fn->line);
    begin_scope(&c);
    c.proto->arity = fn->list.count;
    for (int i = 0; i < fn->list.count; i++) {
        Node *param = fn->list.items[i];
        add_local(&c, param->str, param->len);
        mark_initialized(&c);
    }
    Node *body = fn->a;
    for (int i = 0; i < body->list.count; i++)
        compile_stmt(&c, body->list.items[i]);
    ObjProto *proto = end_compiler(&c);

    VM *vm = parent->ctx->vm;
    vm_push(vm, obj_value(proto));
    int idx = make_constant(parent, obj_value(proto));
    vm_pop(vm);
    emit_byte(parent, OP_CLOSURE);
    emit_short(parent, idx);
    for (int i = 0; i < proto->upvalue_count; i++) {
        emit_byte(parent, c.upvalues[i].is_local);
        emit_byte(parent, c.upvalues[i].index);
    }
}

/* ------------------------------------------------------------------ */
/* expressions                                                         */
/* ------------------------------------------------------------------ */

static OpCode binary_opcode(Compiler *c, TokenType op)
{
    switch (op) {
    case T_PLUS: return OP_ADD;
    case T_MINUS: return OP_SUB;
    case T_STAR: return OP_MUL;
    case T_SLASH: return OP_DIV;
    case T_PERCENT: return OP_MOD;
    case T_AMP: return OP_BAND;
    case T_PIPE: return OP_BOR;
    case T_CARET: return OP_BXOR;
    case T_SHL: return OP_SHL;
    case T_SHR: return OP_SHR;
    case T_EQ: return OP_EQ;
    case T_NE: return OP_NE;
    case T_LT: return OP_LT;
    case T_LE: return OP_LE;
    case T_GT: return OP_GT;
    case T_GE: return OP_GE;
    default:
        compile_error(c, "unknown binary operator %s", token_type_name(op));
    }
}

/* Folds integer arithmetic and string concatenation of literals. */
static int try_fold(Compiler *c, Node *n)
{
    Node *a = n->a, *b = n->b;
    if (a->kind == N_INT && b->kind == N_INT) {
        uint64_t x = (uint64_t)a->ival, y = (uint64_t)b->ival;
        int64_t r;
        switch (n->op) {
        case T_PLUS: r = (int64_t)(x + y); break;
        case T_MINUS: r = (int64_t)(x - y); break;
        case T_STAR: r = (int64_t)(x * y); break;
        case T_AMP: r = (int64_t)(x & y); break;
        case T_PIPE: r = (int64_t)(x | y); break;
        case T_CARET: r = (int64_t)(x ^ y); break;
        default: return 0;
        }
        emit_constant(c, int_value(r));
        return 1;
    }
    if (a->kind == N_STRING && b->kind == N_STRING && n->op == T_PLUS) {
        VM *vm = c->ctx->vm;
        size_t len = (size_t)a->len + (size_t)b->len;
        char *buf = malloc(len + 1);
        if (!buf)
            compile_error(c, "out of memory");
        memcpy(buf, a->str, (size_t)a->len);
        memcpy(buf + a->len, b->str, (size_t)b->len);
        ObjString *s = string_copy(vm, buf, len);
        free(buf);
        emit_constant(c, obj_value(s));
        return 1;
    }
    return 0;
}

static void compile_assign_target_value(Compiler *c, Node *target, Node *value, int compound,
                                        TokenType op)
{
    switch (target->kind) {
    case N_NAME:
        if (compound) {
            emit_get_var(c, target->str, target->len);
            compile_expr(c, value);
            emit_byte(c, (uint8_t)binary_opcode(c, op));
        } else {
            compile_expr(c, value);
        }
        c->line = target->line;
        emit_set_var(c, target->str, target->len);
        return;
    case N_INDEX:
        compile_expr(c, target->a);
        compile_expr(c, target->b);
        if (compound) {
            emit_byte(c, OP_DUP2);
            emit_byte(c, OP_GET_INDEX);
            compile_expr(c, value);
            emit_byte(c, (uint8_t)binary_opcode(c, op));
        } else {
            compile_expr(c, value);
        }
        c->line = target->line;
        emit_byte(c, OP_SET_INDEX);
        return;
    case N_FIELD: {
        compile_expr(c, target->a);
        int name = name_constant(c, target->str, target->len);
        if (compound) {
            emit_byte(c, OP_DUP);
            emit_byte(c, OP_GET_FIELD);
            emit_short(c, name);
            compile_expr(c, value);
            emit_byte(c, (uint8_t)binary_opcode(c, op));
        } else {
            compile_expr(c, value);
        }
        c->line = target->line;
        emit_byte(c, OP_SET_FIELD);
        emit_short(c, name);
        return;
    }
    default:
        compile_error(c, "invalid assignment target");
    }
}

static void compile_expr(Compiler *c, Node *n)
{
    c->line = n->line;
    switch (n->kind) {
    case N_NIL:
        emit_byte(c, OP_NIL);
        break;
    case N_TRUE:
        emit_byte(c, OP_TRUE);
        break;
    case N_FALSE:
        emit_byte(c, OP_FALSE);
        break;
    case N_INT:
        emit_constant(c, int_value(n->ival));
        break;
    case N_FLOAT:
        emit_constant(c, float_value(n->fval));
        break;
    case N_STRING:
        emit_constant(c, obj_value(string_copy(c->ctx->vm, n->str, (size_t)n->len)));
        break;
    case N_NAME:
        emit_get_var(c, n->str, n->len);
        break;
    case N_ARRAY:
        for (int i = 0; i < n->list.count; i++)
            compile_expr(c, n->list.items[i]);
        c->line = n->line;
        emit_bytes(c, OP_ARRAY, (uint8_t)n->list.count);
        break;
    case N_MAP:
        for (int i = 0; i < n->list.count; i++)
            compile_expr(c, n->list.items[i]);
        c->line = n->line;
        emit_bytes(c, OP_MAP, (uint8_t)(n->list.count / 2));
        break;
    case N_UNARY:
        compile_expr(c, n->a);
        c->line = n->line;
        switch (n->op) {
        case T_MINUS: emit_byte(c, OP_NEG); break;
        case T_BANG: emit_byte(c, OP_NOT); break;
        case T_TILDE: emit_byte(c, OP_BNOT); break;
        default: compile_error(c, "unknown unary operator");
        }
        break;
    case N_BINARY:
        if (try_fold(c, n))
            break;
        compile_expr(c, n->a);
        compile_expr(c, n->b);
        c->line = n->line;
        emit_byte(c, (uint8_t)binary_opcode(c, n->op));
        break;
    case N_LOGICAL: {
        compile_expr(c, n->a);
        c->line = n->line;
        int jump = emit_jump(c, n->op == T_ANDAND ? OP_JUMP_IF_FALSE : OP_JUMP_IF_TRUE);
        emit_byte(c, OP_POP);
        compile_expr(c, n->b);
        patch_jump(c, jump);
        break;
    }
    case N_TERNARY: {
        compile_expr(c, n->a);
        int else_jump = emit_jump(c, OP_POP_JUMP_IF_FALSE);
        compile_expr(c, n->b);
        int end_jump = emit_jump(c, OP_JUMP);
        patch_jump(c, else_jump);
        compile_expr(c, n->c);
        patch_jump(c, end_jump);
        break;
    }
    case N_ASSIGN:
        compile_assign_target_value(c, n->a, n->b, 0, T_EOF);
        break;
    case N_COMPOUND:
        compile_assign_target_value(c, n->a, n->b, 1, n->op);
        break;
    case N_INDEX:
        compile_expr(c, n->a);
        compile_expr(c, n->b);
        c->line = n->line;
        emit_byte(c, OP_GET_INDEX);
        break;
    case N_FIELD:
        compile_expr(c, n->a);
        c->line = n->line;
        emit_byte(c, OP_GET_FIELD);
        emit_short(c, name_constant(c, n->str, n->len));
        break;
    case N_CALL:
        compile_expr(c, n->a);
        for (int i = 0; i < n->list.count; i++)
            compile_expr(c, n->list.items[i]);
        c->line = n->line;
        emit_bytes(c, OP_CALL, (uint8_t)n->list.count);
        break;
    case N_INVOKE: {
        compile_expr(c, n->a);
        for (int i = 0; i < n->list.count; i++)
            compile_expr(c, n->list.items[i]);
        c->line = n->line;
        int name = name_constant(c, n->str, n->len);
        emit_byte(c, OP_INVOKE);
        emit_short(c, name);
        emit_byte(c, (uint8_t)n->list.count);
        break;
    }
    case N_FUNC:
        compile_function(c, n);
        break;
    default:
        compile_error(c, "%s is not an expression", node_kind_name(n->kind));
    }
}

/* ------------------------------------------------------------------ */
/* statements                                                          */
/* ------------------------------------------------------------------ */

static void compile_block_scoped(Compiler *c, Node *n)
{
    if (n->kind == N_BLOCK) {
        begin_scope(c);
        for (int i = 0; i < n->list.count; i++)
            compile_stmt(c, n->list.items[i]);
        end_scope(c);
    } else {
        begin_scope(c);
        compile_stmt(c, n);
        end_scope(c);
    }
}

static void enter_loop(Compiler *c, Loop *loop, int start, int continue_forward)
{
    loop->enclosing = c->loop;
    loop->start = start;
    loop->continue_forward = continue_forward;
    loop->scope_depth = c->scope_depth;
    loop->try_depth = c->try_depth;
    loop->nbreaks = 0;
    loop->ncontinues = 0;
    c->loop = loop;
}

static void leave_loop(Compiler *c, Loop *loop)
{
    for (int i = 0; i < loop->nbreaks; i++)
        patch_jump(c, loop->breaks[i]);
    c->loop = loop->enclosing;
}

/* Emits the pops/closes and handler exits needed to leave to loop level. */
static void unwind_to_loop(Compiler *c, const Loop *loop)
{
    for (int i = c->local_count - 1; i >= 0 && c->locals[i].depth > loop->scope_depth; i--)
        emit_byte(c, c->locals[i].captured ? OP_CLOSE_UPVAL : OP_POP);
    for (int i = loop->try_depth; i < c->try_depth; i++)
        emit_byte(c, OP_END_TRY);
}

static void compile_let(Compiler *c, Node *n)
{
    if (is_global_scope(c)) {
        if (n->a)
            compile_expr(c, n->a);
        else
            emit_byte(c, OP_NIL);
        c->line = n->line;
        emit_byte(c, OP_DEF_GLOBAL);
        emit_short(c, name_constant(c, n->str, n->len));
        return;
    }
    add_local(c, n->str, n->len);
    if (n->a)
        compile_expr(c, n->a);
    else
        emit_byte(c, OP_NIL);
    mark_initialized(c);
}

static void compile_fndecl(Compiler *c, Node *n)
{
    if (is_global_scope(c)) {
        compile_function(c, n->a);
        c->line = n->line;
        emit_byte(c, OP_DEF_GLOBAL);
        emit_short(c, name_constant(c, n->str, n->len));
        return;
    }
    add_local(c, n->str, n->len);
    mark_initialized(c); /* allows direct recursion through an upvalue */
    compile_function(c, n->a);
}

static void compile_while(Compiler *c, Node *n)
{
    Loop loop;
    int start = chunk(c)->count;
    compile_expr(c, n->a);
    int exit_jump = emit_jump(c, OP_POP_JUMP_IF_FALSE);
    enter_loop(c, &loop, start, 0);
    compile_block_scoped(c, n->b);
    emit_loop(c, start);
    patch_jump(c, exit_jump);
    leave_loop(c, &loop);
}

static void compile_for(Compiler *c, Node *n)
{
    Loop loop;
    begin_scope(c);
    if (n->a)
        compile_stmt(c, n->a);
    int start = chunk(c)->count;
    int exit_jump = -1;
    if (n->b) {
        compile_expr(c, n->b);
        exit_jump = emit_jump(c, OP_POP_JUMP_IF_FALSE);
    }
    enter_loop(c, &loop, start, 1);
    compile_block_scoped(c, n->d);
    for (int i = 0; i < loop.ncontinues; i++)
        patch_jump(c, loop.continues[i]);
    if (n->c) {
        compile_expr(c, n->c);
        emit_byte(c, OP_POP);
    }
    emit_loop(c, start);
    if (exit_jump >= 0)
        patch_jump(c, exit_jump);
    leave_loop(c, &loop);
    end_scope(c);
}

static void compile_forin(Compiler *c, Node *n)
{
    Loop loop;
    begin_scope(c);
    compile_expr(c, n->a);
    int seq_slot = add_local(c, " seq", 4);
    mark_initialized(c);
    emit_constant(c, int_value(0));
    add_local(c, " idx", 4);
    mark_initialized(c);

    int start = chunk(c)->count;
    c->line = n->line;
    emit_bytes(c, OP_ITER, (uint8_t)seq_slot);
    emit_short(c, 0xffff);
    int exit_jump = chunk(c)->count - 2;

    enter_loop(c, &loop, start, 0);
    begin_scope(c);
    add_local(c, n->str, n->len); /* the element pushed by OP_ITER */
    mark_initialized(c);
    compile_block_scoped(c, n->b);
    end_scope(c);
    emit_loop(c, start);
    patch_jump(c, exit_jump);
    leave_loop(c, &loop);
    end_scope(c);
}

static void compile_try(Compiler *c, Node *n)
{
    int handler_jump = emit_jump(c, OP_TRY);
    c->try_depth++;
    compile_block_scoped(c, n->a);
    c->try_depth--;
    emit_byte(c, OP_END_TRY);
    int end_jump = emit_jump(c, OP_JUMP);
    patch_jump(c, handler_jump);
    begin_scope(c);
    add_local(c, n->str, n->len); /* the thrown value pushed by the VM */
    mark_initialized(c);
    Node *body = n->b;
    for (int i = 0; i < body->list.count; i++)
        compile_stmt(c, body->list.items[i]);
    end_scope(c);
    patch_jump(c, end_jump);
}

static void compile_stmt(Compiler *c, Node *n)
{
    c->line = n->line;
    switch (n->kind) {
    case N_EXPR_STMT:
        compile_expr(c, n->a);
        emit_byte(c, OP_POP);
        break;
    case N_LET:
        compile_let(c, n);
        break;
    case N_FNDECL:
        compile_fndecl(c, n);
        break;
    case N_BLOCK:
        compile_block_scoped(c, n);
        break;
    case N_IF: {
        compile_expr(c, n->a);
        int else_jump = emit_jump(c, OP_POP_JUMP_IF_FALSE);
        compile_block_scoped(c, n->b);
        if (n->c) {
            int end_jump = emit_jump(c, OP_JUMP);
            patch_jump(c, else_jump);
            compile_block_scoped(c, n->c);
            patch_jump(c, end_jump);
        } else {
            patch_jump(c, else_jump);
        }
        break;
    }
    case N_WHILE:
        compile_while(c, n);
        break;
    case N_FOR:
        compile_for(c, n);
        break;
    case N_FORIN:
        compile_forin(c, n);
        break;
    case N_RETURN:
        if (n->a)
            compile_expr(c, n->a);
        else
            emit_byte(c, OP_NIL);
        c->line = n->line;
        emit_byte(c, OP_RETURN);
        break;
    case N_BREAK:
        if (!c->loop)
            compile_error(c, "'break' outside of a loop");
        if (c->loop->nbreaks == MAX_LOOP_JUMPS)
            compile_error(c, "too many 'break' statements in one loop");
        unwind_to_loop(c, c->loop);
        c->loop->breaks[c->loop->nbreaks++] = emit_jump(c, OP_JUMP);
        break;
    case N_CONTINUE:
        if (!c->loop)
            compile_error(c, "'continue' outside of a loop");
        unwind_to_loop(c, c->loop);
        if (c->loop->continue_forward) {
            if (c->loop->ncontinues == MAX_LOOP_JUMPS)
                compile_error(c, "too many 'continue' statements in one loop");
            c->loop->continues[c->loop->ncontinues++] = emit_jump(c, OP_JUMP);
        } else {
            emit_loop(c, c->loop->start);
        }
        break;
    case N_TRY:
        compile_try(c, n);
        break;
    case N_THROW:
        compile_expr(c, n->a);
        c->line = n->line;
        emit_byte(c, OP_THROW);
        break;
    default:
        compile_expr(c, n);
        emit_byte(c, OP_POP);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* entry point                                                         */
/* ------------------------------------------------------------------ */

__attribute__((noinline)) static ObjProto *compile_program(CompileCtx *ctx, Compiler *c,
                                                          Node *program, const char *name)
{
    init_compiler(c, ctx, NULL, FN_SCRIPT, name, (int)strlen(name), 1);
    for (int i = 0; i < program->list.count; i++)
        compile_stmt(c, program->list.items[i]);
    return end_compiler(c);
}

ObjProto *sl_compile(VM *vm, const char *source, const char *name, StrBuf *errors)
{
    Arena arena;
    Parser parser;
    arena_init(&arena);
    Node *program = parse_program(&parser, source, &arena, errors);
    if (!program) {
        arena_free(&arena);
        return NULL;
    }
    CompileCtx ctx;
    Compiler *saved = vm->compiler;
    Compiler *top = malloc(sizeof(Compiler));
    ObjProto *result = NULL;
    ctx.vm = vm;
    ctx.errors = errors;
    ctx.functions = 0;
    if (!top) {
        sb_puts(errors, "out of memory");
    } else if (setjmp(ctx.bail) == 0) {
        result = compile_program(&ctx, top, program, name);
    } else {
        vm->compiler = saved;
    }
    free(top);
    arena_free(&arena);
    return result;
}
