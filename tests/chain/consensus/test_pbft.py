"""QBFT's state machine, driven without sockets: machines for four (or seven) validators
exchange messages through a simulated network that delays, drops, and lets a
validator crash or equivocate. Whatever the schedule, no two validators decide
different blocks, no validator signs two different votes of one kind in a round, and
the decided block carries a quorum of commit seals."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.consensus.pbft.certificates import commit_signers
from chain.consensus.pbft.committee import Committee, quorum, tolerated
from chain.consensus.pbft.machine import (
    MAX_ROUNDS_AHEAD,
    Broadcast,
    BuildBlock,
    Decided,
    Evidence,
    HeightMachine,
    Persist,
    Timeouts,
)
from chain.consensus.pbft.messages import MAX_ROUND, Kind, Message, MessageError, Prepared, Signed
from chain.core.hashing import keccak256
from chain.core.keys import PrivateKey

KEYS = [PrivateKey.from_hex(f"{0x70 + i:064x}") for i in range(10)]
TIMEOUTS = Timeouts(block_period=0.1, request_timeout=1.0)
HEIGHT = 5


def committee(n: int) -> Committee:
    return Committee(tuple(k.address for k in KEYS[:n]))


def block_by(index: int, round_: int) -> bytes:
    return f"block of height {HEIGHT} by validator {index} in round {round_}".encode()


@dataclass
class Network:
    """n machines and the messages between them, in simulated time."""

    n: int
    seed: int = 0
    crashed: set[int] = field(default_factory=set)
    drop: float = 0.0  # chance a message is lost, until `faults_until`
    faults_until: float = 0.0
    max_delay: float = 0.05
    equivocator: int | None = None  # this validator's proposals differ by recipient
    lose: object = None  # lose(signed) -> True to drop that message always

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        self.committee = committee(self.n)
        self.machines = [HeightMachine(KEYS[i], self.committee, HEIGHT, 0.0, TIMEOUTS, keccak256, lambda b: True)
                         for i in range(self.n)]
        self.events: list = []
        self.seq = 0
        self.sent: list[Signed] = []
        self.decided: dict[int, Decided] = {}
        self.evidence: list[Evidence] = []
        self.persisted: list[Signed] = []

    def send(self, now: float, sender: int, signed: Signed) -> None:
        self.sent.append(signed)
        for to in range(self.n):
            if to == sender or to in self.crashed:
                continue
            message = signed
            if sender == self.equivocator and signed.message.kind == Kind.PROPOSAL and to % 2:
                other = block_by(sender, signed.message.round) + b" (the other one)"
                message = Signed.make(KEYS[sender], Message(Kind.PROPOSAL, HEIGHT, signed.message.round,
                                                            digest=keccak256(other), block=other,
                                                            justification=signed.message.justification))
                if to == min(i for i in range(1, self.n, 2) if i != sender):  # one validator sees both
                    self._queue(now, to, signed)
            if self.lose is not None and self.lose(message):
                continue
            if now < self.faults_until and self.rng.random() < self.drop:
                continue
            self._queue(now, to, message)

    def _queue(self, now, to, signed):
        self.seq += 1
        heapq.heappush(self.events, (now + self.rng.uniform(0, self.max_delay), self.seq, to, signed))

    def act(self, now: float, index: int, actions: list) -> None:
        for action in actions:
            if isinstance(action, Persist):
                self.persisted.append(action.vote)
            elif isinstance(action, Broadcast):
                assert any(vote is action.signed for vote in self.persisted)  # written ahead, then sent
                self.send(now, index, action.signed)
            elif isinstance(action, BuildBlock):
                self.act(now, index, self.machines[index].propose(block_by(index, action.round), now))
            elif isinstance(action, Decided):
                self.decided[index] = action
            elif isinstance(action, Evidence):
                self.evidence.append(action)

    def run(self, until: float, tick: float = 0.05) -> None:
        now = 0.0
        while now < until and len(self.decided) < self.n - len(self.crashed):
            while self.events and self.events[0][0] <= now:
                _, _, to, signed = heapq.heappop(self.events)
                if to not in self.crashed:
                    self.act(now, to, self.machines[to].handle(signed, now))
            for i, machine in enumerate(self.machines):
                if i not in self.crashed:
                    self.act(now, i, machine.tick(now))
            now += tick

    def check_safety(self) -> None:
        """One decided block among the honest, sealed by a quorum; one vote of a kind per
        round from every honest validator."""
        honest = {i: d for i, d in self.decided.items() if i != self.equivocator}
        assert len({(d.digest, d.block) for d in honest.values()}) <= 1, honest
        for d in honest.values():
            assert keccak256(d.block) == d.digest
            assert len(commit_signers(list(d.seals), self.committee, d.digest, d.round)) >= self.committee.quorum
        votes: dict[tuple, set[bytes]] = {}
        for signed in self.sent:
            m = signed.message
            if m.kind != Kind.ROUND_CHANGE:  # (the equivocator's second proposals are the network's forgeries)
                votes.setdefault((signed.sender, m.kind, m.round), set()).add(m.digest)
        assert all(len(digests) == 1 for digests in votes.values()), votes


def test_the_quorum_is_two_thirds_rounded_up_and_tolerates_a_third_less_one():
    assert [quorum(n) for n in range(1, 11)] == [1, 2, 2, 3, 4, 4, 5, 6, 6, 7]
    assert [tolerated(n) for n in (1, 3, 4, 6, 7, 10)] == [0, 0, 1, 1, 2, 3]
    assert committee(4).proposer(HEIGHT, 0) != committee(4).proposer(HEIGHT, 1)


def test_a_signed_message_round_trips_and_its_sender_is_who_signed_it():
    prepare = Signed.make(KEYS[0], Message(Kind.PREPARE, 3, 1, digest=b"\x11" * 32))
    change = Signed.make(KEYS[1], Message(Kind.ROUND_CHANGE, 3, 2, prepared=Prepared(1, b"\x11" * 32, b"block",
                                                                                      (prepare,))))
    for signed in (prepare, change):
        decoded = Signed.decode(signed.encode())
        assert decoded.message == signed.message and decoded.sender == signed.sender
    assert Signed.decode(change.encode()).message.prepared.prepares[0].sender == KEYS[0].address


@pytest.mark.parametrize("data, reason", [
    (b"\xff\x00", "bad RLP"),
    (bytes.fromhex("c0"), "a signed message is"),
    (Signed.make(KEYS[0], Message(Kind.PREPARE, 1, MAX_ROUND + 1, digest=b"\x01" * 32)).encode(), "above the cap"),
    (Signed(Message(Kind.PREPARE, 1, 0, digest=b"\x01" * 32), b"\x00" * 65).encode(), "invalid signature"),
])
def test_a_malformed_or_unsigned_message_is_refused_with_its_reason(data, reason):
    with pytest.raises(MessageError, match=reason):
        Signed.decode(data)


def test_four_validators_decide_one_block_in_round_zero_sealed_by_a_quorum():
    net = Network(4)
    net.run(until=3)
    assert len(net.decided) == 4 and {d.round for d in net.decided.values()} == {0}
    proposer = KEYS.index(next(k for k in KEYS if k.address == net.committee.proposer(HEIGHT, 0)))
    assert {d.block for d in net.decided.values()} == {block_by(proposer, 0)}
    net.check_safety()


def test_when_the_proposer_is_down_the_others_change_round_and_decide_another_proposers_block():
    down = KEYS.index(next(k for k in KEYS if k.address == committee(4).proposer(HEIGHT, 0)))
    net = Network(4, crashed={down})
    net.run(until=10)
    assert len(net.decided) == 3 and {d.round for d in net.decided.values()} == {1}
    net.check_safety()


def test_a_validator_that_has_not_decided_sends_its_votes_of_the_round_again_every_request_timeout():
    proposer = next(k for k in KEYS if k.address == committee(4).proposer(HEIGHT, 0))
    machine = HeightMachine(proposer, committee(4), HEIGHT, 0.0, TIMEOUTS, keccak256, lambda b: True)
    [build] = machine.tick(0.1)  # round 0 begins; the others never answer
    machine.propose(block_by(0, build.round), 0.1)
    machine.deadline = 100.0  # (a long round 0, to watch the copies)
    assert [s.message.kind for s in machine.own.values()] == [Kind.PROPOSAL, Kind.PREPARE]
    copies = [a.signed for t in (0.5, 1.2, 1.5, 2.3) for a in machine.tick(t) if isinstance(a, Broadcast)]
    assert copies == list(machine.own.values()) * 2  # the very votes written ahead, at 1.2 s and 2.3 s


def test_with_a_fifth_of_all_messages_lost_for_good_every_height_still_decides_within_seconds():
    """Without the copies a lost vote waits for a round change, whose timer doubles: a
    minute or more for some of these schedules."""
    for seed in range(40):
        net = Network(4, seed=seed, drop=0.2, faults_until=float("inf"))
        net.run(until=10)
        assert net.decided, f"seed {seed}: nothing decided in 10 s"
        net.check_safety()


def test_with_two_of_four_down_nothing_is_decided():
    net = Network(4, crashed={0, 1})
    net.run(until=20)
    assert net.decided == {}


def test_a_block_prepared_by_a_quorum_is_the_one_re_proposed_in_the_next_round():
    # Every COMMIT of round 0 is lost: all four are prepared on the round-0 block, none decides.
    net = Network(4, lose=lambda s: s.message.kind == Kind.COMMIT and s.message.round == 0)
    net.run(until=10)
    first = KEYS.index(next(k for k in KEYS if k.address == net.committee.proposer(HEIGHT, 0)))
    assert {d.round for d in net.decided.values()} == {1}
    assert {d.block for d in net.decided.values()} == {block_by(first, 0)}  # not round 1's proposer's own
    net.check_safety()


def test_a_later_proposal_that_ignores_a_prepared_certificate_is_refused():
    net = Network(4, lose=lambda s: s.message.kind == Kind.COMMIT and s.message.round == 0)
    net.run(until=1.05)  # prepared everywhere, no round change yet
    changes = tuple(Signed.make(KEYS[i], Message(Kind.ROUND_CHANGE, HEIGHT, 1, prepared=net.machines[i].prepared))
                    for i in range(4))
    proposer = KEYS.index(next(k for k in KEYS if k.address == net.committee.proposer(HEIGHT, 1)))
    other = b"a block nobody prepared"
    forged = Signed.make(KEYS[proposer], Message(Kind.PROPOSAL, HEIGHT, 1, digest=keccak256(other), block=other,
                                                 justification=changes))
    fresh = HeightMachine(KEYS[3], net.committee, HEIGHT, 0.0, TIMEOUTS, keccak256, lambda b: True)
    assert fresh.handle(forged, 2.0) == []
    honest = Signed.make(KEYS[proposer], Message(Kind.PROPOSAL, HEIGHT, 1, digest=net.machines[0].prepared.digest,
                                                 block=net.machines[0].prepared.block, justification=changes))
    assert any(isinstance(a, Broadcast) and a.signed.message.kind == Kind.PREPARE for a in fresh.handle(honest, 2.0))


def test_an_equivocating_proposer_forks_nothing_and_is_caught():
    proposer = KEYS.index(next(k for k in KEYS if k.address == committee(4).proposer(HEIGHT, 0)))
    net = Network(4, equivocator=proposer)
    net.run(until=15)
    net.check_safety()
    assert net.decided  # the others change round and go on
    assert any(e.first.message.kind == Kind.PROPOSAL and e.first.sender == KEYS[proposer].address
               for e in net.evidence)


def test_duplicate_votes_count_once_and_far_future_rounds_are_not_kept():
    machine = HeightMachine(KEYS[0], committee(4), HEIGHT, 0.0, TIMEOUTS, keccak256, lambda b: True)
    prepare = Signed.make(KEYS[1], Message(Kind.PREPARE, HEIGHT, 0, digest=b"\x01" * 32))
    for _ in range(5):
        machine.handle(prepare, 0.2)
    assert len(machine.rounds[0].prepares) == 1
    for round_ in range(1, MAX_ROUND + 1):
        machine.handle(Signed.make(KEYS[2], Message(Kind.ROUND_CHANGE, HEIGHT, round_)), 0.2)
    assert max(machine.round_changes) <= machine.round + MAX_ROUNDS_AHEAD
    assert machine.handle(Signed.make(KEYS[9], Message(Kind.PREPARE, HEIGHT, 0, digest=b"\x02" * 32)), 0.2) == []
    assert KEYS[9].address not in machine.rounds[0].prepares  # not a validator


def test_round_timers_double_and_stop_growing():
    assert [TIMEOUTS.round_timer(r) for r in (0, 1, 2, 6, 7, 40)] == [1, 2, 4, 64, 64, 64]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([4, 7]), crash=st.booleans(),
       drop=st.sampled_from([0.0, 0.2, 0.5]), max_delay=st.sampled_from([0.01, 0.3, 1.5]))
def test_under_any_schedule_no_two_validators_decide_different_blocks(seed, n, crash, drop, max_delay):
    rng = random.Random(seed)
    crashed = set(rng.sample(range(n), tolerated(n))) if crash else set()
    net = Network(n, seed=seed, crashed=crashed, drop=drop, faults_until=6.0, max_delay=max_delay)
    net.run(until=40)
    net.check_safety()
    assert net.decided, "once the faults stop, the honest quorum decides"
