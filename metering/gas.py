"""Gas injection: charge each metered block before it runs.

The gas left lives in the exported mutable i64 global `gas_left`. Inside a function the
injected code keeps it in a local: loaded at entry, charged once per metered block,
written back (flushed) before every call and every exit, and reloaded after a call,
since the callee (or the host) charges the global. Observable gas and out-of-gas points
equal those of the plain rule, which the tests prove against a reference injector that
charges the global directly.

Out of gas: `gas_left` becomes -1 and the module traps with `unreachable`. Operations
whose work depends on an operand (memory.grow, memory.copy/fill/init, table.grow/fill/
copy/init) are charged on that operand right before they run.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.costs import CostTable
from metering.encode import RAW, sleb, uleb
from metering.metered_blocks import metered_blocks
from metering.module import Code, Export, ExternKind, Global, GlobalType, Module, Section

GAS_EXPORT = "gas_left"

_I64_CONST, _I64_SUB, _I64_LT_S, _I64_MUL, _I64_ADD, _I64_SHR_U = 0x42, 0x7D, 0x53, 0x7E, 0x7C, 0x88
_IF_EMPTY = b"\x04\x40"


def raw(data: bytes) -> tuple:
    return (RAW, data, -1, -1)


def add_gas_global(module: Module, initial: int = 0) -> int:
    """Append the exported `gas_left` global; returns its index."""
    index = len(module.global_types())
    module.globals.append(Global(GlobalType(op.I64, True), [(op.I64_CONST, initial, -1, -1)]))
    module.exports.append(Export(GAS_EXPORT, ExternKind.GLOBAL, index))
    module.touch(Section.GLOBAL, Section.EXPORT)
    return index


class GasSnippets:
    """Pre-encoded instruction sequences for one module's gas global and one function's locals."""

    def __init__(self, gas_global: int, gas_local: int, count_local: int):
        g, G = uleb(gas_local), uleb(gas_global)
        self.out_of_gas = _IF_EMPTY + b"\x42\x7f\x24" + G + b"\x00\x0b"
        self.flush = raw(b"\x20" + g + b"\x24" + G)
        self.reload = raw(b"\x23" + G + b"\x21" + g)
        self._g = g
        self._count = uleb(count_local)
        self._cache: dict[int, tuple] = {}

    def charge(self, cost: int) -> tuple:
        """g -= cost; out of gas when g goes negative (g >= 0 before, so no overflow)."""
        snippet = self._cache.get(cost)
        if snippet is None:
            g = self._g
            snippet = raw(b"\x20" + g + b"\x42" + sleb(cost) + b"\x7d\x22" + g + b"\x42\x00\x53" + self.out_of_gas)
            self._cache[cost] = snippet
        return snippet

    def dynamic(self, unit: int, cost: int) -> tuple:
        """Charge ceil(count / unit) * cost for the i32 count on top of the stack, keeping it there."""
        t, g = self._count, self._g
        amount = b"\x20" + t + b"\xad"  # local.get count; i64.extend_i32_u
        if unit > 1:
            amount += b"\x42" + sleb(unit - 1) + b"\x7c\x42" + sleb(unit.bit_length() - 1) + b"\x88"
        amount += b"\x42" + sleb(cost) + b"\x7e"
        return raw(
            b"\x21" + t + b"\x20" + g + amount + b"\x7d\x22" + g + b"\x42\x00\x53" + self.out_of_gas + b"\x20" + t
        )


def inject_gas(module: Module, costs: CostTable) -> int:
    """Meter every defined function in place; returns the gas global's index."""
    # A start function runs inside instantiation, before the host can set gas_left, so the
    # global starts with the table's fixed allowance for it; the host overwrites it later.
    gas_global = add_gas_global(module, costs.start_gas if module.start is not None else 0)
    func_types = module.func_type_indices()
    base = module.num_imported_funcs
    for i, code in enumerate(module.codes):
        params = len(module.types[func_types[base + i]].params)
        module.codes[i] = meter_function(code, params, gas_global, costs)
    module.touch(Section.CODE)
    return gas_global


_CALLS = (op.CALL, op.CALL_INDIRECT)


def meter_function(code: Code, params: int, gas_global: int, costs: CostTable) -> Code:
    """The function with its charges, flushes and dynamic charges injected."""
    body = code.body
    declared = code.local_count
    starts, block_cost = metered_blocks(body, costs, entry_extra=costs.local * declared)
    gas_local = params + declared
    dynamic = costs.dynamic
    uses_dynamic = any(instr[0] in dynamic for instr in body)
    snippets = GasSnippets(gas_global, gas_local, gas_local + 1)
    flush, reload = snippets.flush, snippets.reload

    out = [reload]
    append = out.append
    charge_at = dict(zip(starts, block_cost))
    interesting = {op.BLOCK, op.LOOP, op.IF, op.END, op.BR, op.BR_IF, op.BR_TABLE, op.RETURN, op.CALL, op.CALL_INDIRECT}
    interesting.update(dynamic)
    depth = 0  # open blocks inside the function
    last = len(body) - 1
    for i, instr in enumerate(body):
        cost = charge_at.get(i)
        if cost:
            append(snippets.charge(cost))
        code_op = instr[0]
        if code_op not in interesting:
            append(instr)
            continue
        if code_op in _CALLS:
            append(flush)
            append(instr)
            append(reload)
            continue
        if code_op == op.END:
            if i == last:
                append(flush)
            else:
                depth -= 1
        elif code_op in (op.BLOCK, op.LOOP, op.IF):
            depth += 1
        elif code_op == op.RETURN or (code_op in (op.BR, op.BR_IF) and instr[1] == depth):
            append(flush)
        elif code_op == op.BR_TABLE and (instr[1][1] == depth or depth in instr[1][0]):
            append(flush)
        elif code_op in dynamic:
            rule = dynamic[code_op]
            append(snippets.dynamic(rule.unit, rule.cost))
        append(instr)
    new_locals = list(code.locals) + [(1, op.I64)] + ([(1, op.I32)] if uses_dynamic else [])
    return Code(new_locals, out, code.offset)
