"""Binary decoder: bytes -> Module.

Every failure is a MalformedModule carrying the byte offset where decoding stopped.
The instruction decoder is the transpiler's hot loop, so it is written for speed: one
flat loop, immediate kinds looked up in a list, the one-byte LEB128 case inlined.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.errors import MalformedModule
from metering.module import (
    Code, Custom, Data, Element, Export, ExternKind, FuncType, Global, GlobalType, Import,
    SECTION_ORDER, Limits, Module, NameMap, Section, TableType,
)
from metering.opcodes import Imm

MAGIC = b"\0asm"
VERSION = b"\x01\0\0\0"
KNOWN_VALTYPES = frozenset(op.VALTYPE_NAMES)


class Reader:
    """A cursor over the module bytes with bounds-checked primitive reads."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def fail(self, reason: str, offset: int | None = None) -> MalformedModule:
        return MalformedModule(reason, self.pos if offset is None else offset)

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bytes(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise self.fail("unexpected end")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u32(self) -> int:
        return self._uleb(32)

    def _uleb(self, bits: int) -> int:
        result = shift = 0
        start = self.pos
        last = (bits + 6) // 7 - 1
        for i in range(last + 1):
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if i == last and b >> (bits - shift):
                    raise self.fail("integer too large", start)
                return result
            shift += 7
        raise self.fail("integer representation too long", start)

    def sleb(self, bits: int) -> int:
        result = shift = 0
        start = self.pos
        last = (bits + 6) // 7 - 1
        for i in range(last + 1):
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if i == last:
                    # The bits above the value must all repeat its sign bit.
                    high = (b & 0x7F) >> (bits - shift - 1)
                    if high not in (0, (0x7F >> (bits - shift - 1))):
                        raise self.fail("integer too large", start)
                shift += 7
                if b & 0x40:
                    result -= 1 << shift
                return result
            shift += 7
        raise self.fail("integer representation too long", start)

    def name(self) -> str:
        n = self.u32()
        start = self.pos
        raw = self.bytes(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("malformed UTF-8 encoding", start) from None

    def valtype(self) -> int:
        t = self.byte()
        if t not in KNOWN_VALTYPES:
            raise self.fail(f"unknown value type 0x{t:02x}", self.pos - 1)
        return t

    def limits(self, max_flags: int = 0x07) -> Limits:
        start = self.pos
        flags = self.byte()
        if flags & ~max_flags:
            raise self.fail(f"malformed limits flags 0x{flags:02x}", start)
        index64 = bool(flags & 4)
        read = self._u64 if index64 else self.u32
        minimum = read()
        maximum = read() if flags & 1 else None
        return Limits(minimum, maximum, flags)

    def _u64(self) -> int:
        return self._uleb(64)


def decode_module(data: bytes, *, lazy_bodies: bool = False) -> Module:
    """Decode a complete binary module.

    lazy_bodies=True leaves each function's instructions undecoded until read, and reads
    them anew each time (LazyCode): for a pass that walks every body once, such as the
    determinism check, memory then stays near the module's size instead of ~125 bytes
    per instruction."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedModule("expected module bytes", 0)
    data = bytes(data)
    if len(data) < 8:
        raise MalformedModule("unexpected end: module is shorter than its header", len(data))
    if data[:4] != MAGIC:
        raise MalformedModule("magic header not detected", 0)
    if data[4:8] != VERSION:
        raise MalformedModule("unknown binary version", 4)
    module = Module()
    reader = Reader(data, 8)
    last_known = 0
    last_order = -1
    declared_func_count: int | None = None
    while reader.pos < reader.end:
        section_start = reader.pos
        section_id = reader.byte()
        size = reader.u32()
        payload_start = reader.pos
        if payload_start + size > reader.end:
            raise MalformedModule("section size mismatch: section runs past the end", section_start)
        body = Reader(data, payload_start, payload_start + size)
        raw = data[section_start : payload_start + size]
        if section_id == Section.CUSTOM:
            name = body.name()
            module.customs.append(
                Custom(name, data[body.pos : body.end], last_known, section_start, raw)
            )
            if name == "name":
                module.names = _decode_names(data, body.pos, body.end)
        else:
            try:
                section = Section(section_id)
            except ValueError:
                raise MalformedModule(f"malformed section id {section_id}", section_start) from None
            order = op_order(section)
            if order <= last_order:
                raise MalformedModule(f"unexpected section {section.name.lower()}: out of order or duplicated", section_start)
            last_order = order
            last_known = section_id
            module.present.append(section_id)
            module.raw_sections[section_id] = raw
            module.section_offsets[section_id] = section_start
            _decode_section(module, section, body, lazy_bodies)
            if section == Section.FUNCTION:
                declared_func_count = len(module.funcs)
            if body.pos != body.end:
                raise MalformedModule("section size mismatch: unused bytes at the end of the section", body.pos)
        reader.pos = payload_start + size
    if len(module.codes) != len(module.funcs) and not (declared_func_count is None and not module.codes):
        raise MalformedModule("function and code section have inconsistent lengths", len(data))
    if module.data_count is not None and module.data_count != len(module.datas):
        raise MalformedModule("data count and data section have inconsistent lengths", len(data))
    return module


def op_order(section: Section) -> int:
    """Position of a known section in the order the binary format requires."""
    return SECTION_ORDER.index(section)


def _vec(reader: Reader, item):
    return [item(reader) for _ in range(reader.u32())]


def _decode_section(module: Module, section: Section, r: Reader, lazy_bodies: bool = False) -> None:
    if section == Section.TYPE:
        module.types = _vec(r, _functype)
    elif section == Section.IMPORT:
        module.imports = _vec(r, _import)
    elif section == Section.FUNCTION:
        module.funcs = _vec(r, Reader.u32)
    elif section == Section.TABLE:
        module.tables = _vec(r, _tabletype)
    elif section == Section.MEMORY:
        module.memories = _vec(r, Reader.limits)
    elif section == Section.TAG:
        module.tags = _vec(r, _tag)
    elif section == Section.GLOBAL:
        module.globals = _vec(r, _global)
    elif section == Section.EXPORT:
        module.exports = _vec(r, _export)
    elif section == Section.START:
        module.start = r.u32()
    elif section == Section.ELEMENT:
        module.elements = _vec(r, _element)
    elif section == Section.DATA_COUNT:
        module.data_count = r.u32()
    elif section == Section.CODE:
        count_offset = r.pos
        count = r.u32()
        if count != len(module.funcs):
            raise MalformedModule("function and code section have inconsistent lengths", count_offset)
        module.codes = [_code(r, lazy_bodies) for _ in range(count)]
    elif section == Section.DATA:
        module.datas = _vec(r, _data)


def _functype(r: Reader) -> FuncType:
    form = r.byte()
    if form != 0x60:
        raise r.fail(f"unsupported type form 0x{form:02x} (only function types)", r.pos - 1)
    params = tuple(_vec(r, Reader.valtype))
    results = tuple(_vec(r, Reader.valtype))
    return FuncType(params, results)


def _reftype(r: Reader) -> int:
    t = r.byte()
    if t not in op.REFTYPES:
        raise r.fail(f"malformed reference type 0x{t:02x}", r.pos - 1)
    return t


def _tabletype(r: Reader) -> TableType:
    reftype = _reftype(r)
    return TableType(reftype, r.limits(0x05))


def _globaltype(r: Reader) -> GlobalType:
    valtype = r.valtype()
    mut = r.byte()
    if mut > 1:
        raise r.fail("malformed mutability", r.pos - 1)
    return GlobalType(valtype, bool(mut))


def _tag(r: Reader) -> int:
    r.byte()  # attribute
    return r.u32()


def _import(r: Reader) -> Import:
    start = r.pos
    module_name = r.name()
    field_name = r.name()
    kind_byte = r.byte()
    if kind_byte == ExternKind.FUNC:
        desc = r.u32()
    elif kind_byte == ExternKind.TABLE:
        desc = _tabletype(r)
    elif kind_byte == ExternKind.MEMORY:
        desc = r.limits()
    elif kind_byte == ExternKind.GLOBAL:
        desc = _globaltype(r)
    elif kind_byte == ExternKind.TAG:
        desc = _tag(r)
    else:
        raise r.fail(f"malformed import kind 0x{kind_byte:02x}", r.pos - 1)
    return Import(module_name, field_name, ExternKind(kind_byte), desc, start)


def _export(r: Reader) -> Export:
    start = r.pos
    export_name = r.name()
    kind_byte = r.byte()
    if kind_byte > 4:
        raise r.fail(f"malformed export kind 0x{kind_byte:02x}", r.pos - 1)
    return Export(export_name, ExternKind(kind_byte), r.u32(), start)


def _global(r: Reader) -> Global:
    start = r.pos
    gtype = _globaltype(r)
    return Global(gtype, decode_const_expr(r), start)


def decode_const_expr(r: Reader) -> list:
    """A constant expression up to and without its `end`."""
    instrs = decode_instructions(r.data, r.pos, r.end, expr=True)
    r.pos = instrs[-1][3]
    return instrs[:-1]


def _element(r: Reader) -> Element:
    start = r.pos
    flags = r.u32()
    if flags > 7:
        raise r.fail(f"malformed elements segment kind {flags}", start)
    table = 0
    offset_expr = None
    if flags & 1 == 0:  # active
        if flags & 2:
            table = r.u32()
        offset_expr = decode_const_expr(r)
    reftype = op.FUNCREF
    uses_exprs = bool(flags & 4)
    if flags & 3:  # an explicit elemkind/reftype follows (forms 1,2,3,5,6,7)
        if uses_exprs:
            reftype = _reftype(r)
        else:
            kind = r.byte()
            if kind != 0x00:
                raise r.fail(f"malformed element kind 0x{kind:02x}", r.pos - 1)
    if uses_exprs:
        return Element(flags, table, offset_expr, reftype, None, _vec(r, decode_const_expr), start)
    return Element(flags, table, offset_expr, reftype, _vec(r, Reader.u32), None, start)


def _data(r: Reader) -> Data:
    start = r.pos
    flags = r.u32()
    memory = 0
    offset_expr = None
    if flags == 1:
        pass
    elif flags in (0, 2):
        if flags == 2:
            memory = r.u32()
        offset_expr = decode_const_expr(r)
    else:
        raise r.fail(f"malformed data segment kind {flags}", start)
    init = r.bytes(r.u32())
    return Data(flags, memory, offset_expr, init, start)


MAX_LOCALS = 50_000  # far above what any contract needs; bounds memory on hostile input


def _code(r: Reader, lazy: bool = False) -> Code:
    start = r.pos
    size = r.u32()
    body_start = r.pos
    body_end = body_start + size
    if body_end > r.end:
        raise r.fail("unexpected end: function body runs past the section", start)
    body = Reader(r.data, body_start, body_end)
    local_runs = []
    total = 0
    for _ in range(body.u32()):
        count = body.u32()
        total += count
        if total > MAX_LOCALS:
            raise body.fail("too many locals")
        local_runs.append((count, body.valtype()))
    r.pos = body_end
    if lazy:
        return LazyCode(local_runs, r.data, body.pos, body_end, start)
    return Code(local_runs, _body(r.data, body.pos, body_end), start)


def _body(data: bytes, pos: int, end: int) -> list:
    instrs = decode_instructions(data, pos, end, expr=False)
    if instrs[-1][3] != end:
        raise MalformedModule("section size mismatch: bytes after the function's final end", instrs[-1][3])
    return instrs


class LazyCode(Code):
    """A function body kept as its bytes; `body` decodes them on every read."""

    def __init__(self, locals_: list, data: bytes, pos: int, end: int, offset: int):
        self.locals = locals_
        self.offset = offset
        self._where = (data, pos, end)

    @property
    def body(self) -> list:
        try:
            return _body(*self._where)
        except MalformedModule:
            raise
        except (ValueError, IndexError, KeyError, TypeError, RecursionError, OverflowError) as err:
            raise MalformedModule(f"cannot decode: {err}", self._where[1]) from None


def decode_instructions(data: bytes, pos: int, end: int, *, expr: bool) -> list:
    """Decode instructions from `pos` until the `end` that closes the outermost block.

    Returns (opcode, immediate, start, end) tuples including that final `end`.
    Opcodes of refused proposals (SIMD, atomics, exceptions) are decoded far enough to
    skip them; `try_table` is not, and raises MalformedModule as unsupported.
    """
    out = []
    append = out.append
    depth = 0
    single_imm = op.SINGLE_IMM
    r = Reader(data, pos, end)
    NONE, I32_IMM, MEMARG = Imm.NONE, Imm.I32, Imm.MEMARG
    small_index = _SMALL_INDEX
    while True:
        start = r.pos
        if start >= end:
            raise r.fail("unexpected end of function body: missing end" if not expr else "unexpected end of constant expression")
        code = data[start]
        r.pos = start + 1
        if code in (0xFC, 0xFD, 0xFE):
            sub = r.u32()
            code = code << 16 | sub
            kind = op.imm_kind(code)
        else:
            kind = single_imm[code]
        if kind is None:
            raise r.fail(f"illegal opcode {op.name(code)}", start)
        if kind is NONE:
            imm = None
            if code == 0x0B:  # end
                if depth == 0:
                    append((code, None, start, r.pos))
                    return out
                depth -= 1
        elif kind in small_index and (p := r.pos) < end and data[p] < 0x80:
            # The common cases, inlined: immediates that fit in one LEB128 byte each.
            imm = data[p]
            r.pos = p + 1
        elif kind is I32_IMM and (p := r.pos) < end and data[p] < 0x80:
            b = data[p]
            imm = b - 0x80 if b & 0x40 else b
            r.pos = p + 1
        elif kind is MEMARG and (p := r.pos) + 1 < end and data[p] < 0x40 and data[p + 1] < 0x80:
            imm = (data[p], data[p + 1])
            r.pos = p + 2
        else:
            imm = _read_imm(r, kind, code)
            if kind is Imm.BLOCKTYPE:
                depth += 1
        append((code, imm, start, r.pos))


_SMALL_INDEX = frozenset([Imm.LOCAL, Imm.GLOBAL, Imm.LABEL, Imm.FUNC])


def _read_imm(r: Reader, kind: Imm, code: int):
    """Read one instruction's immediates."""
    if kind is Imm.LOCAL or kind is Imm.GLOBAL or kind is Imm.LABEL or kind is Imm.FUNC:
        data = r.data
        p = r.pos
        if p < r.end and data[p] < 0x80:
            r.pos = p + 1
            return data[p]
        return r.u32()
    if kind is Imm.I32:
        return r.sleb(32)
    if kind is Imm.I64:
        return r.sleb(64)
    if kind is Imm.MEMARG:
        align = r.u32()
        if align & 0x40:
            memory = r.u32()
            return (align, r.u32(), memory)
        return (align, r.u32())
    if kind is Imm.BLOCKTYPE:
        p = r.pos
        if p >= r.end:
            raise r.fail("unexpected end")
        b = r.data[p]
        if b == op.BLOCKTYPE_EMPTY or b in KNOWN_VALTYPES:
            r.pos = p + 1
            return b
        index = r.sleb(33)
        if index < 0:
            raise r.fail(f"malformed block type 0x{b:02x}", p)
        return ("type", index)
    if kind is Imm.BR_TABLE:
        count = r.u32()
        if count > r.end - r.pos:
            raise r.fail("unexpected end")
        labels = tuple(r.u32() for _ in range(count))
        return (labels, r.u32())
    if kind is Imm.CALL_INDIRECT:
        return (r.u32(), r.u32())
    if kind is Imm.MEMORY:
        memory = r.byte() if code in (0x3F, 0x40) else r.u32()
        if memory != 0:
            # A non-zero byte here is multi-memory; the MVP calls it a malformed zero byte.
            raise r.fail("zero byte expected (multiple memories are not supported)", r.pos - 1)
        return 0
    if kind is Imm.TABLE or kind is Imm.DATA or kind is Imm.ELEM or kind is Imm.TAG:
        return r.u32()
    if kind is Imm.F32:
        return r.bytes(4)
    if kind is Imm.F64:
        return r.bytes(8)
    if kind is Imm.SELECT_T:
        return tuple(_vec(r, Reader.valtype))
    if kind is Imm.REFTYPE:
        return _reftype(r)
    if kind is Imm.DATA_MEMORY:
        data_index = r.u32()
        if r.byte() != 0:
            raise r.fail("zero byte expected (multiple memories are not supported)", r.pos - 1)
        return data_index
    if kind is Imm.MEMORY_MEMORY:
        if r.byte() != 0 or r.byte() != 0:
            raise r.fail("zero byte expected (multiple memories are not supported)", r.pos - 1)
        return (0, 0)
    if kind is Imm.ELEM_TABLE or kind is Imm.TABLE_TABLE:
        return (r.u32(), r.u32())
    if kind is Imm.V128_CONST or kind is Imm.SHUFFLE:
        return r.bytes(16)
    if kind is Imm.LANE or kind is Imm.BYTE:
        return r.byte()
    if kind is Imm.MEMARG_LANE:
        align = r.u32()
        offset = r.u32()
        return (align, offset, r.byte())
    raise r.fail(f"unsupported instruction {op.name(code)}", r.pos)


def _decode_names(data: bytes, pos: int, end: int) -> NameMap | None:
    """Parse the name section; a malformed one is ignored, as the spec says of custom sections."""
    try:
        r = Reader(data, pos, end)
        names = NameMap()
        while r.pos < r.end:
            sub_id = r.byte()
            size = r.u32()
            sub = Reader(data, r.pos, r.pos + size)
            if sub.end > r.end:
                return None
            if sub_id == 0:
                names.module = sub.name()
            elif sub_id == 1:
                names.functions = _namemap(sub)
            elif sub_id == 2:
                names.locals = {sub.u32(): _namemap(sub) for _ in range(sub.u32())}
            else:
                names.other.append((sub_id, data[sub.pos : sub.end]))
                sub.pos = sub.end
            if sub.pos != sub.end:
                return None
            r.pos = sub.end
        return names
    except MalformedModule:
        return None


def _namemap(r: Reader) -> dict[int, str]:
    return {r.u32(): r.name() for _ in range(r.u32())}
