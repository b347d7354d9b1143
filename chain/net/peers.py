"""What a node knows of its peers: who is connected, and who is refused for a while."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable

from chain.net.channel import SecureChannel


@dataclass(frozen=True)
class PeerInfo:
    """A connected peer, as `ewasm_peers` reports it."""

    node_id: bytes
    host: str
    port: int
    direction: str  # "in" (it dialed us) or "out"


@dataclass
class Peer:
    """A connection that finished the handshake: its channel and its queue of frames to send."""

    info: PeerInfo
    channel: SecureChannel
    outbox: asyncio.Queue
    dialer: bytes  # the node id of the side that dialed: decides which of two connections stays
    tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def node_id(self) -> bytes:
        return self.info.node_id


class Bans:
    """Node ids refused until a deadline, with the reason (a peer that sent garbage,
    oversized messages or invalid blocks)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._until: dict[bytes, tuple[float, str]] = {}
        self.clock = clock

    def ban(self, node_id: bytes, seconds: float, reason: str) -> None:
        self._until[node_id] = (self.clock() + seconds, reason)

    def reason(self, node_id: bytes) -> str | None:
        """Why `node_id` is refused now, or None if it is not."""
        entry = self._until.get(node_id)
        if entry is None:
            return None
        until, reason = entry
        if self.clock() >= until:
            del self._until[node_id]
            return None
        return reason
