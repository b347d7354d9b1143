"""How many transactions a block may take so that it is built and imported in time.

An Aura validator's block must be built, sent and imported by the next validator
before that one's step begins; a block that takes longer makes the next validator
build on an older head, and the chain forks, which wastes both blocks' work. So the
node keeps estimates of what one transaction costs to build and to import (measured on
its own recent blocks: every validator imports most blocks, so it knows both), and
gives each block as many transactions as fit in the engine's budget for the pair.
Whatever the producer includes, the others re-execute exactly that, so the cut changes
no rule.
"""

from __future__ import annotations

from dataclasses import dataclass

SMOOTHING = 0.3  # weight of the newest block in the running estimates
MIN_TRANSACTIONS = 100  # a block always has room for this many
MIN_SAMPLE = 50  # blocks smaller than this say too little about the cost per transaction


@dataclass
class BlockBudget:
    seconds: float | None  # to build a block and import it elsewhere; None: no limit
    build_per_transaction: float = 0.0003  # seconds; first guesses, replaced by measurement
    import_per_transaction: float = 0.0003

    def transactions(self, limit: int) -> int:
        """How many transactions the next block may take, at most `limit`."""
        if self.seconds is None:
            return limit
        per_transaction = self.build_per_transaction + self.import_per_transaction
        return max(MIN_TRANSACTIONS, min(limit, int(self.seconds / per_transaction)))

    def built(self, count: int, seconds: float) -> None:
        """This node built a block of `count` transactions in `seconds`."""
        if count >= MIN_SAMPLE:
            self.build_per_transaction = _smoothed(self.build_per_transaction, seconds / count)

    def imported(self, count: int, seconds: float) -> None:
        """This node imported a block of `count` transactions in `seconds`."""
        if count >= MIN_SAMPLE:
            self.import_per_transaction = _smoothed(self.import_per_transaction, seconds / count)


def _smoothed(estimate: float, sample: float) -> float:
    return estimate + SMOOTHING * (sample - estimate)
