"""The pool's admission policy: its limits, and one error for each way a transaction is refused."""

from __future__ import annotations

from dataclasses import dataclass

from chain.tx.errors import InvalidTransaction


class DuplicateTransaction(InvalidTransaction):
    reason = "already known"


class ReplacementUnderpriced(InvalidTransaction):
    reason = "replacement transaction underpriced"


class TipTooLow(InvalidTransaction):
    reason = "transaction underpriced"


class SenderQueueFull(InvalidTransaction):
    reason = "too many queued transactions"


class QueueFull(InvalidTransaction):
    reason = "queue full"


class PoolFull(InvalidTransaction):
    reason = "pool full"


@dataclass(frozen=True)
class PoolLimits:
    """Admission policy; node-local, not consensus. Defaults follow geth's where it has one."""

    max_transactions: int = 100_000  # pending and queued together
    max_bytes: int = 128 << 20  # raw transaction bytes held, pending and queued together
    max_queued_per_sender: int = 64  # geth's AccountQueue
    max_queued: int = 1024  # geth's GlobalQueue
    queued_lifetime: float = 3 * 3600.0  # seconds; geth's Lifetime
    min_tip: int = 0  # wei per gas; consortium chains often run without fees
    price_bump: int = 10  # percent a replacement must add to fee cap and tip

    def __post_init__(self) -> None:
        for name in ("max_transactions", "max_bytes", "max_queued_per_sender", "max_queued"):
            if getattr(self, name) < 1:
                raise ValueError(f"pool limit {name} must be at least 1")
        if not self.queued_lifetime > 0:
            raise ValueError("pool limit queued_lifetime must be a positive number of seconds")
        if self.min_tip < 0 or self.price_bump < 0:
            raise ValueError("pool limits min_tip and price_bump must not be negative")
