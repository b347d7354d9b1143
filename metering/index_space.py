"""Index-space edits: adding an imported function shifts every defined function's index.

Imported functions come first in the function index space, so a pass that adds one must
renumber every reference to a defined function: calls and `ref.func` in bodies and in
constant expressions, exports, element segments, the start function and the name section.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.encode import encode_names
from metering.module import ExternKind, FuncType, Import, Module, Section


def type_index(module: Module, ft: FuncType) -> int:
    """Index of a function type, appending it when the module lacks it."""
    if ft not in module.types:
        module.types.append(ft)
        module.touch(Section.TYPE)
    return module.types.index(ft)


def add_function_import(module: Module, namespace: str, name: str, ft: FuncType) -> int:
    """Append a function import and renumber everything after it; returns its index."""
    new_index = module.num_imported_funcs
    type_idx = type_index(module, ft)
    position = max((i + 1 for i, imp in enumerate(module.imports) if imp.kind == ExternKind.FUNC), default=0)
    module.imports.insert(position, Import(namespace, name, ExternKind.FUNC, type_idx))
    module.touch(Section.IMPORT)
    shift_functions(module, new_index, 1)
    return new_index


def shift_functions(module: Module, first: int, by: int) -> None:
    """Add `by` to every function index >= `first`."""

    def moved(index: int) -> int:
        return index + by if index >= first else index

    def shift_instrs(instrs: list) -> list:
        out = []
        for instr in instrs:
            if instr[0] in (op.CALL, op.REF_FUNC) and instr[1] >= first:
                instr = (instr[0], instr[1] + by, -1, -1)
            out.append(instr)
        return out

    for code in module.codes:
        code.body = shift_instrs(code.body)
    for g in module.globals:
        g.init = shift_instrs(g.init)
    for e in module.exports:
        if e.kind == ExternKind.FUNC:
            e.index = moved(e.index)
    for el in module.elements:
        if el.func_indices is not None:
            el.func_indices = [moved(i) for i in el.func_indices]
        if el.exprs is not None:
            el.exprs = [shift_instrs(x) for x in el.exprs]
    if module.start is not None:
        module.start = moved(module.start)
    module.touch(Section.CODE, Section.GLOBAL, Section.EXPORT)
    if module.elements:
        module.touch(Section.ELEMENT)
    if module.start is not None:
        module.touch(Section.START)
    _shift_names(module, moved)


def _shift_names(module: Module, moved) -> None:
    names = module.names
    if names is None:
        return
    names.functions = {moved(i): n for i, n in names.functions.items()}
    names.locals = {moved(i): m for i, m in names.locals.items()}
    for custom in module.customs:
        if custom.name == "name":
            custom.payload = encode_names(names)
            custom.raw = None
