"""The validators of a height: who may vote, how many make a quorum, who proposes.

QBFT tolerates f faulty validators out of n = 3f + 1 with a quorum of ceil(2n/3): any
two quorums then share at least one honest validator, so no two blocks can both gather
one at the same height and round.
"""

from __future__ import annotations

from dataclasses import dataclass


def quorum(n: int) -> int:
    """ceil(2n/3), as Besu's BftHelpers computes it."""
    return (2 * n + 2) // 3


def tolerated(n: int) -> int:
    """f, the most faulty validators n can outvote."""
    return (n - 1) // 3


@dataclass(frozen=True)
class Committee:
    validators: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.validators or len(set(self.validators)) != len(self.validators):
            raise ValueError("a committee needs at least one validator, each once")

    @property
    def quorum(self) -> int:
        return quorum(len(self.validators))

    @property
    def weak_quorum(self) -> int:
        """f + 1: at least one of that many is honest."""
        return tolerated(len(self.validators)) + 1

    def proposer(self, height: int, round_: int) -> bytes:
        """Round-robin over height and round."""
        return self.validators[(height + round_) % len(self.validators)]

    def __contains__(self, address: bytes) -> bool:
        return address in self.validators
