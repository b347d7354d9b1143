"""Gossip: each transaction passes through a node once, to every peer but the one it came
from. A bounded memory of the hashes seen keeps it from circulating."""

from __future__ import annotations

from collections import OrderedDict

from chain.net import wire


class SeenHashes:
    """The most recent `capacity` hashes, oldest forgotten first."""

    def __init__(self, capacity: int = 100_000):
        self.capacity = capacity
        self._hashes: OrderedDict[bytes, None] = OrderedDict()

    def add(self, item: bytes) -> bool:
        """Remember `item`; True if it was new."""
        if item in self._hashes:
            self._hashes.move_to_end(item)
            return False
        self._hashes[item] = None
        if len(self._hashes) > self.capacity:
            self._hashes.popitem(last=False)
        return True

    def __contains__(self, item: bytes) -> bool:
        return item in self._hashes

    def __len__(self) -> int:
        return len(self._hashes)


def transaction_messages(raws: list[bytes]) -> list[wire.Transactions]:
    """`raws` cut into Transactions messages that keep within the message's caps."""
    messages, batch, size = [], [], 0
    budget = wire.SIZE_CAPS[wire.Kind.TRANSACTIONS] - 64
    for raw in raws:
        cost = len(raw) + 5  # msgpack's bin header
        if batch and (len(batch) == wire.MAX_TRANSACTIONS or size + cost > budget):
            messages.append(wire.Transactions(tuple(batch)))
            batch, size = [], 0
        batch.append(raw)
        size += cost
    if batch:
        messages.append(wire.Transactions(tuple(batch)))
    return messages
