/*
 * object.c - heap object constructors, value arrays, chunks, string
 * interning, value equality and conversion of values to text.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl.h"

/* ------------------------------------------------------------------ */
/* StrBuf: a malloc-backed growable buffer (not GC managed)            */
/* ------------------------------------------------------------------ */

void sb_init(StrBuf *sb)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void sb_free(StrBuf *sb)
{
    free(sb->data);
    sb_init(sb);
}

static void sb_reserve(StrBuf *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *d = realloc(sb->data, cap);
    if (!d) {
        fputs("out of memory (strbuf)\n", stdout);
        exit(71);
    }
    sb->data = d;
    sb->cap = cap;
}

void sb_putc(StrBuf *sb, char c)
{
    sb_reserve(sb, 1);
    sb->data[sb->len++] = c;
    sb->data[sb->len] = '\0';
}

void sb_append(StrBuf *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_puts(StrBuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void sb_printf(StrBuf *sb, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof small) {
        sb_append(sb, small, (size_t)n);
    } else if (n > 0) {
        sb_reserve(sb, (size_t)n);
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap2);
        sb->len += (size_t)n;
    }
    va_end(ap2);
}

/* ------------------------------------------------------------------ */
/* value arrays and chunks                                             */
/* ------------------------------------------------------------------ */

void value_array_init(ValueArray *a)
{
    a->items = NULL;
    a->count = 0;
    a->capacity = 0;
}

/* The caller must keep v reachable: growing may trigger a collection. */
void value_array_push(VM *vm, ValueArray *a, Value v)
{
    if (a->count == a->capacity) {
        int cap = GROW_CAPACITY(a->capacity);
        a->items = sl_realloc(vm, a->items, sizeof(Value) * (size_t)a->capacity,
                              sizeof(Value) * (size_t)cap);
        a->capacity = cap;
    }
    a->items[a->count++] = v;
}

void value_array_free(VM *vm, ValueArray *a)
{
    sl_realloc(vm, a->items, sizeof(Value) * (size_t)a->capacity, 0);
    value_array_init(a);
}

void chunk_init(Chunk *c)
{
    c->code = NULL;
    c->lines = NULL;
    c->count = 0;
    c->capacity = 0;
    value_array_init(&c->constants);
}

void chunk_write(VM *vm, Chunk *c, uint8_t byte, int line)
{
    if (c->count == c->capacity) {
        int cap = GROW_CAPACITY(c->capacity);
        c->code = sl_realloc(vm, c->code, (size_t)c->capacity, (size_t)cap);
        c->lines = sl_realloc(vm, c->lines, sizeof(int) * (size_t)c->capacity,
                              sizeof(int) * (size_t)cap);
        c->capacity = cap;
    }
    c->code[c->count] = byte;
    c->lines[c->count] = line;
    c->count++;
}

int chunk_add_constant(VM *vm, Chunk *c, Value v)
{
    for (int i = 0; i < c->constants.count; i++) {
        Value k = c->constants.items[i];
        if (k.type == v.type && values_equal(k, v) && !IS_PROTO(v))
            return i;
    }
    vm_push(vm, v);
    value_array_push(vm, &c->constants, v);
    vm_pop(vm);
    return c->constants.count - 1;
}

void chunk_free(VM *vm, Chunk *c)
{
    sl_realloc(vm, c->code, (size_t)c->capacity, 0);
    sl_realloc(vm, c->lines, sizeof(int) * (size_t)c->capacity, 0);
    value_array_free(vm, &c->constants);
    chunk_init(c);
}

/* ------------------------------------------------------------------ */
/* strings                                                             */
/* ------------------------------------------------------------------ */

ObjString *string_copy(VM *vm, const char *chars, size_t length)
{
    uint32_t hash = hash_bytes(chars, length);
    ObjString *interned = table_find_string(&vm->strings, chars, length, hash);
    if (interned)
        return interned;
    ObjString *s = (ObjString *)alloc_object(vm, sizeof(ObjString) + length + 1, OBJ_STRING);
    s->length = length;
    s->hash = hash;
    memcpy(s->chars, chars, length);
    s->chars[length] = '\0';
    vm_push(vm, obj_value(s));
    table_set(vm, &vm->strings, obj_value(s), nil_value());
    vm_pop(vm);
    return s;
}

ObjString *string_from_cstr(VM *vm, const char *s)
{
    return string_copy(vm, s, strlen(s));
}

/* a and b must be reachable (normally they are on the VM stack). */
ObjString *string_concat(VM *vm, ObjString *a, ObjString *b)
{
    size_t len = a->length + b->length;
    char small[256];
    char *buf = len < sizeof small ? small : malloc(len + 1);
    if (!buf) {
        fputs("out of memory (concat)\n", stdout);
        exit(71);
    }
    memcpy(buf, a->chars, a->length);
    memcpy(buf + a->length, b->chars, b->length);
    ObjString *r = string_copy(vm, buf, len);
    if (buf != small)
        free(buf);
    return r;
}

/* ------------------------------------------------------------------ */
/* containers                                                          */
/* ------------------------------------------------------------------ */

ObjArray *array_new(VM *vm)
{
    ObjArray *a = (ObjArray *)alloc_object(vm, sizeof(ObjArray), OBJ_ARRAY);
    value_array_init(&a->values);
    return a;
}

/* arr must be reachable; v is protected here while the array grows. */
void array_append(VM *vm, ObjArray *arr, Value v)
{
    vm_push(vm, v);
    value_array_push(vm, &arr->values, v);
    vm_pop(vm);
}

ObjMap *map_new(VM *vm)
{
    ObjMap *m = (ObjMap *)alloc_object(vm, sizeof(ObjMap), OBJ_MAP);
    table_init(&m->table);
    return m;
}

/* map must be reachable; key and value are protected while it grows. */
void map_set(VM *vm, ObjMap *map, Value key, Value value)
{
    if (!value_hashable(key))
        sl_error(vm, "unhashable map key of type %s", value_type_name(key));
    vm_push(vm, key);
    vm_push(vm, value);
    table_set(vm, &map->table, key, value);
    vm->stack_top -= 2;
}

/* Looks a key up in the map, then along the "__proto" chain. */
int map_get_chain(VM *vm, ObjMap *map, Value key, Value *out)
{
    Value proto_key = obj_value(vm->proto_key);
    for (int depth = 0; map && depth < 32; depth++) {
        Value next;
        if (table_get(&map->table, key, out))
            return 1;
        if (!table_get(&map->table, proto_key, &next) || !IS_MAP(next))
            return 0;
        map = AS_MAP(next);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* functions                                                           */
/* ------------------------------------------------------------------ */

ObjProto *proto_new(VM *vm)
{
    ObjProto *p = (ObjProto *)alloc_object(vm, sizeof(ObjProto), OBJ_PROTO);
    p->arity = 0;
    p->upvalue_count = 0;
    p->name = NULL;
    chunk_init(&p->chunk);
    return p;
}

/* proto must be reachable. */
ObjClosure *closure_new(VM *vm, ObjProto *proto)
{
    ObjUpvalue **ups = NULL;
    if (proto->upvalue_count > 0) {
        ups = sl_realloc(vm, NULL, 0, sizeof(ObjUpvalue *) * (size_t)proto->upvalue_count);
        for (int i = 0; i < proto->upvalue_count; i++)
            ups[i] = NULL;
    }
    ObjClosure *c = (ObjClosure *)alloc_object(vm, sizeof(ObjClosure), OBJ_CLOSURE);
    c->proto = proto;
    c->upvalues = ups;
    c->upvalue_count = proto->upvalue_count;
    return c;
}

ObjUpvalue *upvalue_new(VM *vm, Value *slot)
{
    ObjUpvalue *u = (ObjUpvalue *)alloc_object(vm, sizeof(ObjUpvalue), OBJ_UPVALUE);
    u->location = slot;
    u->closed = nil_value();
    u->next_open = NULL;
    return u;
}

ObjNative *native_new(VM *vm, NativeFn fn, const char *name, int min_args, int max_args)
{
    ObjNative *n = (ObjNative *)alloc_object(vm, sizeof(ObjNative), OBJ_NATIVE);
    n->fn = fn;
    n->name = name;
    n->min_args = min_args;
    n->max_args = max_args;
    return n;
}

/* ------------------------------------------------------------------ */
/* equality, truthiness, names                                         */
/* ------------------------------------------------------------------ */

int values_equal(Value a, Value b)
{
    if (IS_INT(a) && IS_INT(b))
        return a.as.integer == b.as.integer;
    if (IS_NUMBER(a) && IS_NUMBER(b))
        return as_double(a) == as_double(b);
    if (a.type != b.type)
        return 0;
    switch (a.type) {
    case VAL_NIL:
        return 1;
    case VAL_BOOL:
        return a.as.boolean == b.as.boolean;
    case VAL_OBJ:
        return a.as.obj == b.as.obj;
    default:
        return 0;
    }
}

int value_truthy(Value v)
{
    switch (v.type) {
    case VAL_NIL:
        return 0;
    case VAL_BOOL:
        return v.as.boolean;
    case VAL_INT:
        return v.as.integer != 0;
    case VAL_FLOAT:
        return v.as.number != 0.0;
    default:
        return 1;
    }
}

const char *value_type_name(Value v)
{
    switch (v.type) {
    case VAL_NIL: return "nil";
    case VAL_BOOL: return "bool";
    case VAL_INT: return "int";
    case VAL_FLOAT: return "float";
    case VAL_OBJ:
        switch (v.as.obj->type) {
        case OBJ_STRING: return "string";
        case OBJ_ARRAY: return "array";
        case OBJ_MAP: return "map";
        case OBJ_PROTO: return "proto";
        case OBJ_CLOSURE: return "function";
        case OBJ_UPVALUE: return "upvalue";
        case OBJ_NATIVE: return "native";
        }
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* conversion to text                                                  */
/* ------------------------------------------------------------------ */

void format_float(char *buf, size_t size, double d)
{
    if (isnan(d)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, d > 0 ? "inf" : "-inf");
        return;
    }
    snprintf(buf, size, "%.12g", d);
    if (!strpbrk(buf, ".e")) {
        size_t n = strlen(buf);
        if (n + 2 < size) {
            buf[n] = '.';
            buf[n + 1] = '0';
            buf[n + 2] = '\0';
        }
    }
}

static void quote_string(StrBuf *sb, const ObjString *s)
{
    sb_putc(sb, '"');
    for (size_t i = 0; i < s->length; i++) {
        char c = s->chars[i];
        switch (c) {
        case '"': sb_puts(sb, "\\\""); break;
        case '\\': sb_puts(sb, "\\\\"); break;
        case '\n': sb_puts(sb, "\\n"); break;
        case '\t': sb_puts(sb, "\\t"); break;
        default:
            if ((unsigned char)c < 32)
                sb_printf(sb, "\\x%02x", (unsigned char)c);
            else
                sb_putc(sb, c);
        }
    }
    sb_putc(sb, '"');
}

void value_to_buf(StrBuf *sb, Value v, int quote_strings, int depth)
{
    char num[64];
    switch (v.type) {
    case VAL_NIL:
        sb_puts(sb, "nil");
        return;
    case VAL_BOOL:
        sb_puts(sb, v.as.boolean ? "true" : "false");
        return;
    case VAL_INT:
        sb_printf(sb, "%lld", (long long)v.as.integer);
        return;
    case VAL_FLOAT:
        format_float(num, sizeof num, v.as.number);
        sb_puts(sb, num);
        return;
    case VAL_OBJ:
        break;
    }
    Obj *o = v.as.obj;
    switch (o->type) {
    case OBJ_STRING:
        if (quote_strings)
            quote_string(sb, (ObjString *)o);
        else
            sb_append(sb, ((ObjString *)o)->chars, ((ObjString *)o)->length);
        return;
    case OBJ_ARRAY: {
        ObjArray *a = (ObjArray *)o;
        if (depth > 6) {
            sb_puts(sb, "[...]");
            return;
        }
        sb_putc(sb, '[');
        for (int i = 0; i < a->values.count; i++) {
            if (i)
                sb_puts(sb, ", ");
            value_to_buf(sb, a->values.items[i], 1, depth + 1);
        }
        sb_putc(sb, ']');
        return;
    }
    case OBJ_MAP: {
        ObjMap *m = (ObjMap *)o;
        if (depth > 6) {
            sb_puts(sb, "{...}");
            return;
        }
        sb_putc(sb, '{');
        int first = 1;
        for (int i = table_next(&m->table, 0); i >= 0; i = table_next(&m->table, i + 1)) {
            const Entry *e = &m->table.entries[i];
            if (!first)
                sb_puts(sb, ", ");
            first = 0;
            value_to_buf(sb, e->key, 1, depth + 1);
            sb_puts(sb, ": ");
            if (IS_STRING(e->key) && AS_STRING(e->key)->length == 7 &&
                memcmp(AS_CSTRING(e->key), "__proto", 7) == 0 && IS_MAP(e->value))
                sb_puts(sb, "{...}"); /* do not expand whole class hierarchies */
            else
                value_to_buf(sb, e->value, 1, depth + 1);
        }
        sb_putc(sb, '}');
        return;
    }
    case OBJ_PROTO: {
        ObjProto *p = (ObjProto *)o;
        sb_printf(sb, "<proto %s>", p->name ? p->name->chars : "script");
        return;
    }
    case OBJ_CLOSURE: {
        ObjProto *p = ((ObjClosure *)o)->proto;
        sb_printf(sb, "<fn %s/%d>", p->name ? p->name->chars : "anonymous", p->arity);
        return;
    }
    case OBJ_UPVALUE:
        sb_puts(sb, "<upvalue>");
        return;
    case OBJ_NATIVE:
        sb_printf(sb, "<native %s>", ((ObjNative *)o)->name);
        return;
    }
}

ObjString *value_to_string(VM *vm, Value v)
{
    if (IS_STRING(v))
        return AS_STRING(v);
    StrBuf sb;
    sb_init(&sb);
    value_to_buf(&sb, v, 0, 0);
    ObjString *s = string_copy(vm, sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return s;
}
