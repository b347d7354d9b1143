"""Proof of authority, Aura-style: the validators take turns by time step.

step = unix time // step duration, and step s belongs to validators[s mod n], the
validators of the height being sealed (they change at epoch boundaries, see
chain/ledger/validator_sets.py: a node voted in starts sealing there, one voted out
stops). At the
start of each of its steps a validator seals a block on its head (empty too, unless the
spec turns empty blocks off), so that finality and liveness never wait for traffic; a
validator that is offline simply misses its steps, and the others go on. Every node
checks each block against the same rules (rules.py).

Blocks can fork (two validators that did not see each other's block in time): the chain
with more blocks wins, then the one whose head has the lower step (OpenEthereum's
score), and a node switches by reverting to the common ancestor. A block is final once
more than half of the validators have sealed blocks on top of it, its own included
(finality.py); final blocks are never reverted. Two different blocks by one validator in
one step are evidence of misbehaviour: they are recorded, and the first one is kept
unless the other's branch outgrows it.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from chain.consensus.engine import BlockProducer, ConsensusEngine, ConsensusError, ValidatorsAt
from chain.consensus.poa.finality import newest_final
from chain.consensus.poa.rules import PoaRules
from chain.consensus.poa.seal import seal_signer, sign_header
from chain.consensus.poa.steps import encode_step, header_step, proposer_of, step_at, step_timestamp
from chain.core.blocks import Header
from chain.core.keys import PrivateKey

log = logging.getLogger("ewasm.consensus")
MAX_EVIDENCE = 256
BLOCK_SHARE = 0.8  # of a step, for building a block and importing it at the next validator


class PoaEngine(ConsensusEngine):
    name = "poa"

    def __init__(self, producer: BlockProducer, validators_at: ValidatorsAt, key: PrivateKey | None,
                 step_duration: float, *, empty_blocks: bool = True, clock: Callable[[], float] = time.time):
        """`key` seals the steps of its address at the heights where that is a validator;
        None on a node that only follows."""
        super().__init__(producer)
        self.validators_at, self.key, self.step_duration = validators_at, key, step_duration
        self.empty_blocks, self.clock = empty_blocks, clock
        self.rules = PoaRules(validators_at, step_duration, clock)
        self.evidence: list[dict] = []
        self._seen: dict[tuple[bytes, int], bytes] = {}  # (sealer, step) -> the first block hash seen

    def validators(self) -> list[bytes]:
        """The validators of the next block."""
        return list(self.validators_at(self.producer.head().number + 1))

    def seal(self, header: Header) -> bytes:
        if self.key is None:
            raise ConsensusError("this node is not a validator and seals nothing")
        return sign_header(self.key, header)

    # -- production -----------------------------------------------------------------
    def step(self) -> None:
        """Wait for the next step; seal a block in it if it is this node's."""
        now = self.clock()
        step = step_at(now, self.step_duration) + 1
        if self._stop.wait(timeout=max(0.0, step * self.step_duration - now)):
            return
        head = self.producer.head()
        if self.key is None or proposer_of(step, self.validators_at(head.number + 1)) != self.key.address:
            return
        if header_step(head) >= step:
            return  # a block of this step is already the head
        block = self.producer.produce_block(self, timestamp=step_timestamp(step, self.step_duration),
                                            extra_data=encode_step(step), allow_empty=self.empty_blocks)
        if block is not None:
            self.witness(block.header)

    def block_budget(self) -> float:
        """Most of a step: the next validator must have the block when its step begins."""
        return BLOCK_SHARE * self.step_duration

    # -- following ------------------------------------------------------------------
    def on_head(self) -> None:
        """Move finality up to the newest block that more than half of the head's
        validators built on."""
        head = self.producer.head()
        finalized = self.producer.finalized()
        final = newest_final(head.number, finalized, lambda n: self.producer.header(n).proposer,
                             self.validators_at(head.number))
        if final > finalized:
            self.producer.finalize(final)

    def prefers(self, candidate: Header, current: Header) -> bool:
        """More blocks first, then the lower step at the head (OpenEthereum's score)."""
        return (candidate.number, -header_step(candidate)) > (current.number, -header_step(current))

    def witness(self, header: Header) -> bool:
        """Note who sealed a block in which step; False (and the evidence recorded) if the
        same validator already sealed a different block in that step.

        Only a header that its proposer really sealed counts: a forged seal must not
        frame an honest validator (InvalidBlock for a malformed seal)."""
        if seal_signer(header) != header.proposer:
            return True  # import refuses it; it says nothing about the proposer
        key = (header.proposer, header_step(header))
        first = self._seen.setdefault(key, header.hash)
        if len(self._seen) > 4 * MAX_EVIDENCE:
            for old in list(self._seen)[:MAX_EVIDENCE]:
                del self._seen[old]
        if first == header.hash:
            return True
        record = {"validator": "0x" + header.proposer.hex(), "step": key[1], "first": "0x" + first.hex(),
                  "second": "0x" + header.hash.hex()}
        if record not in self.evidence:
            log.warning("evidence: validator 0x%s sealed two blocks in step %d (0x%s and 0x%s)", header.proposer.hex(),
                        key[1], first.hex(), header.hash.hex())
            self.evidence = [*self.evidence, record][-MAX_EVIDENCE:]
        return False

    def status(self) -> dict:
        now = step_at(self.clock(), self.step_duration)
        return {"step": now, "stepDuration": self.step_duration, "proposer": "0x" + proposer_of(
            now, tuple(self.validators())).hex(), "evidence": list(self.evidence)}
