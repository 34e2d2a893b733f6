/*
 * debug.c - bytecode disassembler, used by the disasm() builtin.
 * Output contains only offsets, opcodes and constants (never addresses).
 */
#include <string.h>

#include "sl.h"

static const char *const opcode_names[OP__COUNT] = {
    [OP_CONST] = "CONST",
    [OP_NIL] = "NIL",
    [OP_TRUE] = "TRUE",
    [OP_FALSE] = "FALSE",
    [OP_POP] = "POP",
    [OP_DUP] = "DUP",
    [OP_DUP2] = "DUP2",
    [OP_GET_LOCAL] = "GET_LOCAL",
    [OP_SET_LOCAL] = "SET_LOCAL",
    [OP_GET_GLOBAL] = "GET_GLOBAL",
    [OP_SET_GLOBAL] = "SET_GLOBAL",
    [OP_DEF_GLOBAL] = "DEF_GLOBAL",
    [OP_GET_UPVAL] = "GET_UPVAL",
    [OP_SET_UPVAL] = "SET_UPVAL",
    [OP_CLOSE_UPVAL] = "CLOSE_UPVAL",
    [OP_GET_INDEX] = "GET_INDEX",
    [OP_SET_INDEX] = "SET_INDEX",
    [OP_GET_FIELD] = "GET_FIELD",
    [OP_SET_FIELD] = "SET_FIELD",
    [OP_ADD] = "ADD",
    [OP_SUB] = "SUB",
    [OP_MUL] = "MUL",
    [OP_DIV] = "DIV",
    [OP_MOD] = "MOD",
    [OP_NEG] = "NEG",
    [OP_NOT] = "NOT",
    [OP_BNOT] = "BNOT",
    [OP_BAND] = "BAND",
    [OP_BOR] = "BOR",
    [OP_BXOR] = "BXOR",
    [OP_SHL] = "SHL",
    [OP_SHR] = "SHR",
    [OP_EQ] = "EQ",
    [OP_NE] = "NE",
    [OP_LT] = "LT",
    [OP_LE] = "LE",
    [OP_GT] = "GT",
    [OP_GE] = "GE",
    [OP_JUMP] = "JUMP",
    [OP_JUMP_IF_FALSE] = "JUMP_IF_FALSE",
    [OP_JUMP_IF_TRUE] = "JUMP_IF_TRUE",
    [OP_POP_JUMP_IF_FALSE] = "POP_JUMP_IF_FALSE",
    [OP_LOOP] = "LOOP",
    [OP_CALL] = "CALL",
    [OP_INVOKE] = "INVOKE",
    [OP_CLOSURE] = "CLOSURE",
    [OP_RETURN] = "RETURN",
    [OP_ARRAY] = "ARRAY",
    [OP_MAP] = "MAP",
    [OP_TRY] = "TRY",
    [OP_END_TRY] = "END_TRY",
    [OP_THROW] = "THROW",
    [OP_ITER] = "ITER",
};

const char *opcode_name(int op)
{
    if (op >= 0 && op < OP__COUNT && opcode_names[op])
        return opcode_names[op];
    return "???";
}

static int read_u16(const Chunk *c, int offset)
{
    return (c->code[offset] << 8) | c->code[offset + 1];
}

static void constant_text(StrBuf *out, const Chunk *c, int index)
{
    if (index >= c->constants.count) {
        sb_puts(out, "<bad constant>");
        return;
    }
    Value v = c->constants.items[index];
    if (IS_PROTO(v)) {
        ObjProto *p = AS_PROTO(v);
        sb_printf(out, "<proto %s>", p->name ? p->name->chars : "anonymous");
        return;
    }
    value_to_buf(out, v, 1, 5);
}

/* Appends one instruction; returns the offset of the next one. */
int disassemble_instruction(StrBuf *out, const Chunk *chunk, int offset)
{
    int op = chunk->code[offset];
    int line = chunk->lines[offset];
    if (offset > 0 && chunk->lines[offset - 1] == line)
        sb_printf(out, "%04d    | %s", offset, opcode_name(op));
    else
        sb_printf(out, "%04d %4d %s", offset, line, opcode_name(op));
    /* pad the mnemonic column only when operands follow */
    int has_operands = op == OP_CONST || op == OP_GET_GLOBAL || op == OP_SET_GLOBAL ||
                       op == OP_DEF_GLOBAL || op == OP_GET_FIELD || op == OP_SET_FIELD ||
                       op == OP_GET_LOCAL || op == OP_SET_LOCAL || op == OP_GET_UPVAL ||
                       op == OP_SET_UPVAL || op == OP_CALL || op == OP_ARRAY || op == OP_MAP ||
                       op == OP_JUMP || op == OP_JUMP_IF_FALSE || op == OP_JUMP_IF_TRUE ||
                       op == OP_POP_JUMP_IF_FALSE || op == OP_TRY || op == OP_LOOP ||
                       op == OP_INVOKE || op == OP_ITER || op == OP_CLOSURE;
    if (has_operands)
        for (size_t pad = strlen(opcode_name(op)); pad < 18; pad++)
            sb_putc(out, ' ');

    switch (op) {
    case OP_CONST:
    case OP_GET_GLOBAL:
    case OP_SET_GLOBAL:
    case OP_DEF_GLOBAL:
    case OP_GET_FIELD:
    case OP_SET_FIELD: {
        int idx = read_u16(chunk, offset + 1);
        sb_printf(out, " %3d ", idx);
        constant_text(out, chunk, idx);
        sb_putc(out, '\n');
        return offset + 3;
    }
    case OP_GET_LOCAL:
    case OP_SET_LOCAL:
    case OP_GET_UPVAL:
    case OP_SET_UPVAL:
    case OP_CALL:
    case OP_ARRAY:
    case OP_MAP:
        sb_printf(out, " %3d\n", chunk->code[offset + 1]);
        return offset + 2;
    case OP_JUMP:
    case OP_JUMP_IF_FALSE:
    case OP_JUMP_IF_TRUE:
    case OP_POP_JUMP_IF_FALSE:
    case OP_TRY: {
        int jump = read_u16(chunk, offset + 1);
        sb_printf(out, " -> %04d\n", offset + 3 + jump);
        return offset + 3;
    }
    case OP_LOOP: {
        int jump = read_u16(chunk, offset + 1);
        sb_printf(out, " -> %04d\n", offset + 3 - jump);
        return offset + 3;
    }
    case OP_INVOKE: {
        int idx = read_u16(chunk, offset + 1);
        sb_printf(out, " %3d ", idx);
        constant_text(out, chunk, idx);
        sb_printf(out, " (%d args)\n", chunk->code[offset + 3]);
        return offset + 4;
    }
    case OP_ITER: {
        int jump = read_u16(chunk, offset + 2);
        sb_printf(out, " slot %d exit -> %04d\n", chunk->code[offset + 1], offset + 4 + jump);
        return offset + 4;
    }
    case OP_CLOSURE: {
        int idx = read_u16(chunk, offset + 1);
        sb_printf(out, " %3d ", idx);
        constant_text(out, chunk, idx);
        sb_putc(out, '\n');
        offset += 3;
        if (idx < chunk->constants.count && IS_PROTO(chunk->constants.items[idx])) {
            ObjProto *p = AS_PROTO(chunk->constants.items[idx]);
            for (int i = 0; i < p->upvalue_count; i++) {
                int is_local = chunk->code[offset];
                int index = chunk->code[offset + 1];
                sb_printf(out, "%04d    |   capture %s %d\n", offset, is_local ? "local" : "upvalue",
                          index);
                offset += 2;
            }
        }
        return offset;
    }
    default:
        sb_putc(out, '\n');
        return offset + 1;
    }
}

void disassemble_proto(StrBuf *out, const ObjProto *proto, int recursive)
{
    const Chunk *c = &proto->chunk;
    sb_printf(out, "== %s (arity %d, upvalues %d, %d bytes, %d constants) ==\n",
              proto->name ? proto->name->chars : "anonymous", proto->arity, proto->upvalue_count,
              c->count, c->constants.count);
    for (int offset = 0; offset < c->count;)
        offset = disassemble_instruction(out, c, offset);
    if (!recursive)
        return;
    for (int i = 0; i < c->constants.count; i++)
        if (IS_PROTO(c->constants.items[i]))
            disassemble_proto(out, AS_PROTO(c->constants.items[i]), 1);
}
