"""Proof of authority with a single authority that seals a block at each step that has
pending transactions (Aura-like steps: step = time // period).
"""

from __future__ import annotations

import time

from chain.consensus.engine import BlockProducer, ConsensusEngine, ConsensusError
from chain.core.blocks import Header
from chain.core.keys import PrivateKey, recover_address


class PoaEngine(ConsensusEngine):
    """A single authority sealing a block at each step that has pending transactions."""

    name = "poa"

    def __init__(self, producer: BlockProducer, authority: bytes, key: PrivateKey, period: float):
        super().__init__(producer)
        if key.address != authority:
            raise ConsensusError(f"the node key is 0x{key.address.hex()}, the chain's authority is 0x{authority.hex()}")
        self.authority, self.key, self.period = authority, key, period

    def step(self) -> None:
        now = time.time()
        next_step = (int(now // self.period) + 1) * self.period
        if self._stop.wait(timeout=max(0.0, next_step - now)):
            return
        self.producer.produce_block(self)

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
