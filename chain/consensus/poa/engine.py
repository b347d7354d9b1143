"""Proof of authority with a single authority that seals a block at each step that has
pending transactions (Aura-like steps: step = time // period). The other nodes of the
network follow: they import and verify its blocks, and seal nothing.
"""

from __future__ import annotations

import time

from chain.consensus.engine import BlockProducer, ConsensusEngine, ConsensusError
from chain.consensus.poa.rules import PoaRules
from chain.consensus.poa.seal import sign_header
from chain.core.blocks import Header
from chain.core.keys import PrivateKey


class PoaEngine(ConsensusEngine):
    """A single authority sealing a block at each step that has pending transactions."""

    name = "poa"

    def __init__(self, producer: BlockProducer, authority: bytes, key: PrivateKey | None, period: float):
        """`key` is the authority's, to seal; None on a node that follows."""
        super().__init__(producer)
        if key is not None and key.address != authority:
            raise ConsensusError(f"the node key is 0x{key.address.hex()}, the chain's authority is 0x{authority.hex()}")
        self.authority, self.key, self.period = authority, key, period
        self.rules = PoaRules(authority)

    def step(self) -> None:
        if self.key is None:  # a follower: blocks come from the network
            self._stop.wait(timeout=1.0)
            return
        now = time.time()
        next_step = (int(now // self.period) + 1) * self.period
        if self._stop.wait(timeout=max(0.0, next_step - now)):
            return
        self.producer.produce_block(self)

    def validators(self) -> list[bytes]:
        return [self.authority]

    def seal(self, header: Header) -> bytes:
        if self.key is None:
            raise ConsensusError("this node follows the authority and seals nothing")
        return sign_header(self.key, header)
