/*
 * gc.c - allocation accounting and a mark-and-sweep garbage collector
 * with an explicit gray stack.  Roots: the VM value stack, call frames,
 * open upvalues, globals, the pending error value, the "__proto" key and
 * every function prototype currently under construction by the compiler.
 */
#include <stdlib.h>
#include <string.h>

#include "sl.h"

#define GC_HEAP_GROW_FACTOR 2
#define GC_MIN_THRESHOLD (256 * 1024)

void *sl_realloc(VM *vm, void *ptr, size_t old_size, size_t new_size)
{
    vm->bytes_allocated += new_size;
    vm->bytes_allocated -= old_size;
    if (new_size > old_size) {
        if (vm->stress_gc || vm->bytes_allocated > vm->next_gc)
            gc_collect(vm);
    }
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    void *r = realloc(ptr, new_size);
    if (!r) {
        fputs("out of memory\n", stdout);
        exit(71);
    }
    return r;
}

Obj *alloc_object(VM *vm, size_t size, ObjType type)
{
    Obj *o = sl_realloc(vm, NULL, 0, size);
    o->type = type;
    o->marked = 0;
    o->next = vm->objects;
    vm->objects = o;
    vm->object_count++;
    return o;
}

static size_t object_size(const Obj *o)
{
    switch (o->type) {
    case OBJ_STRING:
        return sizeof(ObjString) + ((const ObjString *)o)->length + 1;
    case OBJ_ARRAY:
        return sizeof(ObjArray);
    case OBJ_MAP:
        return sizeof(ObjMap);
    case OBJ_PROTO:
        return sizeof(ObjProto);
    case OBJ_CLOSURE:
        return sizeof(ObjClosure);
    case OBJ_UPVALUE:
        return sizeof(ObjUpvalue);
    case OBJ_NATIVE:
        return sizeof(ObjNative);
    }
    return 0;
}

static void free_object(VM *vm, Obj *o)
{
    switch (o->type) {
    case OBJ_STRING:
        break;
    case OBJ_ARRAY:
        value_array_free(vm, &((ObjArray *)o)->values);
        break;
    case OBJ_MAP:
        table_free(vm, &((ObjMap *)o)->table);
        break;
    case OBJ_PROTO:
        chunk_free(vm, &((ObjProto *)o)->chunk);
        break;
    case OBJ_CLOSURE: {
        ObjClosure *c = (ObjClosure *)o;
        sl_realloc(vm, c->upvalues, sizeof(ObjUpvalue *) * (size_t)c->upvalue_count, 0);
        break;
    }
    case OBJ_UPVALUE:
    case OBJ_NATIVE:
        break;
    }
    sl_realloc(vm, o, object_size(o), 0);
    vm->object_count--;
}

void gc_mark_object(VM *vm, Obj *o)
{
    if (!o || o->marked)
        return;
    o->marked = 1;
    if (vm->gray_count == vm->gray_capacity) {
        vm->gray_capacity = GROW_CAPACITY(vm->gray_capacity);
        /* the gray stack uses plain realloc: it must not recurse into the GC */
        Obj **g = realloc(vm->gray, sizeof(Obj *) * (size_t)vm->gray_capacity);
        if (!g) {
            fputs("out of memory (gc)\n", stdout);
            exit(71);
        }
        vm->gray = g;
    }
    vm->gray[vm->gray_count++] = o;
}

void gc_mark_value(VM *vm, Value v)
{
    if (IS_OBJ(v))
        gc_mark_object(vm, v.as.obj);
}

static void mark_value_array(VM *vm, const ValueArray *a)
{
    for (int i = 0; i < a->count; i++)
        gc_mark_value(vm, a->items[i]);
}

static void blacken(VM *vm, Obj *o)
{
    switch (o->type) {
    case OBJ_STRING:
    case OBJ_NATIVE:
        break;
    case OBJ_ARRAY:
        mark_value_array(vm, &((ObjArray *)o)->values);
        break;
    case OBJ_MAP:
        table_mark(vm, &((ObjMap *)o)->table);
        break;
    case OBJ_PROTO: {
        ObjProto *p = (ObjProto *)o;
        gc_mark_object(vm, (Obj *)p->name);
        mark_value_array(vm, &p->chunk.constants);
        break;
    }
    case OBJ_CLOSURE: {
        ObjClosure *c = (ObjClosure *)o;
        gc_mark_object(vm, (Obj *)c->proto);
        for (int i = 0; i < c->upvalue_count; i++)
            gc_mark_object(vm, (Obj *)c->upvalues[i]);
        break;
    }
    case OBJ_UPVALUE:
        gc_mark_value(vm, ((ObjUpvalue *)o)->closed);
        break;
    }
}

static void mark_roots(VM *vm)
{
    for (Value *slot = vm->stack; slot < vm->stack_top; slot++)
        gc_mark_value(vm, *slot);
    for (int i = 0; i < vm->frame_count; i++)
        gc_mark_object(vm, (Obj *)vm->frames[i].closure);
    for (ObjUpvalue *u = vm->open_upvalues; u; u = u->next_open)
        gc_mark_object(vm, (Obj *)u);
    table_mark(vm, &vm->globals);
    gc_mark_value(vm, vm->error_value);
    gc_mark_object(vm, (Obj *)vm->proto_key);
    mark_compiler_roots(vm);
}

static void trace_references(VM *vm)
{
    while (vm->gray_count > 0) {
        Obj *o = vm->gray[--vm->gray_count];
        blacken(vm, o);
    }
}

static void sweep(VM *vm)
{
    Obj *prev = NULL;
    Obj *o = vm->objects;
    while (o) {
        if (o->marked) {
            o->marked = 0;
            prev = o;
            o = o->next;
            continue;
        }
        Obj *unreached = o;
        o = o->next;
        if (prev)
            prev->next = o;
        else
            vm->objects = o;
        free_object(vm, unreached);
    }
}

void gc_collect(VM *vm)
{
    static int collecting;
    if (collecting)
        return;
    collecting = 1;
    mark_roots(vm);
    trace_references(vm);
    table_remove_white(&vm->strings);
    sweep(vm);
    vm->next_gc = vm->bytes_allocated * GC_HEAP_GROW_FACTOR;
    if (vm->next_gc < GC_MIN_THRESHOLD)
        vm->next_gc = GC_MIN_THRESHOLD;
    vm->gc_runs++;
    collecting = 0;
}

void gc_free_all(VM *vm)
{
    Obj *o = vm->objects;
    while (o) {
        Obj *next = o->next;
        free_object(vm, o);
        o = next;
    }
    vm->objects = NULL;
    free(vm->gray);
    vm->gray = NULL;
    vm->gray_count = vm->gray_capacity = 0;
}
