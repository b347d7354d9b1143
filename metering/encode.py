"""Binary encoder: Module -> bytes.

Untouched sections are copied from the original bytes; touched ones are encoded
canonically (minimal LEB128). Within a re-encoded function body, runs of instructions
that still carry their original byte range are copied as one slice.
"""

from __future__ import annotations

import functools

import leb128

from metering import opcodes as op
from metering.decode import MAGIC, VERSION
from metering.module import (
    SECTION_ORDER, Code, Custom, Data, Element, ExternKind, Import, Limits, Module, NameMap, Section,
    TableType,
)
from metering.opcodes import Imm

RAW = -1  # pseudo-opcode of an instruction sequence a pass has already encoded


@functools.lru_cache(maxsize=4096)
def uleb(value: int) -> bytes:
    return bytes(leb128.u.encode(value))


@functools.lru_cache(maxsize=4096)
def sleb(value: int) -> bytes:
    return bytes(leb128.i.encode(value))


def name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return uleb(len(raw)) + raw


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def encode_module(module: Module, source: bytes | None = None) -> bytes:
    """Encode a module; `source` is the original binary when raw ranges are to be reused."""
    out = [MAGIC, VERSION]
    customs_after: dict[int, list[Custom]] = {}
    for custom in module.customs:
        customs_after.setdefault(custom.after, []).append(custom)
    for custom in customs_after.pop(0, []):
        out.append(_custom(custom))
    present = set(module.present)
    for section in SECTION_ORDER:
        if section not in present:
            continue
        raw = module.raw_sections.get(section)
        if raw is None:
            payload = _encode_section(module, section, source)
            if payload is None:
                continue
            out.append(bytes([section]) + uleb(len(payload)) + payload)
        else:
            out.append(raw)
        for custom in customs_after.pop(int(section), []):
            out.append(_custom(custom))
    for rest in customs_after.values():  # customs placed after sections that were removed
        out.extend(_custom(custom) for custom in rest)
    return b"".join(out)


def _custom(custom: Custom) -> bytes:
    if custom.raw is not None:
        return custom.raw
    payload = name(custom.name) + custom.payload
    return b"\x00" + uleb(len(payload)) + payload


def _encode_section(module: Module, section: Section, source: bytes | None) -> bytes | None:
    if section == Section.TYPE:
        return vec([b"\x60" + vec([bytes([t]) for t in ft.params]) + vec([bytes([t]) for t in ft.results]) for ft in module.types])
    if section == Section.IMPORT:
        return vec([_import(imp) for imp in module.imports])
    if section == Section.FUNCTION:
        return vec([uleb(t) for t in module.funcs])
    if section == Section.TABLE:
        return vec([_tabletype(t) for t in module.tables])
    if section == Section.MEMORY:
        return vec([_limits(m) for m in module.memories])
    if section == Section.TAG:
        return vec([b"\x00" + uleb(t) for t in module.tags])
    if section == Section.GLOBAL:
        return vec([bytes([g.type.valtype, int(g.type.mutable)]) + const_expr(g.init, source) for g in module.globals])
    if section == Section.EXPORT:
        return vec([name(e.name) + bytes([e.kind]) + uleb(e.index) for e in module.exports])
    if section == Section.START:
        return None if module.start is None else uleb(module.start)
    if section == Section.ELEMENT:
        return vec([_element(e, source) for e in module.elements])
    if section == Section.DATA_COUNT:
        return None if module.data_count is None else uleb(module.data_count)
    if section == Section.CODE:
        return vec([encode_code(c, source) for c in module.codes])
    if section == Section.DATA:
        return vec([_data(d, source) for d in module.datas])
    raise AssertionError(section)


def _limits(limits: Limits) -> bytes:
    flags = (limits.flags & ~1) | (1 if limits.max is not None else 0)
    out = bytes([flags]) + uleb(limits.min)
    return out + uleb(limits.max) if limits.max is not None else out


def _tabletype(table: TableType) -> bytes:
    return bytes([table.reftype]) + _limits(table.limits)


def _import(imp: Import) -> bytes:
    head = name(imp.module) + name(imp.name) + bytes([imp.kind])
    if imp.kind == ExternKind.FUNC:
        return head + uleb(imp.desc)
    if imp.kind == ExternKind.TABLE:
        return head + _tabletype(imp.desc)
    if imp.kind == ExternKind.MEMORY:
        return head + _limits(imp.desc)
    if imp.kind == ExternKind.GLOBAL:
        return head + bytes([imp.desc.valtype, int(imp.desc.mutable)])
    return head + b"\x00" + uleb(imp.desc)


def const_expr(instrs: list, source: bytes | None) -> bytes:
    return encode_instructions(instrs, source) + b"\x0b"


def _element(e: Element, source: bytes | None) -> bytes:
    out = [uleb(e.flags)]
    if e.flags & 1 == 0:
        if e.flags & 2:
            out.append(uleb(e.table))
        out.append(const_expr(e.offset_expr, source))
    if e.flags & 3:
        out.append(bytes([e.reftype]) if e.flags & 4 else b"\x00")
    if e.flags & 4:
        out.append(vec([const_expr(x, source) for x in e.exprs]))
    else:
        out.append(vec([uleb(i) for i in e.func_indices]))
    return b"".join(out)


def _data(d: Data, source: bytes | None) -> bytes:
    out = [uleb(d.flags)]
    if d.flags == 2:
        out.append(uleb(d.memory))
    if d.flags != 1:
        out.append(const_expr(d.offset_expr, source))
    out.append(uleb(len(d.init)) + d.init)
    return b"".join(out)


def encode_code(code: Code, source: bytes | None) -> bytes:
    locals_part = vec([uleb(count) + bytes([t]) for count, t in code.locals])
    body = locals_part + encode_instructions(code.body, source)
    return uleb(len(body)) + body


def encode_instructions(instrs: list, source: bytes | None) -> bytes:
    """Encode instructions, copying runs that keep their original byte range."""
    out = []
    append = out.append
    run_start = run_end = -1
    encode_one = encode_instruction
    for instr in instrs:
        start = instr[2]
        if start >= 0 and source is not None:
            if start == run_end:
                run_end = instr[3]
                continue
            if run_start >= 0:
                append(source[run_start:run_end])
            run_start, run_end = start, instr[3]
            continue
        if run_start >= 0:
            append(source[run_start:run_end])
            run_start = run_end = -1
        code = instr[0]
        append(instr[1] if code == RAW else encode_one(code, instr[1]))
    if run_start >= 0:
        append(source[run_start:run_end])
    return b"".join(out)


def encode_instruction(code: int, imm) -> bytes:
    """Canonical encoding of one instruction."""
    if code < 0x100:
        head = bytes([code])
        kind = op.SINGLE_IMM[code]
    else:
        head = bytes([code >> 16]) + uleb(code & 0xFFFF)
        kind = op.imm_kind(code)
    if kind is Imm.NONE:
        return head
    return head + _imm(kind, imm)


def _imm(kind: Imm, imm) -> bytes:
    if kind in (Imm.LOCAL, Imm.GLOBAL, Imm.LABEL, Imm.FUNC, Imm.TABLE, Imm.DATA, Imm.ELEM, Imm.TAG):
        return uleb(imm)
    if kind in (Imm.I32, Imm.I64):
        return sleb(imm)
    if kind is Imm.MEMARG:
        if len(imm) == 3:
            return uleb(imm[0]) + uleb(imm[2]) + uleb(imm[1])
        return uleb(imm[0]) + uleb(imm[1])
    if kind is Imm.BLOCKTYPE:
        return sleb(imm[1]) if isinstance(imm, tuple) else bytes([imm])
    if kind is Imm.BR_TABLE:
        return vec([uleb(label) for label in imm[0]]) + uleb(imm[1])
    if kind in (Imm.CALL_INDIRECT, Imm.ELEM_TABLE, Imm.TABLE_TABLE):
        return uleb(imm[0]) + uleb(imm[1])
    if kind is Imm.MEMORY:
        return b"\x00"
    if kind is Imm.DATA_MEMORY:
        return uleb(imm) + b"\x00"
    if kind is Imm.MEMORY_MEMORY:
        return b"\x00\x00"
    if kind in (Imm.F32, Imm.F64, Imm.V128_CONST, Imm.SHUFFLE):
        return bytes(imm)
    if kind is Imm.SELECT_T:
        return vec([bytes([t]) for t in imm])
    if kind in (Imm.REFTYPE, Imm.LANE, Imm.BYTE):
        return bytes([imm])
    if kind is Imm.MEMARG_LANE:
        return uleb(imm[0]) + uleb(imm[1]) + bytes([imm[2]])
    raise ValueError(f"cannot encode immediate of kind {kind}")


def encode_names(names: NameMap) -> bytes:
    """The payload of a `name` custom section."""
    parts = []
    if names.module is not None:
        parts.append((0, name(names.module)))
    if names.functions:
        parts.append((1, _namemap(names.functions)))
    if names.locals:
        parts.append((2, vec([uleb(f) + _namemap(m) for f, m in sorted(names.locals.items())])))
    parts.extend(names.other)
    parts.sort(key=lambda p: p[0])
    return b"".join(bytes([sub_id]) + uleb(len(payload)) + payload for sub_id, payload in parts)


def _namemap(mapping: dict[int, str]) -> bytes:
    return vec([uleb(i) + name(n) for i, n in sorted(mapping.items())])
