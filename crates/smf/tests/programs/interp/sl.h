/*
 * sl.h - shared definitions for "SL", a small dynamically typed scripting
 * language: values, heap objects, bytecode, the virtual machine state and
 * the interfaces between the lexer, parser, compiler, VM, GC and builtins.
 */
#ifndef SL_H
#define SL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct VM VM;
typedef struct Obj Obj;
typedef struct ObjString ObjString;
typedef struct ObjArray ObjArray;
typedef struct ObjMap ObjMap;
typedef struct ObjProto ObjProto;
typedef struct ObjClosure ObjClosure;
typedef struct ObjUpvalue ObjUpvalue;
typedef struct ObjNative ObjNative;

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

typedef enum { VAL_NIL, VAL_BOOL, VAL_INT, VAL_FLOAT, VAL_OBJ } ValueType;

typedef struct {
    ValueType type;
    union {
        int64_t integer;
        double number;
        int boolean;
        Obj *obj;
    } as;
} Value;

typedef enum {
    OBJ_STRING,
    OBJ_ARRAY,
    OBJ_MAP,
    OBJ_PROTO,
    OBJ_CLOSURE,
    OBJ_UPVALUE,
    OBJ_NATIVE
} ObjType;

struct Obj {
    ObjType type;
    int marked;
    Obj *next;
};

static inline Value nil_value(void)
{
    Value v;
    v.type = VAL_NIL;
    v.as.integer = 0;
    return v;
}

static inline Value bool_value(int b)
{
    Value v;
    v.type = VAL_BOOL;
    v.as.integer = 0;
    v.as.boolean = b != 0;
    return v;
}

static inline Value int_value(int64_t i)
{
    Value v;
    v.type = VAL_INT;
    v.as.integer = i;
    return v;
}

static inline Value float_value(double d)
{
    Value v;
    v.type = VAL_FLOAT;
    v.as.number = d;
    return v;
}

static inline Value obj_value(void *o)
{
    Value v;
    v.type = VAL_OBJ;
    v.as.obj = (Obj *)o;
    return v;
}

#define IS_NIL(v) ((v).type == VAL_NIL)
#define IS_BOOL(v) ((v).type == VAL_BOOL)
#define IS_INT(v) ((v).type == VAL_INT)
#define IS_FLOAT(v) ((v).type == VAL_FLOAT)
#define IS_NUMBER(v) (IS_INT(v) || IS_FLOAT(v))
#define IS_OBJ(v) ((v).type == VAL_OBJ)

static inline int is_obj_type(Value v, ObjType t)
{
    return v.type == VAL_OBJ && v.as.obj->type == t;
}

#define IS_STRING(v) is_obj_type(v, OBJ_STRING)
#define IS_ARRAY(v) is_obj_type(v, OBJ_ARRAY)
#define IS_MAP(v) is_obj_type(v, OBJ_MAP)
#define IS_PROTO(v) is_obj_type(v, OBJ_PROTO)
#define IS_CLOSURE(v) is_obj_type(v, OBJ_CLOSURE)
#define IS_NATIVE(v) is_obj_type(v, OBJ_NATIVE)

#define AS_OBJ(v) ((v).as.obj)
#define AS_STRING(v) ((ObjString *)(v).as.obj)
#define AS_CSTRING(v) (((ObjString *)(v).as.obj)->chars)
#define AS_ARRAY(v) ((ObjArray *)(v).as.obj)
#define AS_MAP(v) ((ObjMap *)(v).as.obj)
#define AS_PROTO(v) ((ObjProto *)(v).as.obj)
#define AS_CLOSURE(v) ((ObjClosure *)(v).as.obj)
#define AS_NATIVE(v) ((ObjNative *)(v).as.obj)

static inline double as_double(Value v)
{
    return IS_INT(v) ? (double)v.as.integer : v.as.number;
}

typedef struct {
    Value *items;
    int count;
    int capacity;
} ValueArray;

/* ------------------------------------------------------------------ */
/* Hash table with open addressing (linear probing, tombstones)        */
/* ------------------------------------------------------------------ */

typedef struct {
    Value key;   /* nil key: empty (value nil) or tombstone (value true) */
    Value value;
} Entry;

typedef struct {
    int count;    /* live entries + tombstones, drives the load factor */
    int live;     /* live entries only */
    int capacity; /* always 0 or a power of two */
    Entry *entries;
} Table;

/* ------------------------------------------------------------------ */
/* Heap objects                                                        */
/* ------------------------------------------------------------------ */

struct ObjString {
    Obj obj;
    uint32_t hash;
    size_t length;
    char chars[];
};

struct ObjArray {
    Obj obj;
    ValueArray values;
};

struct ObjMap {
    Obj obj;
    Table table;
};

typedef struct {
    uint8_t *code;
    int *lines;
    int count;
    int capacity;
    ValueArray constants;
} Chunk;

struct ObjProto {
    Obj obj;
    int arity;
    int upvalue_count;
    Chunk chunk;
    ObjString *name;
};

struct ObjUpvalue {
    Obj obj;
    Value *location;
    Value closed;
    ObjUpvalue *next_open;
};

struct ObjClosure {
    Obj obj;
    ObjProto *proto;
    ObjUpvalue **upvalues;
    int upvalue_count;
};

typedef Value (*NativeFn)(VM *vm, int argc, Value *args);

struct ObjNative {
    Obj obj;
    NativeFn fn;
    const char *name;
    int min_args;
    int max_args; /* -1: variadic */
};

/* ------------------------------------------------------------------ */
/* Bytecode                                                            */
/* ------------------------------------------------------------------ */

typedef enum {
    OP_CONST,          /* u16 constant index */
    OP_NIL,
    OP_TRUE,
    OP_FALSE,
    OP_POP,
    OP_DUP,
    OP_DUP2,
    OP_GET_LOCAL,      /* u8 slot */
    OP_SET_LOCAL,      /* u8 slot */
    OP_GET_GLOBAL,     /* u16 name */
    OP_SET_GLOBAL,     /* u16 name */
    OP_DEF_GLOBAL,     /* u16 name */
    OP_GET_UPVAL,      /* u8 index */
    OP_SET_UPVAL,      /* u8 index */
    OP_CLOSE_UPVAL,
    OP_GET_INDEX,
    OP_SET_INDEX,
    OP_GET_FIELD,      /* u16 name */
    OP_SET_FIELD,      /* u16 name */
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_NEG,
    OP_NOT,
    OP_BNOT,
    OP_BAND,
    OP_BOR,
    OP_BXOR,
    OP_SHL,
    OP_SHR,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_JUMP,           /* u16 forward offset */
    OP_JUMP_IF_FALSE,  /* u16, leaves condition on the stack */
    OP_JUMP_IF_TRUE,   /* u16, leaves condition on the stack */
    OP_POP_JUMP_IF_FALSE, /* u16, pops condition */
    OP_LOOP,           /* u16 backward offset */
    OP_CALL,           /* u8 argc */
    OP_INVOKE,         /* u16 name, u8 argc */
    OP_CLOSURE,        /* u16 proto, then (is_local, index) pairs */
    OP_RETURN,
    OP_ARRAY,          /* u8 element count */
    OP_MAP,            /* u8 pair count */
    OP_TRY,            /* u16 offset to the handler */
    OP_END_TRY,
    OP_THROW,
    OP_ITER,           /* u8 sequence slot, u16 exit offset */
    OP__COUNT
} OpCode;

/* ------------------------------------------------------------------ */
/* Virtual machine                                                     */
/* ------------------------------------------------------------------ */

#define FRAMES_MAX 200
#define STACK_MAX (FRAMES_MAX * 256)
#define HANDLERS_MAX 64
#define STACK_MARGIN 600

typedef struct {
    ObjClosure *closure;
    uint8_t *ip;
    Value *slots;
} CallFrame;

typedef struct {
    uint8_t *catch_ip;
    int frame_count; /* frames alive when the try began */
    Value *stack_top;
    int native_depth;
} Handler;

typedef struct RunLevel {
    jmp_buf jb;
    struct RunLevel *outer;
    int base_frame;
} RunLevel;

struct Compiler;

struct VM {
    Value stack[STACK_MAX];
    Value *stack_top;
    CallFrame frames[FRAMES_MAX];
    int frame_count;
    Handler handlers[HANDLERS_MAX];
    int handler_count;
    RunLevel *run_level;
    Value error_value;

    Table globals;
    Table strings; /* interned strings (weak) */
    ObjUpvalue *open_upvalues;
    struct Compiler *compiler; /* innermost function being compiled (GC root) */
    ObjString *proto_key;      /* interned "__proto" */

    Obj *objects;
    size_t bytes_allocated;
    size_t next_gc;
    Obj **gray;
    int gray_count;
    int gray_capacity;
    int gc_runs;
    int object_count;
    int stress_gc;

    uint64_t output_hash;
    long output_bytes;
    long instructions;
    int native_depth;
};

/* ------------------------------------------------------------------ */
/* Growable text buffer                                                */
/* ------------------------------------------------------------------ */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} StrBuf;

void sb_init(StrBuf *sb);
void sb_free(StrBuf *sb);
void sb_putc(StrBuf *sb, char c);
void sb_append(StrBuf *sb, const char *s, size_t n);
void sb_puts(StrBuf *sb, const char *s);
void sb_printf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ */
/* gc.c                                                                */
/* ------------------------------------------------------------------ */

void *sl_realloc(VM *vm, void *ptr, size_t old_size, size_t new_size);
Obj *alloc_object(VM *vm, size_t size, ObjType type);
void gc_collect(VM *vm);
void gc_mark_value(VM *vm, Value v);
void gc_mark_object(VM *vm, Obj *o);
void gc_free_all(VM *vm);
void mark_compiler_roots(VM *vm);

#define GROW_CAPACITY(c) ((c) < 8 ? 8 : (c) * 2)

/* ------------------------------------------------------------------ */
/* table.c                                                             */
/* ------------------------------------------------------------------ */

void table_init(Table *t);
void table_free(VM *vm, Table *t);
int value_hashable(Value key);
uint32_t hash_value(Value key);
int table_get(const Table *t, Value key, Value *out);
int table_set(VM *vm, Table *t, Value key, Value value);
int table_delete(Table *t, Value key);
int table_next(const Table *t, int index);
ObjString *table_find_string(const Table *t, const char *chars, size_t length, uint32_t hash);
void table_remove_white(Table *t);
void table_mark(VM *vm, Table *t);
uint32_t hash_bytes(const char *s, size_t n);

/* ------------------------------------------------------------------ */
/* object.c                                                            */
/* ------------------------------------------------------------------ */

void value_array_init(ValueArray *a);
void value_array_push(VM *vm, ValueArray *a, Value v);
void value_array_free(VM *vm, ValueArray *a);

ObjString *string_copy(VM *vm, const char *chars, size_t length);
ObjString *string_from_cstr(VM *vm, const char *s);
ObjString *string_concat(VM *vm, ObjString *a, ObjString *b);
ObjArray *array_new(VM *vm);
void array_append(VM *vm, ObjArray *arr, Value v);
ObjMap *map_new(VM *vm);
void map_set(VM *vm, ObjMap *map, Value key, Value value);
int map_get_chain(VM *vm, ObjMap *map, Value key, Value *out);
ObjProto *proto_new(VM *vm);
ObjClosure *closure_new(VM *vm, ObjProto *proto);
ObjUpvalue *upvalue_new(VM *vm, Value *slot);
ObjNative *native_new(VM *vm, NativeFn fn, const char *name, int min_args, int max_args);
void chunk_init(Chunk *c);
void chunk_write(VM *vm, Chunk *c, uint8_t byte, int line);
int chunk_add_constant(VM *vm, Chunk *c, Value v);
void chunk_free(VM *vm, Chunk *c);

int values_equal(Value a, Value b);
int value_truthy(Value v);
const char *value_type_name(Value v);
void value_to_buf(StrBuf *sb, Value v, int quote_strings, int depth);
void format_float(char *buf, size_t size, double d);
ObjString *value_to_string(VM *vm, Value v);

/* ------------------------------------------------------------------ */
/* vm.c                                                                */
/* ------------------------------------------------------------------ */

typedef enum { SL_OK = 0, SL_COMPILE_ERROR = 65, SL_RUNTIME_ERROR = 70 } SlStatus;

VM *vm_new(void);
void vm_free(VM *vm);
void vm_push(VM *vm, Value v);
Value vm_pop(VM *vm);
Value vm_peek(VM *vm, int distance);
void vm_define_native(VM *vm, const char *name, NativeFn fn, int min_args, int max_args);
SlStatus vm_interpret(VM *vm, const char *source, const char *name, Value *result);
Value sl_call(VM *vm, Value callee, int argc, const Value *args);
void sl_throw(VM *vm, Value v) __attribute__((noreturn));
void sl_error(VM *vm, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
int vm_current_line(VM *vm);
void vm_output(VM *vm, const char *s, size_t n);
int compare_values(VM *vm, Value a, Value b);

/* ------------------------------------------------------------------ */
/* compiler.c                                                          */
/* ------------------------------------------------------------------ */

ObjProto *sl_compile(VM *vm, const char *source, const char *name, StrBuf *errors);

/* ------------------------------------------------------------------ */
/* builtins.c                                                          */
/* ------------------------------------------------------------------ */

void builtins_register(VM *vm);

/* ------------------------------------------------------------------ */
/* debug.c                                                             */
/* ------------------------------------------------------------------ */

const char *opcode_name(int op);
int disassemble_instruction(StrBuf *out, const Chunk *chunk, int offset);
void disassemble_proto(StrBuf *out, const ObjProto *proto, int recursive);

#endif /* SL_H */
