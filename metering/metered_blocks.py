"""Metered blocks: where a function body is cut, and what each piece costs.

A metered block is a maximal straight-line run that executes all or nothing. A new one
begins at the function entry, at the first instruction of a loop body and of each arm of
an `if`, after the `end` of a block that some branch targets (and after every `if`'s
`end`, which a skipped or finished arm reaches by a jump), and after each `br`, `br_if`,
`br_table` and `return`. An `end` that nothing branches to does not cut, and neither
does a `call`. This is the analysis the gas semantics of the design fixes.
"""

from __future__ import annotations

from metering import opcodes as op
from metering.costs import CostTable

_OPENERS = (op.BLOCK, op.LOOP, op.IF)
_BRANCHES = (op.BR, op.BR_IF, op.BR_TABLE, op.RETURN)


def block_starts(body: list) -> list[int]:
    """Indices of the instructions that begin a metered block, in order."""
    starts = [0]
    # Open control frames: [opcode, targeted]. The function frame is not kept: a branch
    # to it leaves the function, so it never cuts the body.
    frames: list[list] = []
    last = len(body) - 1
    for i, (code, imm, _, _) in enumerate(body):
        cut_after = False
        if code in _OPENERS:
            frames.append([code, False])
            cut_after = code != op.BLOCK
        elif code == op.ELSE:
            cut_after = True
        elif code == op.END:
            if frames:
                opener, targeted = frames.pop()
                cut_after = opener == op.IF or (targeted and opener == op.BLOCK)
        elif code in _BRANCHES:
            cut_after = True
            if code == op.BR_TABLE:
                labels = set(imm[0])
                labels.add(imm[1])
            elif code == op.RETURN:
                labels = ()
            else:
                labels = (imm,)
            depth = len(frames)
            for label in labels:
                if label < depth:
                    frames[depth - 1 - label][1] = True
        if cut_after and i < last and starts[-1] != i + 1:
            starts.append(i + 1)
    return starts


def block_costs(body: list, starts: list[int], costs: CostTable, entry_extra: int = 0) -> list[int]:
    """Static cost of each metered block; the entry block also pays `entry_extra`."""
    weights = costs.weights
    out = []
    bounds = starts + [len(body)]
    for k in range(len(starts)):
        total = 0
        for instr in body[bounds[k] : bounds[k + 1]]:
            total += weights.get(instr[0], 0)
        out.append(total)
    if out:
        out[0] += entry_extra
    return out
