"""What makes a PoA (Aura) header valid: it was sealed by the validator whose step it is,
in a step after its parent's and no more than one step ahead of this node's clock, with
the timestamp of that step, and it names the validator set of its height."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from chain.consensus.poa.seal import seal_signer
from chain.consensus.poa.steps import header_step, proposer_of, step_at, step_timestamp
from chain.core.blocks import Header, InvalidBlock, validator_set_hash


@dataclass(frozen=True)
class PoaRules:
    validators_at: Callable[[int], tuple[bytes, ...]]  # the validators of a height
    step_duration: float
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def verify_header(self, header: Header, parent: Header) -> None:
        step, parent_step = header_step(header), header_step(parent)
        if step <= parent_step:
            raise InvalidBlock(f"block {header.number}: step {step} is not after its parent's step {parent_step}")
        now = step_at(self.clock(), self.step_duration)
        if step > now + 1:
            raise InvalidBlock(f"block {header.number}: step {step} is more than one step ahead of this node's "
                               f"step {now}")
        if header.timestamp != step_timestamp(step, self.step_duration):
            raise InvalidBlock(f"block {header.number}: timestamp {header.timestamp} is not the start of step {step} "
                               f"({step_timestamp(step, self.step_duration)})")
        validators = self.validators_at(header.number)
        expected = proposer_of(step, validators)
        if header.proposer != expected:
            raise InvalidBlock(f"block {header.number}: step {step} belongs to validator 0x{expected.hex()}, not to "
                               f"the proposer 0x{header.proposer.hex()}")
        signer = seal_signer(header)
        if signer != header.proposer:
            raise InvalidBlock(f"block {header.number}: sealed by 0x{signer.hex()}, not by its proposer "
                               f"0x{header.proposer.hex()}")
        if header.validator_set_hash != validator_set_hash(list(validators)):
            raise InvalidBlock(f"block {header.number}: the validator-set hash does not name this chain's validators")
