"""The receipt inbox: cross-shard receipts waiting to be delivered on this shard.

Each entry is a `Delivery` already checked against its final source header (the relay
and ewasm_submitReceipt check before they add). Entries are keyed by receipt id, so a
receipt heard twice is held once, and they leave when a block consumes them (or finds
them consumed before). Nothing here is consensus: the consumed set in the state is the
rule, and a lost inbox is refilled by the relay, which rescans from its cursor.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from chain.core.cross_shard import Delivery

MAX_WAITING = 65_536  # receipts held at once; beyond it the relay waits for blocks to drain them
ADDED, HELD, FULL = "added", "held", "full"


class ReceiptInbox:
    """Deliveries in the order they arrived, at most one per receipt id. Thread-safe."""

    def __init__(self, capacity: int = MAX_WAITING):
        self.capacity = capacity
        self._waiting: OrderedDict[bytes, Delivery] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def full(self) -> bool:
        return len(self._waiting) >= self.capacity

    def add(self, delivery: Delivery, *, force: bool = False) -> str:
        """Hold `delivery`: ADDED, HELD (it is already) or FULL, decided under the lock.
        `force` takes it even when full: a receipt a reverted block had consumed."""
        with self._lock:
            rid = delivery.receipt.id
            if rid in self._waiting:
                return HELD
            if len(self._waiting) >= self.capacity and not force:
                return FULL
            self._waiting[rid] = delivery
            return ADDED

    def ready(self, limit: int) -> list[Delivery]:
        """The `limit` oldest waiting deliveries, for the next block."""
        with self._lock:
            return [delivery for _, delivery in zip(range(limit), self._waiting.values())]

    def remove(self, receipt_ids) -> None:
        """Drop receipts a block consumed, or found consumed already."""
        with self._lock:
            for rid in receipt_ids:
                self._waiting.pop(rid, None)

    def oldest_block(self, source_shard: int) -> int | None:
        """The lowest source block of a receipt from `source_shard` still waiting: the
        relay's scan may not move past it, so that a restart finds it again."""
        with self._lock:
            blocks = [d.receipt.block for d in self._waiting.values() if d.receipt.source_shard == source_shard]
        return min(blocks, default=None)
