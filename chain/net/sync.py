"""Catching up: which peer to ask for which blocks.

A node learns its peers' heads from their Status messages and block announcements. When
one is ahead, it asks that peer for the next range of blocks (at most MAX_BLOCKS), one
request at a time, and imports what comes back before it asks again. It only ever asks a
peer that is ahead of it, so two nodes that are both behind never ask each other in a
loop; a request that gets no answer in time, or an answer that fails to import, puts the
peer aside for a while and the next request goes to another.

This is a state machine with no I/O: the node feeds it what it hears and sends what it
returns (chain/node/network.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from chain.net.wire import MAX_BLOCKS


@dataclass(frozen=True)
class Request:
    peer: bytes
    first: int
    count: int
    sent: float


class BlockSync:
    def __init__(self, timeout: float = 5.0, rest: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.timeout, self.rest, self.clock = timeout, rest, clock
        self.heads: dict[bytes, int] = {}  # peer -> the highest block number it has shown
        self.outstanding: Request | None = None
        self._resting: dict[bytes, float] = {}  # peer -> until when it is not asked

    def on_head(self, peer: bytes, number: int) -> None:
        """A peer has block `number` (from its Status or an announcement)."""
        self.heads[peer] = max(number, self.heads.get(peer, -1))

    def on_peer_gone(self, peer: bytes) -> None:
        self.heads.pop(peer, None)
        if self.outstanding is not None and self.outstanding.peer == peer:
            self.outstanding = None

    def behind(self, head: int) -> bool:
        """Whether some peer has shown a block above `head`."""
        return any(number > head for number in self.heads.values())

    def highest(self) -> int:
        """The highest block any connected peer has shown (-1 before any has)."""
        return max(self.heads.values(), default=-1)


    def next_request(self, head: int) -> Request | None:
        """The request to send now, if one is due: the next blocks after `head`, from the
        peer furthest ahead that is not resting."""
        now = self.clock()
        if self.outstanding is not None:
            if now - self.outstanding.sent < self.timeout:
                return None
            self.put_aside(self.outstanding.peer)  # it never answered
        ahead = [(number, peer) for peer, number in self.heads.items()
                 if number > head and self._resting.get(peer, 0.0) <= now]
        if not ahead:
            return None
        number, peer = max(ahead)
        self.outstanding = Request(peer, head + 1, min(MAX_BLOCKS, number - head), now)
        return self.outstanding

    def on_blocks(self, peer: bytes) -> bool:
        """An answer arrived from `peer`: True if it is the one awaited (then import it)."""
        if self.outstanding is None or self.outstanding.peer != peer:
            return False
        self.outstanding = None
        return True

    def put_aside(self, peer: bytes) -> None:
        """Ask `peer` nothing for a while (it was slow, or sent what did not import)."""
        self._resting[peer] = self.clock() + self.rest
        if self.outstanding is not None and self.outstanding.peer == peer:
            self.outstanding = None


SYNC_LAG = 2  # blocks behind the highest peer before a node says it is syncing (one is a block in flight)


def sync_progress(head: int, highest: int, started: int | None) -> tuple[tuple[int, int, int] | None, int | None]:
    """eth_syncing's (starting, current, highest) while `head` is SYNC_LAG or more blocks
    behind `highest`, else None; and the head the catching up began at, kept between calls."""
    if highest - head < SYNC_LAG:
        return None, None
    started = head if started is None else started
    return (started, head, highest), started
