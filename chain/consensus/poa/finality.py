"""When a PoA block is final, after OpenEthereum's RollingFinality.

A block is final once the blocks from it up to the head were sealed by more than half of
the validators, all distinct, its own sealer counted: more than half of the authorities
then built on it, and no fork that leaves it out can ever be longer without them.
"""

from __future__ import annotations

from typing import Callable, Sequence


def newest_final(head: int, finalized: int, sealer_of: Callable[[int], bytes], validators: Sequence[bytes]) -> int:
    """The newest final block number: walking down from the head, the first block at which
    more than half of the validators have sealed a block (at least `finalized`, which
    never goes back)."""
    members = set(validators)
    seen: set[bytes] = set()
    for number in range(head, finalized, -1):
        sealer = sealer_of(number)
        if sealer in members:
            seen.add(sealer)
        if 2 * len(seen) > len(members):
            return number
    return finalized
