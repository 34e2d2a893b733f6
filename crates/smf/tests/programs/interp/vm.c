/*
 * vm.c - the bytecode interpreter: value stack, call frames, closures and
 * upvalues, arithmetic, indexing, try/catch handlers and runtime errors.
 *
 * Runtime errors are raised with longjmp to the innermost RunLevel (one
 * per active interpreter loop; natives such as sort() that call back into
 * SL code start a nested loop).  A level handles the error when the
 * innermost try handler belongs to one of its frames, otherwise it passes
 * the error outwards.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl.h"

#define NATIVE_DEPTH_MAX 48

/* ------------------------------------------------------------------ */
/* stack                                                               */
/* ------------------------------------------------------------------ */

static void fatal(const char *msg) __attribute__((noreturn));

static void fatal(const char *msg)
{
    fflush(stdout);
    printf("fatal: %s\n", msg);
    fflush(stdout);
    exit(70);
}

void vm_push(VM *vm, Value v)
{
    if (vm->stack_top >= vm->stack + STACK_MAX)
        fatal("value stack exhausted");
    *vm->stack_top++ = v;
}

Value vm_pop(VM *vm)
{
    return *--vm->stack_top;
}

Value vm_peek(VM *vm, int distance)
{
    return vm->stack_top[-1 - distance];
}

static void reset_stack(VM *vm)
{
    vm->stack_top = vm->stack;
    vm->frame_count = 0;
    vm->handler_count = 0;
    vm->open_upvalues = NULL;
    vm->native_depth = 0;
}

void vm_output(VM *vm, const char *s, size_t n)
{
    fwrite(s, 1, n, stdout);
    for (size_t i = 0; i < n; i++) {
        vm->output_hash ^= (unsigned char)s[i];
        vm->output_hash *= 1099511628211ull;
    }
    vm->output_bytes += (long)n;
}

/* ------------------------------------------------------------------ */
/* errors                                                              */
/* ------------------------------------------------------------------ */

int vm_current_line(VM *vm)
{
    if (vm->frame_count == 0)
        return 0;
    CallFrame *f = &vm->frames[vm->frame_count - 1];
    Chunk *c = &f->closure->proto->chunk;
    long offset = f->ip - c->code - 1;
    if (offset < 0)
        offset = 0;
    if (offset >= c->count)
        offset = c->count - 1;
    return c->lines[offset];
}

void sl_throw(VM *vm, Value v)
{
    if (!vm->run_level)
        fatal("error raised outside of the interpreter loop");
    vm->error_value = v;
    longjmp(vm->run_level->jb, 1);
}

void sl_error(VM *vm, const char *fmt, ...)
{
    char msg[400];
    char full[460];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "line %d: %s", vm_current_line(vm), msg);
    ObjString *s = string_from_cstr(vm, full);
    sl_throw(vm, obj_value(s));
}

/* ------------------------------------------------------------------ */
/* upvalues                                                            */
/* ------------------------------------------------------------------ */

static ObjUpvalue *capture_upvalue(VM *vm, Value *slot)
{
    ObjUpvalue *prev = NULL;
    ObjUpvalue *u = vm->open_upvalues;
    while (u && u->location > slot) {
        prev = u;
        u = u->next_open;
    }
    if (u && u->location == slot)
        return u;
    ObjUpvalue *created = upvalue_new(vm, slot);
    created->next_open = u;
    if (prev)
        prev->next_open = created;
    else
        vm->open_upvalues = created;
    return created;
}

static void close_upvalues(VM *vm, Value *last)
{
    while (vm->open_upvalues && vm->open_upvalues->location >= last) {
        ObjUpvalue *u = vm->open_upvalues;
        u->closed = *u->location;
        u->location = &u->closed;
        vm->open_upvalues = u->next_open;
    }
}

/* ------------------------------------------------------------------ */
/* calls                                                               */
/* ------------------------------------------------------------------ */

static const char *callee_name(Value callee)
{
    if (IS_CLOSURE(callee)) {
        ObjString *n = AS_CLOSURE(callee)->proto->name;
        return n ? n->chars : "anonymous function";
    }
    if (IS_NATIVE(callee))
        return AS_NATIVE(callee)->name;
    return "?";
}

static void call_value(VM *vm, Value callee, int argc)
{
    if (IS_CLOSURE(callee)) {
        ObjClosure *cl = AS_CLOSURE(callee);
        if (argc != cl->proto->arity)
            sl_error(vm, "%s expects %d argument%s but got %d", callee_name(callee),
                     cl->proto->arity, cl->proto->arity == 1 ? "" : "s", argc);
        if (vm->frame_count == FRAMES_MAX ||
            vm->stack_top + STACK_MARGIN > vm->stack + STACK_MAX)
            sl_error(vm, "stack overflow (recursion deeper than %d calls)", FRAMES_MAX);
        CallFrame *f = &vm->frames[vm->frame_count++];
        f->closure = cl;
        f->ip = cl->proto->chunk.code;
        f->slots = vm->stack_top - argc - 1;
        return;
    }
    if (IS_NATIVE(callee)) {
        ObjNative *n = AS_NATIVE(callee);
        if (argc < n->min_args || (n->max_args >= 0 && argc > n->max_args)) {
            if (n->min_args == n->max_args)
                sl_error(vm, "%s() expects %d argument%s but got %d", n->name, n->min_args,
                         n->min_args == 1 ? "" : "s", argc);
            sl_error(vm, "%s() got %d arguments", n->name, argc);
        }
        Value r = n->fn(vm, argc, vm->stack_top - argc);
        vm->stack_top -= argc + 1;
        vm_push(vm, r);
        return;
    }
    sl_error(vm, "cannot call a value of type %s", value_type_name(callee));
}

static SlStatus run(VM *vm, int base_frame);

Value sl_call(VM *vm, Value callee, int argc, const Value *args)
{
    if (!vm->run_level)
        fatal("sl_call outside of the interpreter loop");
    if (vm->native_depth >= NATIVE_DEPTH_MAX)
        sl_error(vm, "too many nested native calls");
    if (vm->stack_top + argc + 1 + STACK_MARGIN > vm->stack + STACK_MAX)
        sl_error(vm, "stack overflow in native call");
    vm_push(vm, callee);
    for (int i = 0; i < argc; i++)
        vm_push(vm, args[i]);
    if (!IS_CLOSURE(callee)) {
        call_value(vm, callee, argc);
        return vm_pop(vm);
    }
    int base = vm->frame_count;
    call_value(vm, callee, argc);
    vm->native_depth++;
    run(vm, base); /* errors propagate to the enclosing level by longjmp */
    vm->native_depth--;
    return vm_pop(vm);
}

/* ------------------------------------------------------------------ */
/* operators                                                           */
/* ------------------------------------------------------------------ */

int compare_values(VM *vm, Value a, Value b)
{
    if (IS_INT(a) && IS_INT(b))
        return (a.as.integer > b.as.integer) - (a.as.integer < b.as.integer);
    if (IS_NUMBER(a) && IS_NUMBER(b)) {
        double x = as_double(a), y = as_double(b);
        return (x > y) - (x < y);
    }
    if (IS_STRING(a) && IS_STRING(b)) {
        ObjString *x = AS_STRING(a), *y = AS_STRING(b);
        size_t n = x->length < y->length ? x->length : y->length;
        int c = memcmp(x->chars, y->chars, n);
        if (c != 0)
            return c < 0 ? -1 : 1;
        return (x->length > y->length) - (x->length < y->length);
    }
    sl_error(vm, "cannot compare %s with %s", value_type_name(a), value_type_name(b));
}

static const char *op_symbol(OpCode op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_MOD: return "%";
    case OP_BAND: return "&";
    case OP_BOR: return "|";
    case OP_BXOR: return "^";
    case OP_SHL: return "<<";
    case OP_SHR: return ">>";
    default: return "?";
    }
}

static Value concat_arrays(VM *vm, ObjArray *a, ObjArray *b)
{
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    int n = a->values.count + b->values.count;
    if (n > 0) {
        r->values.items = sl_realloc(vm, NULL, 0, sizeof(Value) * (size_t)n);
        r->values.capacity = n;
        for (int i = 0; i < a->values.count; i++)
            r->values.items[r->values.count++] = a->values.items[i];
        for (int i = 0; i < b->values.count; i++)
            r->values.items[r->values.count++] = b->values.items[i];
    }
    vm_pop(vm);
    return obj_value(r);
}

static Value repeat_string(VM *vm, ObjString *s, int64_t times)
{
    if (times < 0 || (times > 0 && s->length * (uint64_t)times > 10000000u))
        sl_error(vm, "invalid string repeat count %lld", (long long)times);
    size_t len = s->length * (size_t)times;
    char *buf = malloc(len + 1);
    if (!buf)
        fatal("out of memory");
    for (int64_t i = 0; i < times; i++)
        memcpy(buf + (size_t)i * s->length, s->chars, s->length);
    ObjString *r = string_copy(vm, buf, len);
    free(buf);
    return obj_value(r);
}

/* Operands are on the stack (peek 1 and 0); leaves the result there. */
static void arith(VM *vm, OpCode op)
{
    Value b = vm_peek(vm, 0), a = vm_peek(vm, 1);
    Value r;
    if (IS_INT(a) && IS_INT(b)) {
        int64_t x = a.as.integer, y = b.as.integer;
        uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
        switch (op) {
        case OP_ADD: r = int_value((int64_t)(ux + uy)); break;
        case OP_SUB: r = int_value((int64_t)(ux - uy)); break;
        case OP_MUL: r = int_value((int64_t)(ux * uy)); break;
        case OP_DIV:
            if (y == 0)
                sl_error(vm, "integer division by zero");
            r = int_value(y == -1 ? (int64_t)(0 - ux) : x / y);
            break;
        case OP_MOD:
            if (y == 0)
                sl_error(vm, "integer modulo by zero");
            r = int_value(y == -1 ? 0 : x % y);
            break;
        case OP_BAND: r = int_value(x & y); break;
        case OP_BOR: r = int_value(x | y); break;
        case OP_BXOR: r = int_value(x ^ y); break;
        case OP_SHL: r = int_value((int64_t)(ux << (uy & 63))); break;
        case OP_SHR: r = int_value(x >> (uy & 63)); break;
        default: fatal("bad arithmetic opcode");
        }
    } else if (IS_NUMBER(a) && IS_NUMBER(b) && op <= OP_MOD) {
        double x = as_double(a), y = as_double(b);
        switch (op) {
        case OP_ADD: r = float_value(x + y); break;
        case OP_SUB: r = float_value(x - y); break;
        case OP_MUL: r = float_value(x * y); break;
        case OP_DIV:
            if (y == 0.0)
                sl_error(vm, "float division by zero");
            r = float_value(x / y);
            break;
        case OP_MOD:
            if (y == 0.0)
                sl_error(vm, "float modulo by zero");
            r = float_value(fmod(x, y));
            break;
        default: fatal("bad arithmetic opcode");
        }
    } else if (op == OP_ADD && (IS_STRING(a) || IS_STRING(b))) {
        ObjString *sa = value_to_string(vm, a);
        vm_push(vm, obj_value(sa));
        ObjString *sb = value_to_string(vm, b);
        vm_push(vm, obj_value(sb));
        r = obj_value(string_concat(vm, sa, sb));
        vm->stack_top -= 2;
    } else if (op == OP_ADD && IS_ARRAY(a) && IS_ARRAY(b)) {
        r = concat_arrays(vm, AS_ARRAY(a), AS_ARRAY(b));
    } else if (op == OP_MUL && IS_STRING(a) && IS_INT(b)) {
        r = repeat_string(vm, AS_STRING(a), b.as.integer);
    } else {
        sl_error(vm, "unsupported operand types for %s: %s and %s", op_symbol(op),
                 value_type_name(a), value_type_name(b));
    }
    vm->stack_top -= 2;
    vm_push(vm, r);
}

static int64_t normalise_index(VM *vm, Value idx, int64_t length, const char *what)
{
    if (!IS_INT(idx))
        sl_error(vm, "%s index must be an int, not %s", what, value_type_name(idx));
    int64_t i = idx.as.integer;
    if (i < 0)
        i += length;
    if (i < 0 || i >= length)
        sl_error(vm, "%s index %lld out of range (length %lld)", what,
                 (long long)idx.as.integer, (long long)length);
    return i;
}

static Value get_index(VM *vm, Value obj, Value idx)
{
    if (IS_ARRAY(obj)) {
        ObjArray *a = AS_ARRAY(obj);
        return a->values.items[normalise_index(vm, idx, a->values.count, "array")];
    }
    if (IS_STRING(obj)) {
        ObjString *s = AS_STRING(obj);
        int64_t i = normalise_index(vm, idx, (int64_t)s->length, "string");
        return obj_value(string_copy(vm, s->chars + i, 1));
    }
    if (IS_MAP(obj)) {
        Value out;
        if (!value_hashable(idx))
            sl_error(vm, "unhashable map key of type %s", value_type_name(idx));
        if (table_get(&AS_MAP(obj)->table, idx, &out))
            return out;
        return nil_value();
    }
    sl_error(vm, "cannot index a value of type %s", value_type_name(obj));
}

static void set_index(VM *vm, Value obj, Value idx, Value v)
{
    if (IS_ARRAY(obj)) {
        ObjArray *a = AS_ARRAY(obj);
        a->values.items[normalise_index(vm, idx, a->values.count, "array")] = v;
        return;
    }
    if (IS_MAP(obj)) {
        map_set(vm, AS_MAP(obj), idx, v);
        return;
    }
    if (IS_STRING(obj))
        sl_error(vm, "strings are immutable");
    sl_error(vm, "cannot assign into a value of type %s", value_type_name(obj));
}

/* ------------------------------------------------------------------ */
/* the interpreter loop                                                */
/* ------------------------------------------------------------------ */

static void execute(VM *vm, int base_frame)
{
    CallFrame *frame = &vm->frames[vm->frame_count - 1];

#define READ_BYTE() (*frame->ip++)
#define READ_SHORT() (frame->ip += 2, (int)((frame->ip[-2] << 8) | frame->ip[-1]))
#define READ_CONST() (frame->closure->proto->chunk.constants.items[READ_SHORT()])
#define READ_STRING() AS_STRING(READ_CONST())

    for (;;) {
        vm->instructions++;
        uint8_t op = READ_BYTE();
        switch ((OpCode)op) {
        case OP_CONST:
            vm_push(vm, READ_CONST());
            break;
        case OP_NIL:
            vm_push(vm, nil_value());
            break;
        case OP_TRUE:
            vm_push(vm, bool_value(1));
            break;
        case OP_FALSE:
            vm_push(vm, bool_value(0));
            break;
        case OP_POP:
            vm->stack_top--;
            break;
        case OP_DUP:
            vm_push(vm, vm_peek(vm, 0));
            break;
        case OP_DUP2: {
            Value a = vm_peek(vm, 1), b = vm_peek(vm, 0);
            vm_push(vm, a);
            vm_push(vm, b);
            break;
        }
        case OP_GET_LOCAL:
            vm_push(vm, frame->slots[READ_BYTE()]);
            break;
        case OP_SET_LOCAL:
            frame->slots[READ_BYTE()] = vm_peek(vm, 0);
            break;
        case OP_GET_GLOBAL: {
            ObjString *name = READ_STRING();
            Value v;
            if (!table_get(&vm->globals, obj_value(name), &v))
                sl_error(vm, "undefined variable '%s'", name->chars);
            vm_push(vm, v);
            break;
        }
        case OP_SET_GLOBAL: {
            ObjString *name = READ_STRING();
            Value old;
            if (!table_get(&vm->globals, obj_value(name), &old))
                sl_error(vm, "assignment to undeclared variable '%s'", name->chars);
            table_set(vm, &vm->globals, obj_value(name), vm_peek(vm, 0));
            break;
        }
        case OP_DEF_GLOBAL: {
            ObjString *name = READ_STRING();
            table_set(vm, &vm->globals, obj_value(name), vm_peek(vm, 0));
            vm->stack_top--;
            break;
        }
        case OP_GET_UPVAL:
            vm_push(vm, *frame->closure->upvalues[READ_BYTE()]->location);
            break;
        case OP_SET_UPVAL:
            *frame->closure->upvalues[READ_BYTE()]->location = vm_peek(vm, 0);
            break;
        case OP_CLOSE_UPVAL:
            close_upvalues(vm, vm->stack_top - 1);
            vm->stack_top--;
            break;
        case OP_GET_INDEX: {
            Value r = get_index(vm, vm_peek(vm, 1), vm_peek(vm, 0));
            vm->stack_top -= 2;
            vm_push(vm, r);
            break;
        }
        case OP_SET_INDEX: {
            Value v = vm_peek(vm, 0);
            set_index(vm, vm_peek(vm, 2), vm_peek(vm, 1), v);
            vm->stack_top -= 3;
            vm_push(vm, v);
            break;
        }
        case OP_GET_FIELD: {
            ObjString *name = READ_STRING();
            Value obj = vm_peek(vm, 0);
            Value r = nil_value();
            if (IS_MAP(obj)) {
                map_get_chain(vm, AS_MAP(obj), obj_value(name), &r);
            } else if ((IS_ARRAY(obj) || IS_STRING(obj)) && strcmp(name->chars, "length") == 0) {
                r = int_value(IS_ARRAY(obj) ? AS_ARRAY(obj)->values.count
                                            : (int64_t)AS_STRING(obj)->length);
            } else {
                sl_error(vm, "cannot read field '%s' of %s", name->chars, value_type_name(obj));
            }
            vm->stack_top[-1] = r;
            break;
        }
        case OP_SET_FIELD: {
            ObjString *name = READ_STRING();
            Value v = vm_peek(vm, 0), obj = vm_peek(vm, 1);
            if (!IS_MAP(obj))
                sl_error(vm, "cannot set field '%s' on %s", name->chars, value_type_name(obj));
            map_set(vm, AS_MAP(obj), obj_value(name), v);
            vm->stack_top -= 2;
            vm_push(vm, v);
            break;
        }
        case OP_ADD:
            if (IS_INT(vm_peek(vm, 0)) && IS_INT(vm_peek(vm, 1))) {
                /* fast path */
                uint64_t y = (uint64_t)vm_pop(vm).as.integer;
                vm->stack_top[-1].as.integer = (int64_t)((uint64_t)vm->stack_top[-1].as.integer + y);
                break;
            }
            arith(vm, OP_ADD);
            break;
        case OP_SUB:
        case OP_MUL:
        case OP_DIV:
        case OP_MOD:
        case OP_BAND:
        case OP_BOR:
        case OP_BXOR:
        case OP_SHL:
        case OP_SHR:
            arith(vm, (OpCode)op);
            break;
        case OP_NEG: {
            Value v = vm_peek(vm, 0);
            if (IS_INT(v))
                vm->stack_top[-1] = int_value((int64_t)(0 - (uint64_t)v.as.integer));
            else if (IS_FLOAT(v))
                vm->stack_top[-1] = float_value(-v.as.number);
            else
                sl_error(vm, "cannot negate a value of type %s", value_type_name(v));
            break;
        }
        case OP_NOT:
            vm->stack_top[-1] = bool_value(!value_truthy(vm_peek(vm, 0)));
            break;
        case OP_BNOT: {
            Value v = vm_peek(vm, 0);
            if (!IS_INT(v))
                sl_error(vm, "operand of ~ must be an int, not %s", value_type_name(v));
            vm->stack_top[-1] = int_value(~v.as.integer);
            break;
        }
        case OP_EQ:
        case OP_NE: {
            Value b = vm_pop(vm), a = vm_pop(vm);
            int eq = values_equal(a, b);
            vm_push(vm, bool_value(op == OP_EQ ? eq : !eq));
            break;
        }
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE: {
            int c = compare_values(vm, vm_peek(vm, 1), vm_peek(vm, 0));
            int r = op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
            vm->stack_top -= 2;
            vm_push(vm, bool_value(r));
            break;
        }
        case OP_JUMP: {
            int offset = READ_SHORT();
            frame->ip += offset;
            break;
        }
        case OP_JUMP_IF_FALSE: {
            int offset = READ_SHORT();
            if (!value_truthy(vm_peek(vm, 0)))
                frame->ip += offset;
            break;
        }
        case OP_JUMP_IF_TRUE: {
            int offset = READ_SHORT();
            if (value_truthy(vm_peek(vm, 0)))
                frame->ip += offset;
            break;
        }
        case OP_POP_JUMP_IF_FALSE: {
            int offset = READ_SHORT();
            if (!value_truthy(vm_pop(vm)))
                frame->ip += offset;
            break;
        }
        case OP_LOOP: {
            int offset = READ_SHORT();
            frame->ip -= offset;
            break;
        }
        case OP_CALL: {
            int argc = READ_BYTE();
            call_value(vm, vm_peek(vm, argc), argc);
            frame = &vm->frames[vm->frame_count - 1];
            break;
        }
        case OP_INVOKE: {
            ObjString *name = READ_STRING();
            int argc = READ_BYTE();
            Value receiver = vm_peek(vm, argc);
            Value method;
            if (!IS_MAP(receiver))
                sl_error(vm, "cannot call method '%s' on %s", name->chars,
                         value_type_name(receiver));
            if (!map_get_chain(vm, AS_MAP(receiver), obj_value(name), &method))
                sl_error(vm, "undefined method '%s'", name->chars);
            Value *recv_slot = vm->stack_top - argc - 1;
            vm_push(vm, nil_value());
            memmove(recv_slot + 1, recv_slot, sizeof(Value) * (size_t)(argc + 1));
            *recv_slot = method;
            call_value(vm, method, argc + 1);
            frame = &vm->frames[vm->frame_count - 1];
            break;
        }
        case OP_CLOSURE: {
            ObjProto *proto = AS_PROTO(READ_CONST());
            ObjClosure *cl = closure_new(vm, proto);
            vm_push(vm, obj_value(cl));
            for (int i = 0; i < cl->upvalue_count; i++) {
                uint8_t is_local = READ_BYTE();
                uint8_t index = READ_BYTE();
                cl->upvalues[i] = is_local ? capture_upvalue(vm, frame->slots + index)
                                           : frame->closure->upvalues[index];
            }
            break;
        }
        case OP_RETURN: {
            Value result = vm_pop(vm);
            while (vm->handler_count > 0 &&
                   vm->handlers[vm->handler_count - 1].frame_count >= vm->frame_count)
                vm->handler_count--;
            close_upvalues(vm, frame->slots);
            vm->frame_count--;
            vm->stack_top = frame->slots;
            vm_push(vm, result);
            if (vm->frame_count == base_frame)
                return;
            frame = &vm->frames[vm->frame_count - 1];
            break;
        }
        case OP_ARRAY: {
            int n = READ_BYTE();
            ObjArray *a = array_new(vm);
            vm_push(vm, obj_value(a));
            if (n > 0) {
                a->values.items = sl_realloc(vm, NULL, 0, sizeof(Value) * (size_t)n);
                a->values.capacity = n;
                memcpy(a->values.items, vm->stack_top - 1 - n, sizeof(Value) * (size_t)n);
                a->values.count = n;
            }
            vm->stack_top -= n + 1;
            vm_push(vm, obj_value(a));
            break;
        }
        case OP_MAP: {
            int pairs = READ_BYTE();
            ObjMap *m = map_new(vm);
            vm_push(vm, obj_value(m));
            Value *base = vm->stack_top - 1 - 2 * pairs;
            for (int i = 0; i < pairs; i++)
                map_set(vm, m, base[2 * i], base[2 * i + 1]);
            vm->stack_top = base;
            vm_push(vm, obj_value(m));
            break;
        }
        case OP_TRY: {
            int offset = READ_SHORT();
            if (vm->handler_count == HANDLERS_MAX)
                sl_error(vm, "too many nested try blocks");
            Handler *h = &vm->handlers[vm->handler_count++];
            h->catch_ip = frame->ip + offset;
            h->frame_count = vm->frame_count;
            h->stack_top = vm->stack_top;
            h->native_depth = vm->native_depth;
            break;
        }
        case OP_END_TRY:
            vm->handler_count--;
            break;
        case OP_THROW: {
            Value v = vm_pop(vm);
            sl_throw(vm, v);
        }
        case OP_ITER: {
            int slot = READ_BYTE();
            int offset = READ_SHORT();
            Value seq = frame->slots[slot];
            Value *idx = &frame->slots[slot + 1];
            int64_t i = idx->as.integer;
            if (IS_ARRAY(seq)) {
                ObjArray *a = AS_ARRAY(seq);
                if (i >= a->values.count) {
                    frame->ip += offset;
                    break;
                }
                vm_push(vm, a->values.items[i]);
                idx->as.integer = i + 1;
            } else if (IS_MAP(seq)) {
                ObjMap *m = AS_MAP(seq);
                int next = table_next(&m->table, (int)i);
                if (next < 0) {
                    frame->ip += offset;
                    break;
                }
                vm_push(vm, m->table.entries[next].key);
                idx->as.integer = next + 1;
            } else if (IS_STRING(seq)) {
                ObjString *s = AS_STRING(seq);
                if (i >= (int64_t)s->length) {
                    frame->ip += offset;
                    break;
                }
                ObjString *ch = string_copy(vm, s->chars + i, 1);
                vm_push(vm, obj_value(ch));
                idx->as.integer = i + 1;
            } else if (IS_INT(seq)) {
                if (i >= seq.as.integer) {
                    frame->ip += offset;
                    break;
                }
                vm_push(vm, int_value(i));
                idx->as.integer = i + 1;
            } else {
                sl_error(vm, "cannot iterate over a value of type %s", value_type_name(seq));
            }
            break;
        }
        case OP__COUNT:
        default:
            fatal("invalid opcode");
        }
    }
#undef READ_BYTE
#undef READ_SHORT
#undef READ_CONST
#undef READ_STRING
}

static int handle_error(VM *vm, int base_frame)
{
    if (vm->handler_count == 0)
        return 0;
    Handler *h = &vm->handlers[vm->handler_count - 1];
    if (h->frame_count <= base_frame)
        return 0;
    vm->handler_count--;
    close_upvalues(vm, h->stack_top);
    vm->frame_count = h->frame_count;
    vm->stack_top = h->stack_top;
    vm->native_depth = h->native_depth;
    vm_push(vm, vm->error_value);
    vm->error_value = nil_value();
    vm->frames[vm->frame_count - 1].ip = h->catch_ip;
    return 1;
}

static void report_uncaught(VM *vm)
{
    StrBuf sb;
    sb_init(&sb);
    sb_puts(&sb, "uncaught error: ");
    value_to_buf(&sb, vm->error_value, 0, 0);
    sb_putc(&sb, '\n');
    for (int i = vm->frame_count - 1; i >= 0; i--) {
        CallFrame *f = &vm->frames[i];
        Chunk *c = &f->closure->proto->chunk;
        long offset = f->ip - c->code - 1;
        if (offset < 0)
            offset = 0;
        ObjString *name = f->closure->proto->name;
        sb_printf(&sb, "  in %s at line %d\n", name ? name->chars : "anonymous",
                  c->lines[offset]);
    }
    vm_output(vm, sb.data, sb.len);
    sb_free(&sb);
}

static SlStatus run(VM *vm, int base_frame)
{
    RunLevel level;
    level.outer = vm->run_level;
    level.base_frame = base_frame;
    vm->run_level = &level;
    for (;;) {
        if (setjmp(level.jb) == 0) {
            execute(vm, base_frame);
            vm->run_level = level.outer;
            return SL_OK;
        }
        if (handle_error(vm, base_frame))
            continue;
        vm->run_level = level.outer;
        if (level.outer)
            longjmp(level.outer->jb, 1);
        report_uncaught(vm);
        close_upvalues(vm, vm->stack);
        reset_stack(vm);
        vm->error_value = nil_value();
        return SL_RUNTIME_ERROR;
    }
}

/* ------------------------------------------------------------------ */
/* public API                                                          */
/* ------------------------------------------------------------------ */

VM *vm_new(void)
{
    VM *vm = calloc(1, sizeof(VM));
    if (!vm)
        fatal("cannot allocate the virtual machine");
    reset_stack(vm);
    vm->run_level = NULL;
    vm->error_value = nil_value();
    table_init(&vm->globals);
    table_init(&vm->strings);
    vm->objects = NULL;
    vm->bytes_allocated = 0;
    vm->next_gc = 256 * 1024;
#ifdef SL_GC_STRESS
    vm->stress_gc = 1; /* debugging aid: collect on every allocation */
#endif
    vm->output_hash = 1469598103934665603ull;
    vm->proto_key = string_from_cstr(vm, "__proto");
    builtins_register(vm);
    return vm;
}

void vm_free(VM *vm)
{
    table_free(vm, &vm->globals);
    table_free(vm, &vm->strings);
    vm->proto_key = NULL;
    gc_free_all(vm);
    free(vm);
}

void vm_define_native(VM *vm, const char *name, NativeFn fn, int min_args, int max_args)
{
    vm_push(vm, obj_value(string_from_cstr(vm, name)));
    vm_push(vm, obj_value(native_new(vm, fn, name, min_args, max_args)));
    table_set(vm, &vm->globals, vm->stack_top[-2], vm->stack_top[-1]);
    vm->stack_top -= 2;
}

SlStatus vm_interpret(VM *vm, const char *source, const char *name, Value *result)
{
    StrBuf errors;
    sb_init(&errors);
    ObjProto *proto = sl_compile(vm, source, name, &errors);
    if (!proto) {
        vm_output(vm, errors.data ? errors.data : "compile failed", errors.data ? errors.len : 14);
        vm_output(vm, "\n", 1);
        sb_free(&errors);
        return SL_COMPILE_ERROR;
    }
    sb_free(&errors);
    vm_push(vm, obj_value(proto));
    ObjClosure *cl = closure_new(vm, proto);
    vm->stack_top--;
    vm_push(vm, obj_value(cl));
    CallFrame *f = &vm->frames[vm->frame_count++];
    f->closure = cl;
    f->ip = proto->chunk.code;
    f->slots = vm->stack_top - 1;
    SlStatus st = run(vm, 0);
    if (st == SL_OK)
        *result = vm_pop(vm);
    else
        *result = nil_value();
    return st;
}
