"""Determinism rules: what a module must not contain to run under consensus.

Floats (whose NaN bits differ across machines), SIMD, threads and atomics, exceptions,
memory64 and multi-memory are refused wherever they appear, dead code included. The
`ewasm` profile adds the contract conventions. Every violation is reported, not just the
first, each with its function index, byte offset and a one-line reason.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.errors import Violation
from metering.module import Code, ExternKind, FuncType, Module, Section

# `ethereum` is ewasm's EEI; `shard` the cross-shard receipts (ewasm_runtime/shard_host.py).
HOST_NAMESPACES = ("ethereum", "shard")
DEV_NAMESPACES = (*HOST_NAMESPACES, "debug")
PROFILES = ("generic", "ewasm")


def _type_name(t: int) -> str:
    return op.VALTYPE_NAMES.get(t, f"0x{t:02x}")


def _bad_types(types) -> list[int]:
    return [t for t in types if t in op.NONDETERMINISTIC_TYPES]


def check_module(module: Module, profile: str = "generic", *, dev: bool = False, max_memory_pages: int | None = None) -> list[Violation]:
    """Every rule the module breaks, in module order."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    found: list[Violation] = []
    found += _check_types(module)
    found += _check_imports(module, profile, dev)
    found += _check_memories(module, max_memory_pages)
    found += _check_tables_and_tags(module)
    found += _check_globals(module)
    num_imported = module.num_imported_funcs
    for i, code in enumerate(module.codes):
        found += _check_code(module, num_imported + i, code)
    if profile == "ewasm":
        found += _check_ewasm_conventions(module)
    return found


def _check_types(module: Module) -> list[Violation]:
    offset = module.section_offsets.get(Section.TYPE, 0)
    out = []
    for i, ft in enumerate(module.types):
        bad = _bad_types(ft.params + ft.results)
        if bad:
            out.append(Violation(None, offset, f"type {i} uses {_type_name(bad[0])}: floats and SIMD are not deterministic"))
    return out


# What AssemblyScript's default runtime and standard library import, by name and signature
# (params, results), and how to keep it out of a contract.
_ASSEMBLYSCRIPT_IMPORTS = {
    ("abort", (op.I32,) * 4, ()): "compile with --runtime stub --use abort=, as `ewasm compile` does",
    ("seed", (), (op.F64,)): "Math.random needs a random seed, which a contract cannot have",
    ("trace", (op.I32, op.I32) + (op.F64,) * 5, ()): "remove the trace() calls",
}


def _assemblyscript_hint(module: Module, imp) -> str:
    """A note on how to drop an import that AssemblyScript adds, or '' for any other import."""
    if imp.module != "env" or imp.kind != ExternKind.FUNC or imp.desc >= len(module.types):
        return ""
    ft = module.types[imp.desc]
    hint = _ASSEMBLYSCRIPT_IMPORTS.get((imp.name, tuple(ft.params), tuple(ft.results)))
    return f" (AssemblyScript: {hint})" if hint else ""


def _check_imports(module: Module, profile: str, dev: bool) -> list[Violation]:
    out = []
    allowed = DEV_NAMESPACES if dev else HOST_NAMESPACES
    for imp in module.imports:
        what = f"import {imp.module}.{imp.name}"
        hint = _assemblyscript_hint(module, imp)
        if imp.kind == ExternKind.GLOBAL and imp.desc.valtype in op.NONDETERMINISTIC_TYPES:
            out.append(Violation(None, imp.offset, f"{what} is a {_type_name(imp.desc.valtype)} global: floats are not deterministic"))
        elif imp.kind == ExternKind.FUNC and imp.desc < len(module.types):
            bad = _bad_types(module.types[imp.desc].params + module.types[imp.desc].results)
            if bad:
                out.append(Violation(None, imp.offset, f"{what} has a {_type_name(bad[0])} in its signature{hint}"))
        elif imp.kind == ExternKind.MEMORY:
            out += _memory_violations(imp.desc, imp.offset, what)
        elif imp.kind == ExternKind.TAG:
            out.append(Violation(None, imp.offset, f"{what} is an exception tag: exceptions are not supported"))
        if profile == "ewasm" and imp.module not in allowed:
            namespaces = " and ".join(repr(n) for n in allowed)
            out.append(Violation(None, imp.offset, f"{what}: contracts may import only from {namespaces}{hint}"))
        if profile == "ewasm" and imp.kind != ExternKind.FUNC:
            out.append(Violation(None, imp.offset, f"{what}: contracts may import only functions"))
    return out


def _memory_violations(limits, offset: int, what: str, max_pages: int | None = None) -> list[Violation]:
    out = []
    if limits.shared:
        out.append(Violation(None, offset, f"{what} is shared memory: threads are not deterministic"))
    if limits.index64:
        out.append(Violation(None, offset, f"{what} uses 64-bit addresses: memory64 is not supported"))
    if max_pages is not None:
        if limits.min > max_pages:
            out.append(Violation(None, offset, f"{what} starts with {limits.min} pages, above the limit of {max_pages}"))
        elif limits.max is not None and limits.max > max_pages:
            out.append(Violation(None, offset, f"{what} may grow to {limits.max} pages, above the limit of {max_pages}"))
    return out


def _check_memories(module: Module, max_pages: int | None) -> list[Violation]:
    offset = module.section_offsets.get(Section.MEMORY, 0)
    out = []
    for imp in module.imported(ExternKind.MEMORY):
        if max_pages is not None:
            out += [v for v in _memory_violations(imp.desc, imp.offset, f"import {imp.module}.{imp.name}", max_pages) if "pages" in v.reason]
    for i, limits in enumerate(module.memories):
        out += _memory_violations(limits, offset, f"memory {i}", max_pages)
    if len(module.all_memories()) > 1:
        out.append(Violation(None, offset, "more than one memory: multi-memory is not supported"))
    return out


def _check_tables_and_tags(module: Module) -> list[Violation]:
    if module.tags:
        return [Violation(None, module.section_offsets.get(Section.TAG, 0), "tag section: exceptions are not supported")]
    return []


def _check_globals(module: Module) -> list[Violation]:
    out = []
    for i, g in enumerate(module.globals):
        index = module.num_imported_globals + i
        if g.type.valtype in op.NONDETERMINISTIC_TYPES:
            out.append(Violation(None, g.offset, f"global {index} is {_type_name(g.type.valtype)}: floats are not deterministic"))
        for instr in g.init:
            if instr[0] in op.FLOAT_OPS or instr[0] >> 16 == 0xFD:
                out.append(Violation(None, instr[2], f"global {index} initializer uses {op.name(instr[0])}"))
    return out


def _check_code(module: Module, func: int, code: Code) -> list[Violation]:
    out = []
    for _, t in code.locals:
        if t in op.NONDETERMINISTIC_TYPES:
            out.append(Violation(func, code.offset, f"declares a {_type_name(t)} local: floats are not deterministic"))
            break
    suspect = _SUSPECT
    for code_op, imm, start, _ in code.body:
        if code_op in suspect or code_op > 0xFF:
            reason = _instruction_violation(module, code_op, imm)
            if reason:
                out.append(Violation(func, start, reason))
    return out


# Opcodes that can break a rule themselves or through their immediates (prefixed opcodes
# are always examined); everything else is allowed whatever its operands.
_SUSPECT = frozenset(
    [c for c in op.FLOAT_OPS if c <= 0xFF] + list(op.EXCEPTION_OPS) + list(op.TAIL_CALL_OPS)
    + [op.BLOCK, op.LOOP, op.IF, op.SELECT_T]
    + [c for c in range(0x100) if op.SINGLE_IMM[c] is op.Imm.MEMARG]
)


def _instruction_violation(module: Module, code: int, imm) -> str | None:
    """Why one instruction is refused, or None when it is allowed."""
    if code in op.FLOAT_OPS:
        return f"{op.name(code)}: floating point is not deterministic"
    prefix = code >> 16
    if prefix == 0xFD:
        return f"{op.name(code)}: SIMD is not supported"
    if prefix == 0xFE:
        return f"{op.name(code)}: threads and atomics are not deterministic"
    if code in op.EXCEPTION_OPS:
        return f"{op.name(code)}: exceptions are not supported"
    if code in op.TAIL_CALL_OPS:
        return f"{op.name(code)}: tail calls are not supported"
    if code in (op.BLOCK, op.LOOP, op.IF):
        types = _blocktype_types(module, imm)
        bad = _bad_types(types)
        if bad:
            return f"{op.name(code)} has a {_type_name(bad[0])} block type: floats are not deterministic"
    elif code == op.SELECT_T:
        bad = _bad_types(imm)
        if bad:
            return f"select of {_type_name(bad[0])}: floats are not deterministic"
    elif isinstance(imm, tuple) and len(imm) == 3 and op.imm_kind(code) is op.Imm.MEMARG:
        return f"{op.name(code)} names memory {imm[2]}: multi-memory is not supported"
    return None


def _blocktype_types(module: Module, imm) -> tuple[int, ...]:
    if isinstance(imm, tuple):
        index = imm[1]
        if index < len(module.types):
            ft: FuncType = module.types[index]
            return ft.params + ft.results
        return ()
    return () if imm == op.BLOCKTYPE_EMPTY else (imm,)


def _check_ewasm_conventions(module: Module) -> list[Violation]:
    """ewasm contracts export exactly `main` (no params, no results) and `memory`, no start."""
    offset = module.section_offsets.get(Section.EXPORT, 0)
    out = []
    exports = {e.name: e for e in module.exports}
    for e in module.exports:
        if e.name not in ("main", "memory"):
            out.append(Violation(None, e.offset, f"export {e.name!r}: contracts export exactly 'main' and 'memory'"))
    main = exports.get("main")
    if main is None:
        out.append(Violation(None, offset, "missing export 'main'"))
    elif main.kind != ExternKind.FUNC:
        out.append(Violation(None, main.offset, "export 'main' must be a function"))
    elif main.index < len(module.func_type_indices()):
        ft = module.func_type(main.index)
        if ft.params or ft.results:
            out.append(Violation(main.index, main.offset, "'main' must take no parameters and return no results"))
    memory = exports.get("memory")
    if memory is None:
        out.append(Violation(None, offset, "missing export 'memory'"))
    elif memory.kind != ExternKind.MEMORY:
        out.append(Violation(None, memory.offset, "export 'memory' must be a memory"))
    if module.start is not None:
        out.append(Violation(module.start, module.section_offsets.get(Section.START, 0), "start function: contracts run only through 'main'"))
    return out
