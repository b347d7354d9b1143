"""The instant engine: one node that makes a block as soon as transactions are pending
(development).
"""

from __future__ import annotations

from chain.consensus.engine import ConsensusEngine
from chain.consensus.instant.rules import InstantRules


class InstantEngine(ConsensusEngine):
    """A block as soon as there are transactions (development)."""

    name = "instant"
    rules = InstantRules()

    def step(self) -> None:
        self._wake.wait(timeout=0.5)
        self._wake.clear()
        while not self._stop.is_set() and self.producer.produce_block(self) is not None:
            pass
