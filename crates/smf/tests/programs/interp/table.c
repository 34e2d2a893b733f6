/*
 * table.c - hash table with open addressing and linear probing.  Used for
 * globals, the string intern pool and SL map objects.  Keys are values;
 * only nil-free scalars and strings are hashable, so iteration order is a
 * pure function of the inserted keys (no addresses are ever hashed).
 */
#include <math.h>
#include <string.h>

#include "sl.h"

#define TABLE_MAX_LOAD_NUM 3
#define TABLE_MAX_LOAD_DEN 4

uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (uint32_t)x;
}

void table_init(Table *t)
{
    t->count = 0;
    t->live = 0;
    t->capacity = 0;
    t->entries = NULL;
}

void table_free(VM *vm, Table *t)
{
    sl_realloc(vm, t->entries, sizeof(Entry) * (size_t)t->capacity, 0);
    table_init(t);
}

int value_hashable(Value key)
{
    switch (key.type) {
    case VAL_BOOL:
    case VAL_INT:
        return 1;
    case VAL_FLOAT:
        return !isnan(key.as.number);
    case VAL_OBJ:
        return key.as.obj->type == OBJ_STRING;
    default:
        return 0;
    }
}

uint32_t hash_value(Value key)
{
    switch (key.type) {
    case VAL_BOOL:
        return key.as.boolean ? 0x51ed270bu : 0x2545f491u;
    case VAL_INT:
        return hash_u64((uint64_t)key.as.integer);
    case VAL_FLOAT: {
        double d = key.as.number;
        /* integral floats hash like the equal integer: 2.0 and 2 are one key */
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18)
            return hash_u64((uint64_t)(int64_t)d);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return hash_u64(bits ^ 0x9e3779b97f4a7c15ull);
    }
    case VAL_OBJ:
        return ((ObjString *)key.as.obj)->hash;
    default:
        return 0;
    }
}

static Entry *find_entry(Entry *entries, int capacity, Value key)
{
    uint32_t mask = (uint32_t)capacity - 1;
    uint32_t index = hash_value(key) & mask;
    Entry *tombstone = NULL;
    for (;;) {
        Entry *e = &entries[index];
        if (IS_NIL(e->key)) {
            if (IS_NIL(e->value))
                return tombstone ? tombstone : e; /* truly empty */
            if (!tombstone)
                tombstone = e;
        } else if (values_equal(e->key, key)) {
            return e;
        }
        index = (index + 1) & mask;
    }
}

static void adjust_capacity(VM *vm, Table *t, int capacity)
{
    /* allocate first: a collection triggered here still sees the old table */
    Entry *entries = sl_realloc(vm, NULL, 0, sizeof(Entry) * (size_t)capacity);
    for (int i = 0; i < capacity; i++) {
        entries[i].key = nil_value();
        entries[i].value = nil_value();
    }
    t->count = 0;
    t->live = 0;
    for (int i = 0; i < t->capacity; i++) {
        Entry *src = &t->entries[i];
        if (IS_NIL(src->key))
            continue;
        Entry *dst = find_entry(entries, capacity, src->key);
        dst->key = src->key;
        dst->value = src->value;
        t->count++;
        t->live++;
    }
    sl_realloc(vm, t->entries, sizeof(Entry) * (size_t)t->capacity, 0);
    t->entries = entries;
    t->capacity = capacity;
}

int table_get(const Table *t, Value key, Value *out)
{
    if (t->count == 0 || !value_hashable(key))
        return 0;
    Entry *e = find_entry(t->entries, t->capacity, key);
    if (IS_NIL(e->key))
        return 0;
    *out = e->value;
    return 1;
}

/* Returns 1 when a new key was added.  Key and value must be reachable. */
int table_set(VM *vm, Table *t, Value key, Value value)
{
    if ((t->count + 1) * TABLE_MAX_LOAD_DEN > t->capacity * TABLE_MAX_LOAD_NUM)
        adjust_capacity(vm, t, GROW_CAPACITY(t->capacity));
    Entry *e = find_entry(t->entries, t->capacity, key);
    int is_new = IS_NIL(e->key);
    if (is_new) {
        if (IS_NIL(e->value))
            t->count++; /* reusing a tombstone does not change count */
        t->live++;
    }
    e->key = key;
    e->value = value;
    return is_new;
}

int table_delete(Table *t, Value key)
{
    if (t->count == 0 || !value_hashable(key))
        return 0;
    Entry *e = find_entry(t->entries, t->capacity, key);
    if (IS_NIL(e->key))
        return 0;
    e->key = nil_value();
    e->value = bool_value(1); /* tombstone */
    t->live--;
    return 1;
}

/* Index of the first live entry at or after index, or -1. */
int table_next(const Table *t, int index)
{
    for (int i = index < 0 ? 0 : index; i < t->capacity; i++)
        if (!IS_NIL(t->entries[i].key))
            return i;
    return -1;
}

ObjString *table_find_string(const Table *t, const char *chars, size_t length, uint32_t hash)
{
    if (t->count == 0)
        return NULL;
    uint32_t mask = (uint32_t)t->capacity - 1;
    uint32_t index = hash & mask;
    for (;;) {
        const Entry *e = &t->entries[index];
        if (IS_NIL(e->key)) {
            if (IS_NIL(e->value))
                return NULL;
        } else {
            const ObjString *s = (const ObjString *)e->key.as.obj;
            if (s->hash == hash && s->length == length && memcmp(s->chars, chars, length) == 0)
                return (ObjString *)s;
        }
        index = (index + 1) & mask;
    }
}

/* Drops unmarked strings from the intern pool before the sweep. */
void table_remove_white(Table *t)
{
    for (int i = 0; i < t->capacity; i++) {
        Entry *e = &t->entries[i];
        if (IS_OBJ(e->key) && !e->key.as.obj->marked) {
            e->key = nil_value();
            e->value = bool_value(1);
            t->live--;
        }
    }
}

void table_mark(VM *vm, Table *t)
{
    for (int i = 0; i < t->capacity; i++) {
        Entry *e = &t->entries[i];
        if (IS_NIL(e->key))
            continue;
        gc_mark_value(vm, e->key);
        gc_mark_value(vm, e->value);
    }
}
