"""The plain reference gas injector: the test oracle for metering.gas.

It states the gas rule as directly as possible: find the metered blocks with a two-pass
scan of its own, and at the start of each block compare and subtract on the `gas_left`
global itself. No local caching, no flushes. The optimised injector must give the same
results, the same gas and the same out-of-gas points on every program.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.costs import CostTable
from metering.decode import decode_module
from metering.encode import RAW, encode_module, sleb, uleb
from metering.memory_limit import bound_memory
from metering.module import Code, Export, ExternKind, Global, GlobalType, Section

OPENERS = (op.BLOCK, op.LOOP, op.IF)


def matching_ends(body: list) -> dict[int, int]:
    """Index of each opener -> index of its `end`."""
    stack, ends = [], {}
    for i, instr in enumerate(body):
        if instr[0] in OPENERS:
            stack.append(i)
        elif instr[0] == op.END and stack:
            ends[stack.pop()] = i
    return ends


def branch_targets(body: list) -> set[int]:
    """Indices of the openers that some br/br_if/br_table names."""
    targeted, stack = set(), []
    for i, (code, imm, _, _) in enumerate(body):
        if code in OPENERS:
            stack.append(i)
        elif code == op.END and stack:
            stack.pop()
        elif code in (op.BR, op.BR_IF, op.BR_TABLE):
            labels = [imm] if code != op.BR_TABLE else list(imm[0]) + [imm[1]]
            for label in labels:
                if label < len(stack):
                    targeted.add(stack[-1 - label])
    return targeted


def reference_starts(body: list) -> list[int]:
    """Block starts, by the rule as the design words it."""
    ends = matching_ends(body)
    targeted = branch_targets(body)
    cuts = {0}
    for i, (code, _, _, _) in enumerate(body):
        if code in (op.LOOP, op.IF, op.ELSE, op.BR, op.BR_IF, op.BR_TABLE, op.RETURN):
            cuts.add(i + 1)
    for opener, end in ends.items():
        if body[opener][0] == op.IF or (body[opener][0] == op.BLOCK and opener in targeted):
            cuts.add(end + 1)
    return sorted(c for c in cuts if c < len(body))


def reference_meter(wasm: bytes, costs: CostTable, max_pages: int | None = None) -> bytes:
    """Gas-meter a module the plain way (no stack limiter)."""
    module = decode_module(wasm)
    bound_memory(module, max_pages or costs.max_memory_pages)
    gas = len(module.global_types())
    module.globals.append(Global(GlobalType(op.I64, True), [(op.I64_CONST, 0, -1, -1)]))
    module.exports.append(Export("gas_left", ExternKind.GLOBAL, gas))
    G = uleb(gas)
    oog = b"\x04\x40\x42\x7f\x24" + G + b"\x00\x0b"

    def charge(cost: int) -> tuple:
        return (RAW, b"\x23" + G + b"\x42" + sleb(cost) + b"\x53" + oog + b"\x23" + G + b"\x42" + sleb(cost) + b"\x7d\x24" + G, -1, -1)

    types = module.func_type_indices()
    base = module.num_imported_funcs
    for f, code in enumerate(module.codes):
        params = len(module.types[types[base + f]].params)
        temp = uleb(params + code.local_count)
        starts = reference_starts(code.body)
        bounds = starts + [len(code.body)]
        out = []
        for k, start in enumerate(starts):
            cost = sum(costs.cost(instr[0]) for instr in code.body[start : bounds[k + 1]])
            if k == 0:
                cost += costs.local * code.local_count
            if cost:
                out.append(charge(cost))
            for instr in code.body[start : bounds[k + 1]]:
                rule = costs.dynamic.get(instr[0])
                if rule:
                    # count -> temp; gas_left < amount ? out of gas : gas_left -= amount; count back
                    amount = b"\x20" + temp + b"\xad\x42" + sleb(rule.unit - 1) + b"\x7c\x42" + sleb(rule.unit) + b"\x80\x42" + sleb(rule.cost) + b"\x7e"
                    out.append((RAW, b"\x21" + temp + b"\x23" + G + amount + b"\x53" + oog + b"\x23" + G + amount + b"\x7d\x24" + G + b"\x20" + temp, -1, -1))
                out.append(instr)
        module.codes[f] = Code(list(code.locals) + [(1, op.I32)], out, code.offset)
    module.touch(Section.GLOBAL, Section.EXPORT, Section.CODE)
    return encode_module(module, wasm)
