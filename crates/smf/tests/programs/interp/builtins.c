/*
 * builtins.c - the native function library available to SL scripts.
 * Natives receive their arguments in place on the VM stack; any object
 * they create before returning is kept reachable by pushing it.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl.h"

/* ------------------------------------------------------------------ */
/* argument helpers                                                    */
/* ------------------------------------------------------------------ */

static ObjString *arg_string(VM *vm, Value *args, int i, const char *fn)
{
    if (!IS_STRING(args[i]))
        sl_error(vm, "%s() argument %d must be a string, not %s", fn, i + 1,
                 value_type_name(args[i]));
    return AS_STRING(args[i]);
}

static ObjArray *arg_array(VM *vm, Value *args, int i, const char *fn)
{
    if (!IS_ARRAY(args[i]))
        sl_error(vm, "%s() argument %d must be an array, not %s", fn, i + 1,
                 value_type_name(args[i]));
    return AS_ARRAY(args[i]);
}

static ObjMap *arg_map(VM *vm, Value *args, int i, const char *fn)
{
    if (!IS_MAP(args[i]))
        sl_error(vm, "%s() argument %d must be a map, not %s", fn, i + 1,
                 value_type_name(args[i]));
    return AS_MAP(args[i]);
}

static int64_t arg_int(VM *vm, Value *args, int i, const char *fn)
{
    if (!IS_INT(args[i]))
        sl_error(vm, "%s() argument %d must be an int, not %s", fn, i + 1,
                 value_type_name(args[i]));
    return args[i].as.integer;
}

static double arg_number(VM *vm, Value *args, int i, const char *fn)
{
    if (!IS_NUMBER(args[i]))
        sl_error(vm, "%s() argument %d must be a number, not %s", fn, i + 1,
                 value_type_name(args[i]));
    return as_double(args[i]);
}

static void arg_callable(VM *vm, Value *args, int i, const char *fn)
{
    if (!IS_CLOSURE(args[i]) && !IS_NATIVE(args[i]))
        sl_error(vm, "%s() argument %d must be a function, not %s", fn, i + 1,
                 value_type_name(args[i]));
}

/* Reserves room for n more elements; arr must be reachable. */
static void array_reserve(VM *vm, ObjArray *arr, int n)
{
    int need = arr->values.count + n;
    if (need <= arr->values.capacity)
        return;
    int cap = arr->values.capacity ? arr->values.capacity : 8;
    while (cap < need)
        cap *= 2;
    arr->values.items = sl_realloc(vm, arr->values.items,
                                   sizeof(Value) * (size_t)arr->values.capacity,
                                   sizeof(Value) * (size_t)cap);
    arr->values.capacity = cap;
}

/* ------------------------------------------------------------------ */
/* output and conversion                                               */
/* ------------------------------------------------------------------ */

static Value nat_print(VM *vm, int argc, Value *args)
{
    StrBuf sb;
    sb_init(&sb);
    for (int i = 0; i < argc; i++) {
        if (i)
            sb_putc(&sb, ' ');
        value_to_buf(&sb, args[i], 0, 0);
    }
    sb_putc(&sb, '\n');
    vm_output(vm, sb.data, sb.len);
    sb_free(&sb);
    return nil_value();
}

static Value nat_write(VM *vm, int argc, Value *args)
{
    StrBuf sb;
    sb_init(&sb);
    for (int i = 0; i < argc; i++)
        value_to_buf(&sb, args[i], 0, 0);
    if (sb.len)
        vm_output(vm, sb.data, sb.len);
    sb_free(&sb);
    return nil_value();
}

static Value nat_str(VM *vm, int argc, Value *args)
{
    (void)argc;
    return obj_value(value_to_string(vm, args[0]));
}

static Value nat_repr(VM *vm, int argc, Value *args)
{
    (void)argc;
    StrBuf sb;
    sb_init(&sb);
    value_to_buf(&sb, args[0], 1, 0);
    ObjString *s = string_copy(vm, sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return obj_value(s);
}

static Value nat_int(VM *vm, int argc, Value *args)
{
    (void)argc;
    Value v = args[0];
    switch (v.type) {
    case VAL_INT:
        return v;
    case VAL_BOOL:
        return int_value(v.as.boolean);
    case VAL_FLOAT:
        if (!(v.as.number > -9.2e18 && v.as.number < 9.2e18))
            sl_error(vm, "int(): float out of range");
        return int_value((int64_t)v.as.number);
    default:
        break;
    }
    if (IS_STRING(v)) {
        const char *s = AS_CSTRING(v);
        char *end;
        errno = 0;
        long long r = strtoll(s, &end, 10);
        while (*end && isspace((unsigned char)*end))
            end++;
        if (end == s || *end || errno == ERANGE)
            sl_error(vm, "int(): invalid literal '%s'", s);
        return int_value(r);
    }
    sl_error(vm, "int(): cannot convert %s", value_type_name(v));
}

static Value nat_float(VM *vm, int argc, Value *args)
{
    (void)argc;
    Value v = args[0];
    if (IS_NUMBER(v))
        return float_value(as_double(v));
    if (IS_STRING(v)) {
        const char *s = AS_CSTRING(v);
        char *end;
        double d = strtod(s, &end);
        if (end == s || *end)
            sl_error(vm, "float(): invalid literal '%s'", s);
        return float_value(d);
    }
    sl_error(vm, "float(): cannot convert %s", value_type_name(v));
}

static Value nat_type(VM *vm, int argc, Value *args)
{
    (void)argc;
    return obj_value(string_from_cstr(vm, value_type_name(args[0])));
}

static Value nat_fmt(VM *vm, int argc, Value *args)
{
    (void)argc;
    double d = arg_number(vm, args, 0, "fmt");
    int64_t digits = arg_int(vm, args, 1, "fmt");
    if (digits < 0 || digits > 20)
        sl_error(vm, "fmt(): digits out of range");
    char buf[128];
    snprintf(buf, sizeof buf, "%.*f", (int)digits, d);
    return obj_value(string_from_cstr(vm, buf));
}

/* format("{} and {}", a, b) */
static Value nat_format(VM *vm, int argc, Value *args)
{
    ObjString *f = arg_string(vm, args, 0, "format");
    StrBuf sb;
    sb_init(&sb);
    int next = 1;
    for (size_t i = 0; i < f->length; i++) {
        if (f->chars[i] == '{' && i + 1 < f->length && f->chars[i + 1] == '}') {
            if (next >= argc) {
                sb_free(&sb);
                sl_error(vm, "format(): not enough arguments");
            }
            value_to_buf(&sb, args[next++], 0, 0);
            i++;
        } else {
            sb_putc(&sb, f->chars[i]);
        }
    }
    ObjString *s = string_copy(vm, sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return obj_value(s);
}

/* ------------------------------------------------------------------ */
/* containers                                                          */
/* ------------------------------------------------------------------ */

static Value nat_len(VM *vm, int argc, Value *args)
{
    (void)argc;
    Value v = args[0];
    if (IS_STRING(v))
        return int_value((int64_t)AS_STRING(v)->length);
    if (IS_ARRAY(v))
        return int_value(AS_ARRAY(v)->values.count);
    if (IS_MAP(v))
        return int_value(AS_MAP(v)->table.live);
    sl_error(vm, "len(): %s has no length", value_type_name(v));
}

static Value nat_push(VM *vm, int argc, Value *args)
{
    ObjArray *a = arg_array(vm, args, 0, "push");
    array_reserve(vm, a, argc - 1);
    for (int i = 1; i < argc; i++)
        a->values.items[a->values.count++] = args[i];
    return args[0];
}

static Value nat_pop(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjArray *a = arg_array(vm, args, 0, "pop");
    if (a->values.count == 0)
        sl_error(vm, "pop() from an empty array");
    return a->values.items[--a->values.count];
}

static Value nat_insert(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjArray *a = arg_array(vm, args, 0, "insert");
    int64_t at = arg_int(vm, args, 1, "insert");
    if (at < 0 || at > a->values.count)
        sl_error(vm, "insert(): position %lld out of range", (long long)at);
    array_reserve(vm, a, 1);
    memmove(&a->values.items[at + 1], &a->values.items[at],
            sizeof(Value) * (size_t)(a->values.count - at));
    a->values.items[at] = args[2];
    a->values.count++;
    return args[0];
}

static Value nat_slice(VM *vm, int argc, Value *args)
{
    int64_t len;
    if (IS_ARRAY(args[0]))
        len = AS_ARRAY(args[0])->values.count;
    else if (IS_STRING(args[0]))
        len = (int64_t)AS_STRING(args[0])->length;
    else
        sl_error(vm, "slice(): cannot slice %s", value_type_name(args[0]));
    int64_t start = arg_int(vm, args, 1, "slice");
    int64_t end = argc > 2 ? arg_int(vm, args, 2, "slice") : len;
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (start < 0)
        start = 0;
    if (end > len)
        end = len;
    if (end < start)
        end = start;
    if (IS_STRING(args[0]))
        return obj_value(string_copy(vm, AS_CSTRING(args[0]) + start, (size_t)(end - start)));
    ObjArray *src = AS_ARRAY(args[0]);
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    array_reserve(vm, r, (int)(end - start));
    for (int64_t i = start; i < end; i++)
        r->values.items[r->values.count++] = src->values.items[i];
    vm_pop(vm);
    return obj_value(r);
}

static Value nat_reverse(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjArray *src = arg_array(vm, args, 0, "reverse");
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    array_reserve(vm, r, src->values.count);
    for (int i = src->values.count - 1; i >= 0; i--)
        r->values.items[r->values.count++] = src->values.items[i];
    vm_pop(vm);
    return obj_value(r);
}

static Value nat_keys(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjMap *m = arg_map(vm, args, 0, "keys");
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    array_reserve(vm, r, m->table.live);
    for (int i = table_next(&m->table, 0); i >= 0; i = table_next(&m->table, i + 1))
        r->values.items[r->values.count++] = m->table.entries[i].key;
    vm_pop(vm);
    return obj_value(r);
}

static Value nat_values(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjMap *m = arg_map(vm, args, 0, "values");
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    array_reserve(vm, r, m->table.live);
    for (int i = table_next(&m->table, 0); i >= 0; i = table_next(&m->table, i + 1))
        r->values.items[r->values.count++] = m->table.entries[i].value;
    vm_pop(vm);
    return obj_value(r);
}

static Value nat_has(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjMap *m = arg_map(vm, args, 0, "has");
    Value out;
    return bool_value(table_get(&m->table, args[1], &out));
}

static Value nat_get(VM *vm, int argc, Value *args)
{
    ObjMap *m = arg_map(vm, args, 0, "get");
    Value out;
    if (table_get(&m->table, args[1], &out))
        return out;
    return argc > 2 ? args[2] : nil_value();
}

static Value nat_remove(VM *vm, int argc, Value *args)
{
    (void)argc;
    if (IS_ARRAY(args[0])) {
        ObjArray *a = AS_ARRAY(args[0]);
        int64_t at = arg_int(vm, args, 1, "remove");
        if (at < 0 || at >= a->values.count)
            sl_error(vm, "remove(): index %lld out of range", (long long)at);
        Value v = a->values.items[at];
        memmove(&a->values.items[at], &a->values.items[at + 1],
                sizeof(Value) * (size_t)(a->values.count - at - 1));
        a->values.count--;
        return v;
    }
    ObjMap *m = arg_map(vm, args, 0, "remove");
    return bool_value(table_delete(&m->table, args[1]));
}

static Value nat_copy(VM *vm, int argc, Value *args)
{
    (void)argc;
    if (IS_ARRAY(args[0])) {
        ObjArray *src = AS_ARRAY(args[0]);
        ObjArray *r = array_new(vm);
        vm_push(vm, obj_value(r));
        array_reserve(vm, r, src->values.count);
        memcpy(r->values.items, src->values.items, sizeof(Value) * (size_t)src->values.count);
        r->values.count = src->values.count;
        vm_pop(vm);
        return obj_value(r);
    }
    if (IS_MAP(args[0])) {
        ObjMap *src = AS_MAP(args[0]);
        ObjMap *r = map_new(vm);
        vm_push(vm, obj_value(r));
        for (int i = table_next(&src->table, 0); i >= 0; i = table_next(&src->table, i + 1))
            map_set(vm, r, src->table.entries[i].key, src->table.entries[i].value);
        vm_pop(vm);
        return obj_value(r);
    }
    return args[0];
}

static Value nat_range(VM *vm, int argc, Value *args)
{
    int64_t start = 0, stop, step = 1;
    if (argc == 1) {
        stop = arg_int(vm, args, 0, "range");
    } else {
        start = arg_int(vm, args, 0, "range");
        stop = arg_int(vm, args, 1, "range");
        if (argc > 2)
            step = arg_int(vm, args, 2, "range");
    }
    if (step == 0)
        sl_error(vm, "range(): step must not be zero");
    int64_t n = 0;
    if (step > 0 && stop > start)
        n = (stop - start + step - 1) / step;
    else if (step < 0 && stop < start)
        n = (start - stop - step - 1) / -step;
    if (n > 1000000)
        sl_error(vm, "range(): too many elements");
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    array_reserve(vm, r, (int)n);
    for (int64_t i = 0; i < n; i++)
        r->values.items[r->values.count++] = int_value(start + i * step);
    vm_pop(vm);
    return obj_value(r);
}

/* ------------------------------------------------------------------ */
/* sorting: qsort with a comparator that calls back into the VM        */
/* ------------------------------------------------------------------ */

typedef struct SortCtx {
    VM *vm;
    Value cmp;
    long calls;
} SortCtx;

static SortCtx *current_sort;

static int sort_compare(const void *pa, const void *pb)
{
    SortCtx *ctx = current_sort;
    Value a = *(const Value *)pa, b = *(const Value *)pb;
    ctx->calls++;
    if (IS_NIL(ctx->cmp))
        return compare_values(ctx->vm, a, b);
    Value argv[2] = { a, b };
    Value r = sl_call(ctx->vm, ctx->cmp, 2, argv);
    current_sort = ctx; /* a nested sort inside the comparator may have replaced it */
    if (IS_INT(r))
        return (r.as.integer > 0) - (r.as.integer < 0);
    if (IS_FLOAT(r))
        return (r.as.number > 0) - (r.as.number < 0);
    if (IS_BOOL(r))
        return r.as.boolean ? -1 : 1;
    sl_error(ctx->vm, "sort comparator returned %s, expected a number", value_type_name(r));
}

static Value nat_sort(VM *vm, int argc, Value *args)
{
    ObjArray *src = arg_array(vm, args, 0, "sort");
    Value cmp = nil_value();
    if (argc > 1) {
        arg_callable(vm, args, 1, "sort");
        cmp = args[1];
    }
    int n = src->values.count;
    if (n < 2)
        return args[0];
    /* sort a private copy so the comparator may safely touch the array */
    ObjArray *tmp = array_new(vm);
    vm_push(vm, obj_value(tmp));
    array_reserve(vm, tmp, n);
    memcpy(tmp->values.items, src->values.items, sizeof(Value) * (size_t)n);
    tmp->values.count = n;

    SortCtx ctx = { vm, cmp, 0 };
    SortCtx *saved = current_sort;
    current_sort = &ctx;
    qsort(tmp->values.items, (size_t)n, sizeof(Value), sort_compare);
    current_sort = saved;

    if (src->values.count != n)
        sl_error(vm, "sort(): array changed size while sorting");
    memcpy(src->values.items, tmp->values.items, sizeof(Value) * (size_t)n);
    vm_pop(vm);
    return args[0];
}

/* ------------------------------------------------------------------ */
/* higher order functions (nested interpreter loops)                   */
/* ------------------------------------------------------------------ */

static Value nat_map(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjArray *src = arg_array(vm, args, 0, "map");
    arg_callable(vm, args, 1, "map");
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    for (int i = 0; i < src->values.count; i++) {
        Value v = sl_call(vm, args[1], 1, &src->values.items[i]);
        array_append(vm, r, v);
    }
    vm_pop(vm);
    return obj_value(r);
}

static Value nat_filter(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjArray *src = arg_array(vm, args, 0, "filter");
    arg_callable(vm, args, 1, "filter");
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    for (int i = 0; i < src->values.count; i++) {
        Value item = src->values.items[i];
        if (value_truthy(sl_call(vm, args[1], 1, &item)))
            array_append(vm, r, item);
    }
    vm_pop(vm);
    return obj_value(r);
}

static Value nat_reduce(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjArray *src = arg_array(vm, args, 0, "reduce");
    arg_callable(vm, args, 1, "reduce");
    vm_push(vm, args[2]); /* accumulator slot, keeps intermediate results alive */
    Value *acc = vm->stack_top - 1;
    for (int i = 0; i < src->values.count; i++) {
        Value pair[2] = { *acc, src->values.items[i] };
        *acc = sl_call(vm, args[1], 2, pair);
    }
    return vm_pop(vm);
}

static Value nat_apply(VM *vm, int argc, Value *args)
{
    (void)argc;
    arg_callable(vm, args, 0, "apply");
    ObjArray *a = arg_array(vm, args, 1, "apply");
    if (a->values.count > 32)
        sl_error(vm, "apply(): too many arguments");
    Value copy[32];
    memcpy(copy, a->values.items, sizeof(Value) * (size_t)a->values.count);
    return sl_call(vm, args[0], a->values.count, copy);
}

static Value nat_eval(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjString *src = arg_string(vm, args, 0, "eval");
    StrBuf errors;
    sb_init(&errors);
    ObjProto *proto = sl_compile(vm, src->chars, "eval", &errors);
    if (!proto) {
        ObjString *msg = string_copy(vm, errors.data ? errors.data : "?", errors.len);
        sb_free(&errors);
        sl_throw(vm, obj_value(msg));
    }
    sb_free(&errors);
    vm_push(vm, obj_value(proto));
    ObjClosure *cl = closure_new(vm, proto);
    vm->stack_top[-1] = obj_value(cl);
    Value r = sl_call(vm, obj_value(cl), 0, NULL);
    vm_pop(vm);
    return r;
}

static Value nat_error(VM *vm, int argc, Value *args)
{
    (void)argc;
    sl_throw(vm, args[0]);
}

static Value nat_assert(VM *vm, int argc, Value *args)
{
    if (!value_truthy(args[0])) {
        if (argc > 1) {
            ObjString *m = value_to_string(vm, args[1]);
            sl_error(vm, "assertion failed: %s", m->chars);
        }
        sl_error(vm, "assertion failed");
    }
    return bool_value(1);
}

/* ------------------------------------------------------------------ */
/* strings                                                             */
/* ------------------------------------------------------------------ */

static Value nat_substr(VM *vm, int argc, Value *args)
{
    ObjString *s = arg_string(vm, args, 0, "substr");
    int64_t start = arg_int(vm, args, 1, "substr");
    int64_t len = argc > 2 ? arg_int(vm, args, 2, "substr") : (int64_t)s->length;
    if (start < 0)
        start += (int64_t)s->length;
    if (start < 0 || start > (int64_t)s->length || len < 0)
        sl_error(vm, "substr(): range out of bounds");
    if (start + len > (int64_t)s->length)
        len = (int64_t)s->length - start;
    return obj_value(string_copy(vm, s->chars + start, (size_t)len));
}

static Value nat_split(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjString *s = arg_string(vm, args, 0, "split");
    ObjString *sep = arg_string(vm, args, 1, "split");
    ObjArray *r = array_new(vm);
    vm_push(vm, obj_value(r));
    if (sep->length == 0) {
        for (size_t i = 0; i < s->length; i++)
            array_append(vm, r, obj_value(string_copy(vm, s->chars + i, 1)));
    } else {
        size_t start = 0;
        for (size_t i = 0; i + sep->length <= s->length;) {
            if (memcmp(s->chars + i, sep->chars, sep->length) == 0) {
                array_append(vm, r, obj_value(string_copy(vm, s->chars + start, i - start)));
                i += sep->length;
                start = i;
            } else {
                i++;
            }
        }
        array_append(vm, r, obj_value(string_copy(vm, s->chars + start, s->length - start)));
    }
    vm_pop(vm);
    return obj_value(r);
}

static Value nat_join(VM *vm, int argc, Value *args)
{
    ObjArray *a = arg_array(vm, args, 0, "join");
    ObjString *sep = argc > 1 ? arg_string(vm, args, 1, "join") : NULL;
    StrBuf sb;
    sb_init(&sb);
    for (int i = 0; i < a->values.count; i++) {
        if (i && sep)
            sb_append(&sb, sep->chars, sep->length);
        value_to_buf(&sb, a->values.items[i], 0, 0);
    }
    ObjString *s = string_copy(vm, sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return obj_value(s);
}

static Value nat_upper(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjString *s = arg_string(vm, args, 0, "upper");
    char *buf = malloc(s->length + 1);
    if (!buf)
        sl_error(vm, "out of memory");
    for (size_t i = 0; i < s->length; i++)
        buf[i] = (char)toupper((unsigned char)s->chars[i]);
    ObjString *r = string_copy(vm, buf, s->length);
    free(buf);
    return obj_value(r);
}

static Value nat_lower(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjString *s = arg_string(vm, args, 0, "lower");
    char *buf = malloc(s->length + 1);
    if (!buf)
        sl_error(vm, "out of memory");
    for (size_t i = 0; i < s->length; i++)
        buf[i] = (char)tolower((unsigned char)s->chars[i]);
    ObjString *r = string_copy(vm, buf, s->length);
    free(buf);
    return obj_value(r);
}

static Value nat_find(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjString *s = arg_string(vm, args, 0, "find");
    ObjString *sub = arg_string(vm, args, 1, "find");
    if (sub->length == 0)
        return int_value(0);
    for (size_t i = 0; i + sub->length <= s->length; i++)
        if (memcmp(s->chars + i, sub->chars, sub->length) == 0)
            return int_value((int64_t)i);
    return int_value(-1);
}

static Value nat_replace(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjString *s = arg_string(vm, args, 0, "replace");
    ObjString *from = arg_string(vm, args, 1, "replace");
    ObjString *to = arg_string(vm, args, 2, "replace");
    if (from->length == 0)
        return args[0];
    StrBuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < s->length;) {
        if (i + from->length <= s->length && memcmp(s->chars + i, from->chars, from->length) == 0) {
            sb_append(&sb, to->chars, to->length);
            i += from->length;
        } else {
            sb_putc(&sb, s->chars[i++]);
        }
    }
    ObjString *r = string_copy(vm, sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return obj_value(r);
}

static Value nat_ord(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjString *s = arg_string(vm, args, 0, "ord");
    if (s->length == 0)
        sl_error(vm, "ord(): empty string");
    return int_value((unsigned char)s->chars[0]);
}

static Value nat_chr(VM *vm, int argc, Value *args)
{
    (void)argc;
    int64_t c = arg_int(vm, args, 0, "chr");
    if (c < 0 || c > 255)
        sl_error(vm, "chr(): code %lld out of range", (long long)c);
    char ch = (char)c;
    return obj_value(string_copy(vm, &ch, 1));
}

static Value nat_hash(VM *vm, int argc, Value *args)
{
    (void)argc;
    ObjString *s = arg_string(vm, args, 0, "hash");
    return int_value((int64_t)hash_bytes(s->chars, s->length));
}

/* ------------------------------------------------------------------ */
/* math (libm)                                                         */
/* ------------------------------------------------------------------ */

#define MATH1(cname, expr)                                          \
    static Value nat_##cname(VM *vm, int argc, Value *args)         \
    {                                                               \
        (void)argc;                                                 \
        double x = arg_number(vm, args, 0, #cname);                 \
        return float_value(expr);                                   \
    }

MATH1(sqrt, sqrt(x))
MATH1(sin, sin(x))
MATH1(cos, cos(x))
MATH1(exp, exp(x))
MATH1(log, log(x))
MATH1(atan, atan(x))

static Value nat_floor(VM *vm, int argc, Value *args)
{
    (void)argc;
    if (IS_INT(args[0]))
        return args[0];
    double d = floor(arg_number(vm, args, 0, "floor"));
    if (d > -9.2e18 && d < 9.2e18)
        return int_value((int64_t)d);
    return float_value(d);
}

static Value nat_ceil(VM *vm, int argc, Value *args)
{
    (void)argc;
    if (IS_INT(args[0]))
        return args[0];
    double d = ceil(arg_number(vm, args, 0, "ceil"));
    if (d > -9.2e18 && d < 9.2e18)
        return int_value((int64_t)d);
    return float_value(d);
}

static Value nat_pow(VM *vm, int argc, Value *args)
{
    (void)argc;
    if (IS_INT(args[0]) && IS_INT(args[1]) && args[1].as.integer >= 0) {
        uint64_t base = (uint64_t)args[0].as.integer, result = 1;
        int64_t e = args[1].as.integer;
        while (e > 0) {
            if (e & 1)
                result *= base;
            base *= base;
            e >>= 1;
        }
        return int_value((int64_t)result);
    }
    return float_value(pow(arg_number(vm, args, 0, "pow"), arg_number(vm, args, 1, "pow")));
}

static Value nat_atan2(VM *vm, int argc, Value *args)
{
    (void)argc;
    return float_value(atan2(arg_number(vm, args, 0, "atan2"), arg_number(vm, args, 1, "atan2")));
}

static Value nat_abs(VM *vm, int argc, Value *args)
{
    (void)argc;
    if (IS_INT(args[0]))
        return int_value(args[0].as.integer < 0 ? (int64_t)(0 - (uint64_t)args[0].as.integer)
                                                : args[0].as.integer);
    return float_value(fabs(arg_number(vm, args, 0, "abs")));
}

static Value minmax(VM *vm, int argc, Value *args, int want_max, const char *name)
{
    Value *items = args;
    int n = argc;
    if (argc == 1 && IS_ARRAY(args[0])) {
        items = AS_ARRAY(args[0])->values.items;
        n = AS_ARRAY(args[0])->values.count;
    }
    if (n == 0)
        sl_error(vm, "%s(): no values", name);
    Value best = items[0];
    for (int i = 1; i < n; i++) {
        int c = compare_values(vm, items[i], best);
        if (want_max ? c > 0 : c < 0)
            best = items[i];
    }
    return best;
}

static Value nat_min(VM *vm, int argc, Value *args)
{
    return minmax(vm, argc, args, 0, "min");
}

static Value nat_max(VM *vm, int argc, Value *args)
{
    return minmax(vm, argc, args, 1, "max");
}

/* ------------------------------------------------------------------ */
/* introspection                                                       */
/* ------------------------------------------------------------------ */

static Value nat_gc(VM *vm, int argc, Value *args)
{
    (void)argc;
    (void)args;
    gc_collect(vm);
    return int_value(vm->object_count);
}

static Value nat_stats(VM *vm, int argc, Value *args)
{
    (void)argc;
    (void)args;
    ObjMap *m = map_new(vm);
    vm_push(vm, obj_value(m));
    static const char *const names[] = { "instructions", "gc_runs", "objects", "output_bytes" };
    int64_t vals[] = { vm->instructions, vm->gc_runs, vm->object_count, vm->output_bytes };
    for (int i = 0; i < 4; i++) {
        Value key = obj_value(string_from_cstr(vm, names[i]));
        map_set(vm, m, key, int_value(vals[i]));
    }
    vm_pop(vm);
    return obj_value(m);
}

static Value nat_disasm(VM *vm, int argc, Value *args)
{
    (void)argc;
    if (!IS_CLOSURE(args[0]))
        sl_error(vm, "disasm(): expected a function, not %s", value_type_name(args[0]));
    StrBuf sb;
    sb_init(&sb);
    disassemble_proto(&sb, AS_CLOSURE(args[0])->proto, 1);
    ObjString *s = string_copy(vm, sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return obj_value(s);
}

/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    NativeFn fn;
    int min_args;
    int max_args;
} natives[] = {
    { "print", nat_print, 0, -1 },      { "write", nat_write, 0, -1 },
    { "str", nat_str, 1, 1 },           { "repr", nat_repr, 1, 1 },
    { "int", nat_int, 1, 1 },           { "float", nat_float, 1, 1 },
    { "type", nat_type, 1, 1 },         { "fmt", nat_fmt, 2, 2 },
    { "format", nat_format, 1, -1 },    { "len", nat_len, 1, 1 },
    { "push", nat_push, 2, -1 },        { "pop", nat_pop, 1, 1 },
    { "insert", nat_insert, 3, 3 },     { "slice", nat_slice, 2, 3 },
    { "reverse", nat_reverse, 1, 1 },   { "keys", nat_keys, 1, 1 },
    { "values", nat_values, 1, 1 },     { "has", nat_has, 2, 2 },
    { "get", nat_get, 2, 3 },           { "remove", nat_remove, 2, 2 },
    { "copy", nat_copy, 1, 1 },         { "range", nat_range, 1, 3 },
    { "sort", nat_sort, 1, 2 },         { "map", nat_map, 2, 2 },
    { "filter", nat_filter, 2, 2 },     { "reduce", nat_reduce, 3, 3 },
    { "apply", nat_apply, 2, 2 },       { "eval", nat_eval, 1, 1 },
    { "error", nat_error, 1, 1 },       { "assert", nat_assert, 1, 2 },
    { "substr", nat_substr, 2, 3 },     { "split", nat_split, 2, 2 },
    { "join", nat_join, 1, 2 },         { "upper", nat_upper, 1, 1 },
    { "lower", nat_lower, 1, 1 },       { "find", nat_find, 2, 2 },
    { "replace", nat_replace, 3, 3 },   { "ord", nat_ord, 1, 1 },
    { "chr", nat_chr, 1, 1 },           { "hash", nat_hash, 1, 1 },
    { "sqrt", nat_sqrt, 1, 1 },         { "sin", nat_sin, 1, 1 },
    { "cos", nat_cos, 1, 1 },           { "exp", nat_exp, 1, 1 },
    { "log", nat_log, 1, 1 },           { "atan", nat_atan, 1, 1 },
    { "floor", nat_floor, 1, 1 },       { "ceil", nat_ceil, 1, 1 },
    { "pow", nat_pow, 2, 2 },           { "atan2", nat_atan2, 2, 2 },
    { "abs", nat_abs, 1, 1 },           { "min", nat_min, 1, -1 },
    { "max", nat_max, 1, -1 },          { "gc", nat_gc, 0, 0 },
    { "stats", nat_stats, 0, 0 },       { "disasm", nat_disasm, 1, 1 },
};

void builtins_register(VM *vm)
{
    for (size_t i = 0; i < sizeof natives / sizeof natives[0]; i++)
        vm_define_native(vm, natives[i].name, natives[i].fn, natives[i].min_args,
                         natives[i].max_args);
    /* a few constants */
    Value key = obj_value(string_from_cstr(vm, "PI"));
    vm_push(vm, key);
    table_set(vm, &vm->globals, key, float_value(4.0 * atan(1.0)));
    vm_pop(vm);
}
