"""Operand-stack heights: the deepest a function's value stack gets.

The stack limiter charges each activation its params, locals and maximum operand stack,
so this walk computes that maximum. It follows the validation algorithm's shape (control
frames, polymorphic stack after unconditional branches) but counts values instead of
typing them; wasmtime validates types. Structural nonsense (underflow, unbalanced
blocks, bad indices) is reported as MalformedModule so no pass ever sees it.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.errors import MalformedModule
from metering.module import Code, FuncType, Module

# (pops, pushes) for instructions whose effect does not depend on the module.
_FIXED: dict[int, tuple[int, int]] = {
    op.NOP: (0, 0), op.DROP: (1, 0), op.SELECT: (3, 1), op.SELECT_T: (3, 1),
    op.LOCAL_GET: (0, 1), op.LOCAL_SET: (1, 0), op.LOCAL_TEE: (1, 1),
    op.GLOBAL_GET: (0, 1), op.GLOBAL_SET: (1, 0),
    0x25: (1, 1), 0x26: (2, 0),  # table.get/set
    0x3F: (0, 1), 0x40: (1, 1),  # memory.size/grow
    0x41: (0, 1), 0x42: (0, 1), 0x43: (0, 1), 0x44: (0, 1),
    0xD0: (0, 1), 0xD1: (1, 1), 0xD2: (0, 1),
    op.fc(8): (3, 0), op.fc(9): (0, 0), op.fc(10): (3, 0), op.fc(11): (3, 0),
    op.fc(12): (3, 0), op.fc(13): (0, 0), op.fc(14): (3, 0), op.fc(15): (2, 1),
    op.fc(16): (0, 1), op.fc(17): (3, 0),
}
for _code in range(0x28, 0x36):
    _FIXED[_code] = (1, 1)  # loads
for _code in range(0x36, 0x3F):
    _FIXED[_code] = (2, 0)  # stores
for _code in range(op.fc(0), op.fc(8)):
    _FIXED[_code] = (1, 1)  # trunc_sat
_UNARY_TESTS = {0x45, 0x50}  # eqz
_UNARY = set(range(0x67, 0x6A)) | set(range(0x79, 0x7C)) | set(range(0x8B, 0x92)) | set(range(0x99, 0xA0)) | set(range(0xA7, 0xC5))
for _code in range(0x45, 0xC5):
    _FIXED[_code] = (1, 1) if _code in _UNARY_TESTS or _code in _UNARY else (2, 1)


_FIXED_SINGLE: list[tuple[int, int] | None] = [_FIXED.get(code) for code in range(256)]


def blocktype_arity(module: Module, imm) -> tuple[int, int]:
    """(params, results) of a block type."""
    if isinstance(imm, tuple):
        if imm[1] >= len(module.types):
            raise MalformedModule(f"unknown type {imm[1]} in block type", -1)
        ft = module.types[imm[1]]
        return len(ft.params), len(ft.results)
    return (0, 0) if imm == op.BLOCKTYPE_EMPTY else (0, 1)


def max_operand_height(module: Module, func_type: FuncType, code: Code, func_types: list[FuncType]) -> int:
    """The maximum number of values on the operand stack anywhere in the function."""
    # Control frames: [base height, label arity, result arity, unreachable].
    frames = [[0, len(func_type.results), len(func_type.results), False]]
    frame = frames[0]
    base = 0
    height = peak = 0
    types = module.types
    fixed_single = _FIXED_SINGLE
    for code_op, imm, start, _ in code.body:
        effect = fixed_single[code_op] if code_op < 256 else _FIXED.get(code_op)
        if effect is not None:
            # The common case, inlined: a fixed (pops, pushes).
            height -= effect[0]
            if height < base:
                if not frame[3]:
                    raise MalformedModule("type mismatch: operand stack underflow", start)
                height = base
            height += effect[1]
            if height > peak:
                peak = height
            continue
        if code_op in (op.BLOCK, op.LOOP, op.IF):
            params, results = blocktype_arity(module, imm)
            height = _pop(height, (1 if code_op == op.IF else 0) + params, frame, start)
            frame = [height, params if code_op == op.LOOP else results, results, False, params]
            frames.append(frame)
            base = height
            height += params
            peak = max(peak, height)
            continue
        elif code_op == op.ELSE:
            if len(frames) == 1:
                raise MalformedModule("else outside of an if", start)
            _pop(height, frame[2], frame, start)
            height = frame[0] + frame[4]
            frame[3] = False
            continue
        elif code_op == op.END:
            _pop(height, frame[2], frame, start)
            frames.pop()
            height = frame[0] + frame[2]
            if not frames:
                return peak
            frame = frames[-1]
            base = frame[0]
            peak = max(peak, height)
            continue
        elif code_op in (op.BR, op.BR_IF):
            target = _label(frames, imm, start)
            height = _pop(height, (1 if code_op == op.BR_IF else 0) + target[1], frame, start)
            if code_op == op.BR:
                height = _unreachable(frame)
            else:
                height += target[1]
            continue
        elif code_op == op.BR_TABLE:
            arity = _label(frames, imm[1], start)[1]
            for label in imm[0]:
                _label(frames, label, start)
            _pop(height, 1 + arity, frame, start)
            height = _unreachable(frame)
            continue
        elif code_op == op.RETURN:
            _pop(height, len(func_type.results), frame, start)
            height = _unreachable(frame)
            continue
        elif code_op == op.UNREACHABLE:
            height = _unreachable(frame)
            continue
        elif code_op == op.CALL:
            if imm >= len(func_types):
                raise MalformedModule(f"unknown function {imm}", start)
            ft = func_types[imm]
            pops, pushes = len(ft.params), len(ft.results)
        elif code_op == op.CALL_INDIRECT:
            if imm[0] >= len(types):
                raise MalformedModule(f"unknown type {imm[0]}", start)
            ft = types[imm[0]]
            pops, pushes = len(ft.params) + 1, len(ft.results)
        else:
            raise MalformedModule(f"{op.name(code_op)} is not supported", start)
        height = _pop(height, pops, frame, start) + pushes
        if height > peak:
            peak = height
    raise MalformedModule("function body without its final end", code.offset)


def _pop(height: int, count: int, frame: list, offset: int) -> int:
    """Height after popping `count` values; below the frame's base only when unreachable."""
    height -= count
    if height < frame[0]:
        if not frame[3]:
            raise MalformedModule("type mismatch: operand stack underflow", offset)
        height = frame[0]
    return height


def _unreachable(frame: list) -> int:
    frame[3] = True
    return frame[0]


def _label(frames: list, depth: int, offset: int) -> list:
    if depth >= len(frames):
        raise MalformedModule(f"unknown label {depth}", offset)
    return frames[-1 - depth]
