"""Index bounds: every index a module uses must name something the module has.

The passes append globals, locals and types. An out-of-range index in the input would
then silently name an injected item: `global.set` on the index `gas_left` gets, or
`local.set` on the gas-counting local, would let a contract refill its own gas. So the
input is refused before any pass runs, exactly as a validator would refuse it.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.errors import MalformedModule
from metering.module import ExternKind, Module
from metering.opcodes import Imm


def check_indices(module: Module) -> None:
    """Raise MalformedModule at the first index that names nothing."""
    counts = {
        "type": len(module.types),
        "function": len(module.func_type_indices()),
        "table": len(module.all_tables()),
        "memory": len(module.all_memories()),
        "global": len(module.global_types()),
        "elem": len(module.elements),
        "data": len(module.datas),
    }

    def need(kind: str, index: int, offset: int) -> None:
        if index >= counts[kind]:
            raise MalformedModule(f"invalid module: unknown {kind} {index}", offset)

    for imp in module.imports:
        if imp.kind == ExternKind.FUNC:
            need("type", imp.desc, imp.offset)
    for t in module.funcs:
        need("type", t, module.section_offsets.get(3, 0))
    kinds = {ExternKind.FUNC: "function", ExternKind.TABLE: "table", ExternKind.MEMORY: "memory", ExternKind.GLOBAL: "global"}
    for e in module.exports:
        if e.kind in kinds:
            need(kinds[e.kind], e.index, e.offset)
    if module.start is not None:
        need("function", module.start, module.section_offsets.get(8, 0))
    for g in module.globals:
        _check_body(g.init, None, need)
    for el in module.elements:
        for f in el.func_indices or ():
            need("function", f, el.offset)
        for expr in (el.exprs or []) + ([el.offset_expr] if el.offset_expr else []):
            _check_body(expr, None, need)
    for d in module.datas:
        if d.offset_expr:
            _check_body(d.offset_expr, None, need)
    types = module.func_type_indices()
    base = module.num_imported_funcs
    for i, code in enumerate(module.codes):
        params = len(module.types[types[base + i]].params)
        _check_body(code.body, params + code.local_count, need)


_LOCALS = (op.LOCAL_GET, op.LOCAL_SET, op.LOCAL_TEE)
_GLOBALS = (op.GLOBAL_GET, op.GLOBAL_SET)


def _check_body(body: list, num_locals: int | None, need) -> None:
    for code, imm, start, _ in body:
        if code in _LOCALS:
            if num_locals is None or imm >= num_locals:
                raise MalformedModule(f"invalid module: unknown local {imm}", start)
        elif code in _GLOBALS:
            need("global", imm, start)
        elif code == op.CALL or code == op.REF_FUNC:
            need("function", imm, start)
        elif code > 0xFF or code in _OTHER_INDEXED:
            _check_other(code, imm, start, need)


_OTHER_INDEXED = frozenset([op.CALL_INDIRECT, 0x25, 0x26, 0x3F, 0x40] + [c for c in range(0x28, 0x3F)])


def _check_other(code: int, imm, start: int, need) -> None:
    kind = op.imm_kind(code)
    if kind is Imm.CALL_INDIRECT:
        need("type", imm[0], start)
        need("table", imm[1], start)
    elif kind is Imm.TABLE:
        need("table", imm, start)
    elif kind in (Imm.MEMARG, Imm.MEMORY, Imm.MEMORY_MEMORY):
        need("memory", 0, start)
    elif kind is Imm.DATA_MEMORY:
        need("memory", 0, start)
        need("data", imm, start)
    elif kind is Imm.DATA:
        need("data", imm, start)
    elif kind is Imm.ELEM:
        need("elem", imm, start)
    elif kind is Imm.ELEM_TABLE:
        need("elem", imm[0], start)
        need("table", imm[1], start)
    elif kind is Imm.TABLE_TABLE:
        need("table", imm[0], start)
        need("table", imm[1], start)
