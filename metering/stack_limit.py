"""Deterministic stack limiter.

Native stack overflow in wasmtime depends on the machine and the compiler, so it cannot
decide consensus. Instead every activation adds its frame cost (params + locals +
maximum operand stack + a fixed per-frame cost, in value slots) to the exported mutable
i32 global `stack_height` on entry and subtracts it on exit. Crossing the limit sets
`stack_height` to -1 and traps, which the host reports as STACK_LIMIT.

Exits are made explicit by wrapping each body in a block with the function's results:
a branch to the function label then lands on the wrapper's end, `return` becomes a
branch to the wrapper, and the single decrement after the wrapper covers every exit.
The limit is chosen so the accounting always fires well before the native guard page.

Leaf functions (no calls at all) with a small frame are not accounted: they cannot
recurse, so they add at most one bounded frame on top of the deepest accounted chain,
which the margin between the limit and the native stack covers.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.encode import RAW, sleb, uleb
from metering.module import Code, Export, ExternKind, FuncType, Global, GlobalType, Module, Section

STACK_EXPORT = "stack_height"
# Stack units the injected code adds to a function: its locals and operand pushes.
INJECTED_STACK_SLACK = 8  # the injected gas, count and height locals, and their operands
# Largest frame (in stack units) a leaf function may have and still go unaccounted.
LEAF_FRAME_ALLOWANCE = 1024
_CALLS = (op.CALL, op.CALL_INDIRECT)


def add_stack_global(module: Module) -> int:
    """Append the exported `stack_height` global; returns its index."""
    index = len(module.global_types())
    module.globals.append(Global(GlobalType(op.I32, True), [(op.I32_CONST, 0, -1, -1)]))
    module.exports.append(Export(STACK_EXPORT, ExternKind.GLOBAL, index))
    module.touch(Section.GLOBAL, Section.EXPORT)
    return index


def frame_cost(params: int, declared_locals: int, max_operands: int, per_frame: int, param_cost: int = 1) -> int:
    """Stack units one activation of a function reserves."""
    return per_frame + param_cost * params + declared_locals + max_operands + INJECTED_STACK_SLACK


def limit_stack(module: Module, frame_costs: list[int], limit: int) -> int:
    """Wrap every defined function with the height accounting; returns the global's index."""
    sh = add_stack_global(module)
    types = module.func_type_indices()
    base = module.num_imported_funcs
    for i, code in enumerate(module.codes):
        if frame_costs[i] <= LEAF_FRAME_ALLOWANCE and not any(instr[0] in _CALLS for instr in code.body):
            continue
        ft = module.types[types[base + i]]
        module.codes[i] = _limit_function(module, code, ft, sh, frame_costs[i], limit)
    module.touch(Section.CODE)
    return sh


def _limit_function(module: Module, code: Code, ft: FuncType, sh: int, cost: int, limit: int) -> Code:
    G = uleb(sh)
    height = uleb(len(ft.params) + sum(n for n, _ in code.locals))  # a fresh i32 local
    enter = (
        b"\x23" + G + b"\x41" + sleb(cost) + b"\x6a\x22" + height + b"\x24" + G
        + b"\x20" + height + b"\x41" + sleb(limit) + b"\x4b"  # i32.gt_u
        + b"\x04\x40\x41\x7f\x24" + G + b"\x00\x0b"
    )
    locals_ = list(code.locals) + [(1, op.I32)]
    leave = b"\x23" + G + b"\x41" + sleb(cost) + b"\x6b\x24" + G
    out = [(RAW, enter, -1, -1), (op.BLOCK, _result_blocktype(module, ft), -1, -1)]
    body = code.body
    if not any(instr[0] == op.RETURN for instr in body):
        out += body  # the final `end` closes the wrapper
        out += [(RAW, leave, -1, -1), (op.END, None, -1, -1)]
        return Code(locals_, out, code.offset)
    append = out.append
    depth = 0
    for instr in body[:-1]:
        code_op = instr[0]
        if code_op in (op.BLOCK, op.LOOP, op.IF):
            depth += 1
        elif code_op == op.END:
            depth -= 1
        elif code_op == op.RETURN:
            instr = (op.BR, depth, -1, -1)
        append(instr)
    append(body[-1])  # closes the wrapper
    append((RAW, leave, -1, -1))
    append((op.END, None, -1, -1))
    return Code(locals_, out, code.offset)


def _result_blocktype(module: Module, ft: FuncType):
    """A block type with no params and the function's results."""
    if not ft.results:
        return op.BLOCKTYPE_EMPTY
    if len(ft.results) == 1:
        return ft.results[0]
    wanted = FuncType((), ft.results)
    if wanted not in module.types:
        module.types.append(wanted)
        module.touch(Section.TYPE)
    return ("type", module.types.index(wanted))
