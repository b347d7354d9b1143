"""The instruction set the codec understands: names, immediate kinds and classes.

An opcode is an int: single-byte opcodes are 0x00..0xFF, prefixed ones are
`prefix << 16 | sub` (0xFC trunc_sat/bulk memory/tables, 0xFD SIMD, 0xFE atomics).
The codec decodes SIMD, atomics and exception opcodes only far enough to report them:
the determinism rules refuse them.
"""

from __future__ import annotations

from enum import Enum

# Value types.
I32, I64, F32, F64, V128, FUNCREF, EXTERNREF = 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F
VALTYPE_NAMES = {I32: "i32", I64: "i64", F32: "f32", F64: "f64", V128: "v128", FUNCREF: "funcref", EXTERNREF: "externref"}
NONDETERMINISTIC_TYPES = {F32, F64, V128}
REFTYPES = {FUNCREF, EXTERNREF}

BLOCKTYPE_EMPTY = 0x40


class Imm(Enum):
    """How an instruction's immediates are encoded."""

    NONE = 0
    BLOCKTYPE = 1  # block, loop, if
    LABEL = 2  # br, br_if
    BR_TABLE = 3
    FUNC = 4  # call, ref.func
    CALL_INDIRECT = 5  # type index, table index
    LOCAL = 6
    GLOBAL = 7
    TABLE = 8  # table.get/set/grow/size/fill
    MEMARG = 9  # align, offset
    MEMORY = 10  # memory.size/grow: memory index (0)
    I32 = 11
    I64 = 12
    F32 = 13
    F64 = 14
    SELECT_T = 15  # typed select: vec(valtype)
    REFTYPE = 16  # ref.null
    DATA_MEMORY = 17  # memory.init: data index, memory index
    DATA = 18  # data.drop
    MEMORY_MEMORY = 19  # memory.copy: two memory indices
    ELEM_TABLE = 20  # table.init: elem index, table index
    ELEM = 21  # elem.drop
    TABLE_TABLE = 22  # table.copy
    V128_CONST = 23  # 16 bytes
    LANE = 24  # one lane byte
    MEMARG_LANE = 25
    SHUFFLE = 26  # 16 lane bytes
    BYTE = 27  # atomic.fence's reserved byte
    TAG = 28  # exception tags
    TRY_TABLE = 29  # not decodable here: refused


def fc(sub: int) -> int:
    """The opcode number of a 0xFC-prefixed instruction."""
    return 0xFC << 16 | sub


def fd(sub: int) -> int:
    return 0xFD << 16 | sub


def fe(sub: int) -> int:
    return 0xFE << 16 | sub


# name, immediate kind for every opcode of MVP + multi-value + sign-ext + bulk memory +
# reference types (funcref/externref tables), plus the float ones (decoded to be refused).
_SINGLE: dict[int, tuple[str, Imm]] = {
    0x00: ("unreachable", Imm.NONE), 0x01: ("nop", Imm.NONE),
    0x02: ("block", Imm.BLOCKTYPE), 0x03: ("loop", Imm.BLOCKTYPE), 0x04: ("if", Imm.BLOCKTYPE),
    0x05: ("else", Imm.NONE),
    0x06: ("try", Imm.BLOCKTYPE), 0x07: ("catch", Imm.TAG), 0x08: ("throw", Imm.TAG),
    0x09: ("rethrow", Imm.LABEL), 0x0A: ("throw_ref", Imm.NONE),
    0x0B: ("end", Imm.NONE), 0x0C: ("br", Imm.LABEL), 0x0D: ("br_if", Imm.LABEL),
    0x0E: ("br_table", Imm.BR_TABLE), 0x0F: ("return", Imm.NONE),
    0x10: ("call", Imm.FUNC), 0x11: ("call_indirect", Imm.CALL_INDIRECT),
    0x12: ("return_call", Imm.FUNC), 0x13: ("return_call_indirect", Imm.CALL_INDIRECT),
    0x18: ("delegate", Imm.LABEL), 0x19: ("catch_all", Imm.NONE), 0x1F: ("try_table", Imm.TRY_TABLE),
    0x1A: ("drop", Imm.NONE), 0x1B: ("select", Imm.NONE), 0x1C: ("select", Imm.SELECT_T),
    0x20: ("local.get", Imm.LOCAL), 0x21: ("local.set", Imm.LOCAL), 0x22: ("local.tee", Imm.LOCAL),
    0x23: ("global.get", Imm.GLOBAL), 0x24: ("global.set", Imm.GLOBAL),
    0x25: ("table.get", Imm.TABLE), 0x26: ("table.set", Imm.TABLE),
    0x28: ("i32.load", Imm.MEMARG), 0x29: ("i64.load", Imm.MEMARG),
    0x2A: ("f32.load", Imm.MEMARG), 0x2B: ("f64.load", Imm.MEMARG),
    0x2C: ("i32.load8_s", Imm.MEMARG), 0x2D: ("i32.load8_u", Imm.MEMARG),
    0x2E: ("i32.load16_s", Imm.MEMARG), 0x2F: ("i32.load16_u", Imm.MEMARG),
    0x30: ("i64.load8_s", Imm.MEMARG), 0x31: ("i64.load8_u", Imm.MEMARG),
    0x32: ("i64.load16_s", Imm.MEMARG), 0x33: ("i64.load16_u", Imm.MEMARG),
    0x34: ("i64.load32_s", Imm.MEMARG), 0x35: ("i64.load32_u", Imm.MEMARG),
    0x36: ("i32.store", Imm.MEMARG), 0x37: ("i64.store", Imm.MEMARG),
    0x38: ("f32.store", Imm.MEMARG), 0x39: ("f64.store", Imm.MEMARG),
    0x3A: ("i32.store8", Imm.MEMARG), 0x3B: ("i32.store16", Imm.MEMARG),
    0x3C: ("i64.store8", Imm.MEMARG), 0x3D: ("i64.store16", Imm.MEMARG), 0x3E: ("i64.store32", Imm.MEMARG),
    0x3F: ("memory.size", Imm.MEMORY), 0x40: ("memory.grow", Imm.MEMORY),
    0x41: ("i32.const", Imm.I32), 0x42: ("i64.const", Imm.I64),
    0x43: ("f32.const", Imm.F32), 0x44: ("f64.const", Imm.F64),
    0xD0: ("ref.null", Imm.REFTYPE), 0xD1: ("ref.is_null", Imm.NONE), 0xD2: ("ref.func", Imm.FUNC),
}
_NUMERIC = (
    "i32.eqz i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u i32.ge_s i32.ge_u "
    "i64.eqz i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s i64.gt_u i64.le_s i64.le_u i64.ge_s i64.ge_u "
    "f32.eq f32.ne f32.lt f32.gt f32.le f32.ge f64.eq f64.ne f64.lt f64.gt f64.le f64.ge "
    "i32.clz i32.ctz i32.popcnt i32.add i32.sub i32.mul i32.div_s i32.div_u i32.rem_s i32.rem_u "
    "i32.and i32.or i32.xor i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr "
    "i64.clz i64.ctz i64.popcnt i64.add i64.sub i64.mul i64.div_s i64.div_u i64.rem_s i64.rem_u "
    "i64.and i64.or i64.xor i64.shl i64.shr_s i64.shr_u i64.rotl i64.rotr "
    "f32.abs f32.neg f32.ceil f32.floor f32.trunc f32.nearest f32.sqrt f32.add f32.sub f32.mul "
    "f32.div f32.min f32.max f32.copysign "
    "f64.abs f64.neg f64.ceil f64.floor f64.trunc f64.nearest f64.sqrt f64.add f64.sub f64.mul "
    "f64.div f64.min f64.max f64.copysign "
    "i32.wrap_i64 i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u "
    "i64.extend_i32_s i64.extend_i32_u i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u "
    "f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u f32.demote_f64 "
    "f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s f64.convert_i64_u f64.promote_f32 "
    "i32.reinterpret_f32 i64.reinterpret_f64 f32.reinterpret_i32 f64.reinterpret_i64 "
    "i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s i64.extend32_s"
).split()
for _i, _name in enumerate(_NUMERIC):
    _SINGLE[0x45 + _i] = (_name, Imm.NONE)

_FC: dict[int, tuple[str, Imm]] = {
    0: ("i32.trunc_sat_f32_s", Imm.NONE), 1: ("i32.trunc_sat_f32_u", Imm.NONE),
    2: ("i32.trunc_sat_f64_s", Imm.NONE), 3: ("i32.trunc_sat_f64_u", Imm.NONE),
    4: ("i64.trunc_sat_f32_s", Imm.NONE), 5: ("i64.trunc_sat_f32_u", Imm.NONE),
    6: ("i64.trunc_sat_f64_s", Imm.NONE), 7: ("i64.trunc_sat_f64_u", Imm.NONE),
    8: ("memory.init", Imm.DATA_MEMORY), 9: ("data.drop", Imm.DATA),
    10: ("memory.copy", Imm.MEMORY_MEMORY), 11: ("memory.fill", Imm.MEMORY),
    12: ("table.init", Imm.ELEM_TABLE), 13: ("elem.drop", Imm.ELEM),
    14: ("table.copy", Imm.TABLE_TABLE), 15: ("table.grow", Imm.TABLE),
    16: ("table.size", Imm.TABLE), 17: ("table.fill", Imm.TABLE),
}


def _simd_imm(sub: int) -> Imm:
    """Immediate kind of a SIMD (0xFD) instruction, enough to skip over it."""
    if sub <= 11 or sub in (92, 93):  # loads/stores, load_zero
        return Imm.MEMARG
    if 84 <= sub <= 91:  # load/store lane
        return Imm.MEMARG_LANE
    if sub == 12:
        return Imm.V128_CONST
    if sub == 13:
        return Imm.SHUFFLE
    if 21 <= sub <= 34:  # extract/replace lane
        return Imm.LANE
    return Imm.NONE


def _atomic_imm(sub: int) -> Imm:
    return Imm.BYTE if sub == 3 else Imm.MEMARG


FLOAT_OPS: frozenset[int] = frozenset(
    [0x2A, 0x2B, 0x38, 0x39, 0x43, 0x44]
    + list(range(0x5B, 0x67))  # float comparisons
    + list(range(0x8B, 0xA7))  # float arithmetic
    + [0xA8, 0xA9, 0xAA, 0xAB, 0xAE, 0xAF, 0xB0, 0xB1]  # int <- float truncations
    + list(range(0xB2, 0xC0))  # converts, demote/promote, reinterprets
    + [fc(i) for i in range(8)]  # trunc_sat
)
EXCEPTION_OPS: frozenset[int] = frozenset([0x06, 0x07, 0x08, 0x09, 0x0A, 0x18, 0x19, 0x1F])
TAIL_CALL_OPS: frozenset[int] = frozenset([0x12, 0x13])

# Memory and table operations whose cost depends on an operand (charged dynamically).
MEMORY_GROW, MEMORY_INIT, MEMORY_COPY, MEMORY_FILL = 0x40, fc(8), fc(10), fc(11)
TABLE_INIT, TABLE_COPY, TABLE_GROW, TABLE_FILL = fc(12), fc(14), fc(15), fc(17)

# Control opcodes named for readability in the passes.
UNREACHABLE, NOP, BLOCK, LOOP, IF, ELSE, END = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0B
BR, BR_IF, BR_TABLE, RETURN, CALL, CALL_INDIRECT = 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11
DROP, SELECT, SELECT_T = 0x1A, 0x1B, 0x1C
LOCAL_GET, LOCAL_SET, LOCAL_TEE, GLOBAL_GET, GLOBAL_SET = 0x20, 0x21, 0x22, 0x23, 0x24
I32_CONST, I64_CONST, REF_FUNC = 0x41, 0x42, 0xD2
I32_ADD, I32_SUB, I32_GT_U, I32_GT_S, I32_LT_S = 0x6A, 0x6B, 0x4B, 0x4A, 0x48
I64_ADD, I64_SUB, I64_MUL, I64_SHR_U, I64_LT_S, I64_LT_U = 0x7C, 0x7D, 0x7E, 0x88, 0x53, 0x54
I64_EXTEND_I32_U = 0xAD


def imm_kind(op: int) -> Imm | None:
    """The immediate kind of an opcode, or None when the opcode is unknown."""
    if op < 0x100:
        entry = _SINGLE.get(op)
        return entry[1] if entry else None
    prefix, sub = op >> 16, op & 0xFFFF
    if prefix == 0xFC:
        entry = _FC.get(sub)
        return entry[1] if entry else None
    if prefix == 0xFD:
        return _simd_imm(sub) if sub <= 0x113 else None
    if prefix == 0xFE:
        return _atomic_imm(sub) if sub <= 0x4E else None
    return None


def name(op: int) -> str:
    """A readable name for an opcode (used in messages and `ewasm inspect`)."""
    if op < 0x100:
        entry = _SINGLE.get(op)
        return entry[0] if entry else f"<0x{op:02x}>"
    prefix, sub = op >> 16, op & 0xFFFF
    if prefix == 0xFC and sub in _FC:
        return _FC[sub][0]
    kind = {0xFD: "simd", 0xFE: "atomic"}.get(prefix, "prefixed")
    return f"{kind} 0x{prefix:02x} {sub}"


# Flat lookup for the decoder's hot loop: single-byte opcode -> immediate kind.
SINGLE_IMM: list[Imm | None] = [imm_kind(i) for i in range(0x100)]
PREFIXES = (0xFC, 0xFD, 0xFE)
