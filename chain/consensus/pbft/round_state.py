"""The votes of one round: its accepted proposal, and each validator's first PREPARE and
COMMIT. A validator counts once; a second, different vote of the same kind is kept out
and returned as evidence of equivocation."""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.consensus.pbft.messages import Kind, Signed


@dataclass
class RoundState:
    round: int
    proposal: Signed | None = None
    prepares: dict[bytes, Signed] = field(default_factory=dict)  # sender -> its PREPARE
    commits: dict[bytes, Signed] = field(default_factory=dict)  # sender -> its COMMIT
    prepared: bool = False  # this node has sent its COMMIT for the proposal

    def add_vote(self, signed: Signed) -> Signed | None:
        """Count a PREPARE or COMMIT; returns the sender's earlier, different vote if this
        one contradicts it (and this one is not counted)."""
        votes = self.prepares if signed.message.kind == Kind.PREPARE else self.commits
        first = votes.setdefault(signed.sender, signed)
        if first.message.digest != signed.message.digest:
            return first
        return None

    @property
    def digest(self) -> bytes | None:
        return None if self.proposal is None else self.proposal.message.digest

    def prepares_for_proposal(self) -> tuple[Signed, ...]:
        return tuple(p for p in self.prepares.values() if p.message.digest == self.digest)

    def commits_for_proposal(self) -> tuple[Signed, ...]:
        return tuple(c for c in self.commits.values() if c.message.digest == self.digest)
