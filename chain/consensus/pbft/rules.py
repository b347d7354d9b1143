"""What makes a PBFT header valid: it names the validator set of its height, its proposer
is one of those validators, and a quorum of them, distinct, sealed it: each commit seal a signature
over the block hash with the round the block committed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from chain.consensus.pbft.certificates import JustificationError, commit_signers
from chain.consensus.pbft.committee import Committee
from chain.consensus.pbft.seal import decode_seal
from chain.core.blocks import Header, InvalidBlock, validator_set_hash


@dataclass(frozen=True)
class ProposalRules:
    """What a proposal's header must be before anyone seals it."""

    committee_at: Callable[[int], Committee]  # the validators of a height

    def verify_header(self, header: Header, parent: Header) -> None:
        self.verify_proposal(header)

    def verify_proposal(self, header: Header) -> None:
        committee = self.committee_at(header.number)
        if header.proposer not in committee:
            raise InvalidBlock(f"block {header.number}: proposed by 0x{header.proposer.hex()}, not a validator")
        if header.validator_set_hash != validator_set_hash(list(committee.validators)):
            raise InvalidBlock(f"block {header.number}: the validator-set hash does not name this chain's validators")


@dataclass(frozen=True)
class PbftRules(ProposalRules):
    """A committed block: a valid proposal with a quorum of commit seals."""

    def verify_header(self, header: Header, parent: Header) -> None:
        self.verify_proposal(header)
        round_, seals = decode_seal(header)
        committee = self.committee_at(header.number)
        try:
            signers = commit_signers(seals, committee, header.hash, round_)
        except JustificationError as err:
            raise InvalidBlock(f"block {header.number}: {err}") from None
        if len(signers) < committee.quorum:
            raise InvalidBlock(f"block {header.number}: commit seals of {len(signers)} validators, a quorum is "
                               f"{committee.quorum}")
