"""QBFT for one height, as a pure state machine: messages and clock ticks in, actions out.

It reads no clock and touches no socket or disk: the time comes in with each call, and
what it wants done comes out as actions, in the order they must be done. So tests can
drive any number of machines through any schedule, and the engine (which owns the
timers, the transport and the write-ahead log) stays a thin loop around it.

One height, after Besu's QbftBlockHeightManager and QbftRound:

1. The block timer: the height's round 0 begins `block_period` after it was entered.
2. A round begins: its round timer is set to request_timeout x 2^round (the exponent
   capped, so that a long outage does not leave the network waiting for hours). Its
   proposer builds a block (BuildBlock, answered by `propose`) and sends PROPOSAL; above
   round 0 it needs a quorum of ROUND-CHANGEs first, and re-proposes the block of the
   highest prepared certificate among them, if any.
3. A validator accepts the round's proposal (from the round's proposer, a valid block,
   and above round 0 a justification that holds) and sends PREPARE.
4. At a quorum of PREPAREs for it, the validator is prepared: it keeps the certificate
   and sends COMMIT with its commit seal.
5. At a quorum of COMMITs the height is decided (Decided, with the seals).
6. If the round timer fires first, the validator moves to the next round and sends
   ROUND-CHANGE with its certificate. A weak quorum (f + 1) of ROUND-CHANGEs for later
   rounds makes it jump to the lowest of them; a valid PROPOSAL for a later round does
   too.
7. Unlike Besu, which trusts its links never to lose a message, a validator that has
   not decided sends its votes of the current round again every request_timeout. A
   lost vote is then a short delay, not a round change whose timer doubles (votes count
   once, so the copies change nothing else).

Against hostile validators: rounds beyond MAX_ROUNDS_AHEAD of the current one are not
kept, each validator counts once per vote, and a second, different PROPOSAL or COMMIT
from one validator in one round is returned as Evidence. A validator never signs two
different votes of one kind in one round; every vote goes out as Persist, then Broadcast,
so that the engine writes it ahead before it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from chain.consensus.pbft.certificates import JustificationError, check_prepared, highest_prepared
from chain.consensus.pbft.committee import Committee
from chain.consensus.pbft.messages import MAX_ROUND, Kind, Message, MessageError, Prepared, Signed, commit_digest, sign
from chain.consensus.pbft.round_state import RoundState
from chain.core.keys import PrivateKey

MAX_ROUNDS_AHEAD = 8  # later rounds than this ahead of the current one are not kept
MAX_EVIDENCE = 64


@dataclass(frozen=True)
class Timeouts:
    block_period: float  # seconds from entering a height to its round 0
    request_timeout: float  # round 0's timer; round r's is this x 2^r
    max_exponent: int = 6  # round timers stop growing at request_timeout x 2^6

    def round_timer(self, round_: int) -> float:
        return self.request_timeout * 2 ** min(round_, self.max_exponent)


# -- actions ------------------------------------------------------------------------
@dataclass(frozen=True)
class Persist:
    """Write this vote ahead (with the machine's certificate) before it is broadcast."""
    vote: Signed
    prepared: Prepared | None


@dataclass(frozen=True)
class Broadcast:
    signed: Signed


@dataclass(frozen=True)
class BuildBlock:
    """Build a block for this height; hand it to `propose`."""
    height: int
    round: int


@dataclass(frozen=True)
class Decided:
    height: int
    round: int
    block: bytes
    digest: bytes
    seals: tuple[bytes, ...]  # the commit seals of a quorum, in validator order


@dataclass(frozen=True)
class Evidence:
    """Two different messages of one kind, signed by one validator for one round."""
    first: Signed
    second: Signed


Action = Union[Persist, Broadcast, BuildBlock, Decided, Evidence]
DigestOf = Callable[[bytes], bytes]  # a block's digest
CheckBlock = Callable[[bytes], bool]  # whether a proposed block is valid on this node's head


class HeightMachine:
    """The QBFT state of one height. `key` is None on a node that follows but never votes."""

    def __init__(self, key: PrivateKey | None, committee: Committee, height: int, now: float, timeouts: Timeouts,
                 digest_of: DigestOf, check_block: CheckBlock):
        self.key, self.committee, self.height, self.timeouts = key, committee, height, timeouts
        self.digest_of, self.check_block = digest_of, check_block
        self.me = key.address if key is not None else None
        self.round = 0
        self.started = False  # round 0 begins when the block timer fires
        self.deadline = now + timeouts.block_period  # the block timer, then the current round's timer
        self.rounds: dict[int, RoundState] = {}
        self.round_changes: dict[int, dict[bytes, Signed]] = {}  # round -> sender -> its ROUND-CHANGE
        self.prepared: Prepared | None = None  # the highest certificate this node holds
        self.sent: dict[tuple[Kind, int], bytes] = {}  # (kind, round) -> the digest this node signed
        self.decided: Decided | None = None
        self.evidence: list[Evidence] = []
        self._building: int | None = None  # the round a BuildBlock was asked for
        self.own: dict[tuple[Kind, int], Signed] = {}  # this node's votes at this height, to send again
        self.resend_at = self.deadline + timeouts.request_timeout

    def restore(self, sent: dict[tuple[Kind, int], bytes], prepared: Prepared | None, now: float) -> None:
        """Take back what this validator signed at this height before a restart: it signs
        nothing that contradicts it, and resumes in the latest round it voted in."""
        self.sent, self.prepared = dict(sent), prepared
        latest = max((round_ for _, round_ in sent), default=0)
        if latest:
            self.started, self.round, self.deadline = True, latest, now + self.timeouts.round_timer(latest)

    # -- inputs ---------------------------------------------------------------------
    def tick(self, now: float) -> list[Action]:
        """The clock moved: start round 0 when the block timer fires, change round when
        the round timer does."""
        if self.decided is not None:
            return []
        if now < self.deadline:
            return self._resend(now) if self.started and now >= self.resend_at else []
        if not self.started:
            return self._enter(0, now)
        return self._round_change_to(self.round + 1, now)

    def propose(self, block: bytes, now: float) -> list[Action]:
        """The block asked for by BuildBlock, for the round it was asked for."""
        if self._building != self.round or self.decided is not None:
            return []  # the round moved on meanwhile
        self._building = None
        justification = tuple(self.round_changes.get(self.round, {}).values()) if self.round else ()
        return self._send_proposal(block, justification, now)

    def handle(self, signed: Signed, now: float) -> list[Action]:
        """A message from a peer (or this node's own, echoed): count it and act."""
        m = signed.message
        if m.height != self.height or self.decided is not None or m.round > self.round + MAX_ROUNDS_AHEAD:
            return []
        try:
            if signed.sender not in self.committee:
                return []
        except MessageError:
            return []
        if m.kind == Kind.PROPOSAL:
            return self._on_proposal(signed, now)
        if m.kind == Kind.ROUND_CHANGE:
            return self._on_round_change(signed, now)
        return self._on_vote(signed, now)

    # -- rounds -----------------------------------------------------------------------
    def _enter(self, round_: int, now: float) -> list[Action]:
        """Begin `round_`: its timer, and its proposal if this node proposes it."""
        self.started, self.round, self.deadline = True, round_, now + self.timeouts.round_timer(round_)
        return self._maybe_propose(now) + self._recount(now)

    def _round_change_to(self, round_: int, now: float) -> list[Action]:
        """Leave the current round for `round_` and say so, with this node's certificate."""
        if round_ > MAX_ROUND:  # stay, and try again after another timer
            self.deadline = now + self.timeouts.round_timer(self.round)
            return []
        self.started, self.round, self.deadline = True, round_, now + self.timeouts.round_timer(round_)
        change = self._vote(Message(Kind.ROUND_CHANGE, self.height, round_, prepared=self.prepared), now)
        return change + self._maybe_propose(now) + self._recount(now)

    def _maybe_propose(self, now: float) -> list[Action]:
        if self.me is None or self.committee.proposer(self.height, self.round) != self.me:
            return []
        state = self._state(self.round)
        if state.proposal is not None or self._building == self.round:
            return []
        if self.round == 0:
            self._building = 0
            return [BuildBlock(self.height, 0)]
        changes = tuple(self.round_changes.get(self.round, {}).values())
        if len(changes) < self.committee.quorum:
            return []
        best = highest_prepared(changes, self.committee, self.height, self.round, self.digest_of)
        if best is not None:  # the block a quorum may have prepared must be the one proposed
            return self._send_proposal(best.block, changes, now)
        self._building = self.round
        return [BuildBlock(self.height, self.round)]

    def _send_proposal(self, block: bytes, justification: tuple[Signed, ...], now: float) -> list[Action]:
        proposal = Message(Kind.PROPOSAL, self.height, self.round, digest=self.digest_of(block), block=block,
                           justification=justification)
        return self._vote(proposal, now) + self._recount(now)

    # -- messages ---------------------------------------------------------------------
    def _on_proposal(self, signed: Signed, now: float) -> list[Action]:
        m = signed.message
        if m.round < self.round or signed.sender != self.committee.proposer(self.height, m.round):
            return []
        state = self._state(m.round)
        if state.proposal is not None:
            if state.proposal.message.digest != m.digest:
                return self._evidence(state.proposal, signed)
            return []
        if not self._justified(signed):
            return []
        state.proposal = signed
        actions = self._enter(m.round, now) if m.round > self.round or not self.started else []
        if self.me is not None:
            actions += self._vote(Message(Kind.PREPARE, self.height, m.round, digest=m.digest), now)
        return actions + self._recount(now) + self._decide_if_quorum(m.round)

    def _justified(self, signed: Signed) -> bool:
        """A proposal's block is valid here, and above round 0 its round changes allow it."""
        m = signed.message
        if self.digest_of(m.block) != m.digest or not self.check_block(m.block):
            return False
        if m.round == 0:
            return True
        try:
            best = highest_prepared(m.justification, self.committee, self.height, m.round, self.digest_of)
        except JustificationError:
            return False
        return best is None or best.digest == m.digest

    def _on_round_change(self, signed: Signed, now: float) -> list[Action]:
        m = signed.message
        if m.round == 0 or m.round < self.round:
            return []
        if m.prepared is not None:
            try:
                if m.prepared.round >= m.round:
                    return []
                check_prepared(m.prepared, self.committee, self.height, self.digest_of)
            except JustificationError:
                return []
        self.round_changes.setdefault(m.round, {}).setdefault(signed.sender, signed)
        later = [r for r, changes in self.round_changes.items()
                 if r > self.round and len(changes) >= self.committee.weak_quorum]
        if later:  # f + 1 want a later round: at least one honest validator is there
            return self._round_change_to(min(later), now)
        return self._maybe_propose(now) if self.started and m.round == self.round else []

    def _on_vote(self, signed: Signed, now: float) -> list[Action]:
        """A PREPARE or COMMIT, of any round this node keeps: a COMMIT quorum decides
        even a round this node has left."""
        actions = self._count(signed)
        if signed.message.round == self.round:
            actions += self._recount(now)
        if signed.message.kind == Kind.COMMIT:
            actions += self._decide_if_quorum(signed.message.round)
        return actions

    def _count(self, signed: Signed) -> list[Action]:
        first = self._state(signed.message.round).add_vote(signed)
        if first is not None and signed.message.kind == Kind.COMMIT:
            return self._evidence(first, signed)
        return []

    def _recount(self, now: float) -> list[Action]:
        """At a quorum of PREPAREs for the current round's proposal: prepared, so keep the
        certificate and commit."""
        state = self._state(self.round)
        if state.proposal is None or state.prepared:
            return []
        prepares = state.prepares_for_proposal()
        if len(prepares) < self.committee.quorum:
            return []
        state.prepared = True
        digest = state.digest
        self.prepared = Prepared(self.round, digest, state.proposal.message.block, prepares)
        if self.me is None:
            return []
        seal = sign(self.key, commit_digest(digest, self.round))
        commit = self._vote(Message(Kind.COMMIT, self.height, self.round, digest=digest, seal=seal), now)
        return commit + self._decide_if_quorum(self.round)

    def _decide_if_quorum(self, round_: int) -> list[Action]:
        """Decided at a quorum of COMMITs for the proposal of `round_`."""
        state = self.rounds.get(round_)
        if self.decided is not None or state is None or state.proposal is None:
            return []
        commits = state.commits_for_proposal()
        if len(commits) < self.committee.quorum:
            return []
        order = {v: i for i, v in enumerate(self.committee.validators)}
        seals = tuple(c.message.seal for c in sorted(commits, key=lambda c: order[c.sender]))
        self.decided = Decided(self.height, round_, state.proposal.message.block, state.digest, seals)
        return [self.decided]

    # -- sending ----------------------------------------------------------------------
    def _vote(self, message: Message, now: float) -> list[Action]:
        """Sign, persist, broadcast and count this node's own message, at most one of a
        kind per round (a second, different one is never signed)."""
        if self.me is None:
            return []
        key = (message.kind, message.round)
        if key in self.sent and self.sent[key] != message.digest:
            return []
        self.sent[key] = message.digest
        signed = self.own[key] = Signed.make(self.key, message)
        self.resend_at = now + self.timeouts.request_timeout
        actions: list[Action] = [Persist(signed, self.prepared), Broadcast(signed)]
        if message.kind == Kind.PROPOSAL:
            self._state(message.round).proposal = signed
            actions += self._vote(Message(Kind.PREPARE, self.height, message.round, digest=message.digest), now)
        elif message.kind == Kind.ROUND_CHANGE:
            self.round_changes.setdefault(message.round, {})[self.me] = signed
        else:
            self._count(signed)
        return actions

    def _resend(self, now: float) -> list[Action]:
        """This node's votes of the current round once more (already written ahead)."""
        self.resend_at = now + self.timeouts.request_timeout
        return [Broadcast(signed) for (_, round_), signed in self.own.items() if round_ == self.round]

    def _evidence(self, first: Signed, second: Signed) -> list[Action]:
        record = Evidence(first, second)
        if len(self.evidence) >= MAX_EVIDENCE or record in self.evidence:
            return []
        self.evidence.append(record)
        return [record]

    def _state(self, round_: int) -> RoundState:
        return self.rounds.setdefault(round_, RoundState(round_))
