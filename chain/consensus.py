"""Consensus engines behind one interface.

An engine decides when blocks are made and who seals them. The interface is the one
multi-node engines (PoA among several authorities, PBFT) will implement next:

- `submit_transaction(tx)`: admit a transaction to the pool (and, for them, gossip it);
- `send_message(peer, message)` / `broadcast_message(message)`: consensus messages
  between nodes;
- `get_most_recent(level)`: the newest block at a confirmation level.

The engines here run one node: `instant` makes a block as soon as transactions are
pending; `poa` is a single authority that seals a block every block period (Aura-like
steps: step = time // period) when transactions are pending.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from abc import ABC, abstractmethod

from .blocks import Header
from .keys import PrivateKey, recover_address

log = logging.getLogger("ewasm.consensus")


class ConfirmationLevel(str, enum.Enum):
    LATEST = "latest"  # the head, whatever its fate
    SAFE = "safe"  # unlikely to be reverted
    FINALIZED = "finalized"  # never reverted


class ConsensusError(RuntimeError):
    """A consensus operation that cannot be done (an unknown peer, a bad seal)."""


class ConsensusEngine(ABC):
    """What the node asks of consensus. `node` provides pool admission and block building."""

    name = "abstract"

    def __init__(self, node):
        self.node = node
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the interface ------------------------------------------------------------
    def submit_transaction(self, tx) -> bytes:
        """Admit a decoded transaction; returns its hash or raises InvalidTransaction."""
        self.node.admit(tx)
        self._wake.set()
        return tx.hash

    def send_message(self, peer: bytes, message: bytes) -> None:
        """Deliver a consensus message to one peer. A single node has none."""
        raise ConsensusError(f"unknown peer 0x{peer.hex()}: this engine runs a single node")

    def broadcast_message(self, message: bytes) -> int:
        """Deliver a consensus message to every peer; returns how many received it."""
        return 0

    def get_most_recent(self, level: ConfirmationLevel | str = ConfirmationLevel.LATEST) -> Header:
        """With one block producer there are no forks: every committed block is final."""
        ConfirmationLevel(level)  # rejects unknown levels
        return self.node.chain.head()

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # a failed block must not stop the node; the next try may work
                log.exception("block production failed")
                time.sleep(0.5)

    @abstractmethod
    def step(self) -> None:
        """Wait for the next moment to make a block, and make it if there is work."""

    def validators(self) -> list[bytes]:
        return []

    def seal(self, header: Header) -> bytes:
        return b""


class InstantEngine(ConsensusEngine):
    """A block as soon as there are transactions (development)."""

    name = "instant"

    def step(self) -> None:
        self._wake.wait(timeout=0.5)
        self._wake.clear()
        while not self._stop.is_set() and self.node.produce_block(self) is not None:
            pass


class PoaEngine(ConsensusEngine):
    """A single authority sealing a block at each step that has pending transactions."""

    name = "poa"

    def __init__(self, node, authority: bytes, key: PrivateKey, period: float):
        super().__init__(node)
        if key.address != authority:
            raise ConsensusError(f"the node key is 0x{key.address.hex()}, the chain's authority is 0x{authority.hex()}")
        self.authority, self.key, self.period = authority, key, period

    def step(self) -> None:
        now = time.time()
        next_step = (int(now // self.period) + 1) * self.period
        if self._stop.wait(timeout=max(0.0, next_step - now)):
            return
        self.node.produce_block(self)

    def validators(self) -> list[bytes]:
        return [self.authority]

    def seal(self, header: Header) -> bytes:
        y, r, s = self.key.sign_hash(header.hash)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y,))


def seal_signer(header: Header) -> bytes:
    """The address that sealed a PoA header (ConsensusError when the seal is bad)."""
    seal = header.seal
    if len(seal) != 65:
        raise ConsensusError(f"block {header.number} has no valid PoA seal")
    try:
        return recover_address(header.hash, seal[64], int.from_bytes(seal[:32], "big"), int.from_bytes(seal[32:64], "big"))
    except ValueError as err:
        raise ConsensusError(f"block {header.number}: bad seal ({err})") from None
