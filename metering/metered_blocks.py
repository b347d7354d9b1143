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


def metered_blocks(body: list, costs: CostTable, entry_extra: int = 0) -> tuple[list[int], list[int]]:
    """Start index and static cost of each metered block; the entry block also pays `entry_extra`.

    One pass: the instruction after an `end` is known to start a block once the `end`
    is reached, because every branch to a block lies inside it.
    """
    weights = costs.weights
    starts = [0]
    block_cost = [entry_extra]
    # Open control frames: [opcode, targeted]. The function frame is not kept: a branch
    # to it leaves the function, so it never cuts the body.
    frames: list[list] = []
    last = len(body) - 1
    current = entry_extra
    structural = _STRUCTURAL
    i = -1
    for code, imm, _, _ in body:
        i += 1
        current += weights.get(code, 0)
        if code not in structural:
            continue
        if code in _OPENERS:
            frames.append([code, False])
            if code == op.BLOCK:
                continue
        elif code == op.END:
            if not frames:
                continue
            opener, targeted = frames.pop()
            if not (opener == op.IF or (targeted and opener == op.BLOCK)):
                continue
        elif code != op.ELSE:  # a branch
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
        if i < last:
            block_cost[-1] = current
            starts.append(i + 1)
            block_cost.append(0)
            current = 0
    block_cost[-1] = current
    return starts, block_cost


_STRUCTURAL = frozenset(_OPENERS + _BRANCHES + (op.ELSE, op.END))
