"""Consensus engines behind one interface.

An engine decides when blocks are made and who seals them. The interface is the one
multi-node engines (PoA among several authorities, PBFT) will implement next:

- `submit_transaction(tx)`: admit a transaction to the pool (and, for them, gossip it);
- `send_message(peer, message)` / `broadcast_message(message)`: consensus messages
  between nodes;
- `get_most_recent(level)`: the newest block at a confirmation level.

An engine drives a `BlockProducer` (the node): it admits transactions through it and
asks it for blocks, sealing each with `seal`; its `rules` are its part of block
validity, its `prefers` its fork choice, and `on_head` moves its finality. Each engine
has its own folder: `instant` makes a block as soon as transactions are pending; `poa`
is Aura, validators taking turns by time step; `pbft` is QBFT, a block final once a
quorum of validators has committed it.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Callable, Protocol

from chain.core.blocks import Block, Header
from chain.ledger.state_transition import SealRules
from chain.tx.transaction import Transaction

log = logging.getLogger("ewasm.consensus")


class ConfirmationLevel(str, enum.Enum):
    LATEST = "latest"  # the head, whatever its fate
    SAFE = "safe"  # unlikely to be reverted
    FINALIZED = "finalized"  # never reverted


ValidatorsAt = Callable[[int], tuple[bytes, ...]]  # height -> its validators (chain/ledger/validator_sets.py)


class ConsensusError(RuntimeError):
    """A consensus operation that cannot be done (an unknown peer, a bad seal)."""


class BlockProducer(Protocol):
    """What an engine needs of its node: pool admission, block building and the head."""

    def admit(self, tx: Transaction) -> None:
        """Admit a transaction to the pool, or raise InvalidTransaction."""

    def produce_block(self, engine: "ConsensusEngine", *, timestamp: int | None = None, extra_data: bytes = b"",
                      allow_empty: bool = False) -> Block | None:
        """Build, seal (through `engine.seal`) and commit a block from the pool; None when
        nothing is pending and `allow_empty` is false."""

    def head(self) -> Header:
        """The newest committed block."""

    def header(self, number: int) -> Header | None:
        """A committed block's header."""

    def finalized(self) -> int:
        """The newest final block's number."""

    def finalize(self, number: int) -> None:
        """Blocks up to `number` are final: never to be reverted."""


class ConsensusEngine(ABC):
    """What the node asks of consensus."""

    name = "abstract"
    rules: SealRules  # the engine's part of block validity, for importing blocks made elsewhere

    def __init__(self, producer: BlockProducer):
        self.producer = producer
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the interface ------------------------------------------------------------
    def submit_transaction(self, tx) -> bytes:
        """Admit a decoded transaction; returns its hash or raises InvalidTransaction."""
        self.producer.admit(tx)
        self._wake.set()
        return tx.hash

    def wake(self) -> None:
        """Work other than a transaction arrived (a cross-shard receipt to deliver)."""
        self._wake.set()

    def send_message(self, peer: bytes, message: bytes) -> None:
        """Deliver a consensus message to one peer. A single node has none."""
        raise ConsensusError(f"unknown peer 0x{peer.hex()}: this engine runs a single node")

    def broadcast_message(self, message: bytes) -> int:
        """Deliver a consensus message to every peer; returns how many received it."""
        return 0

    def get_most_recent(self, level: ConfirmationLevel | str = ConfirmationLevel.LATEST) -> Header:
        """The head, or for "safe" and "finalized" the newest final block."""
        if ConfirmationLevel(level) is ConfirmationLevel.LATEST:
            return self.producer.head()
        return self.producer.header(self.producer.finalized())

    def on_head(self) -> None:
        """The node's head changed (a block built, imported or reverted): engines with
        finality rules update it here."""

    def block_budget(self) -> float | None:
        """Seconds a block may take to be built here and imported by the next proposer
        (None: no limit)."""
        return None

    def witness(self, header: Header) -> bool:
        """Note a block heard of; False if it is evidence of misbehaviour (recorded)."""
        return True

    def prefers(self, candidate: Header, current: Header) -> bool:
        """Whether a branch ending at `candidate` beats the chain ending at `current`
        (engines without forks never switch)."""
        return False

    def status(self) -> dict:
        """The engine's own fields for ewasm_consensusStatus."""
        return {}

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
