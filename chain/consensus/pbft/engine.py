"""The PBFT engine: QBFT's height machine (machine.py) run on the node.

A thread owns the machine of the height after the head. It feeds it the consensus
messages peers send and the clock, and carries out its actions in order: a vote is
written to the write-ahead log (wal.py) before it is broadcast, a BuildBlock is answered
with a block built from the pool (not committed), and a decision is imported like any
block, with its commit seals, and announced. A block of this height that arrives from
a peer with a quorum of seals (sync, or an announcement) moves the head just the same,
and the engine starts on the next height. A committed block is final at once.

Messages for the next height (peers that decided first) wait in a small buffer, a
bounded number per sender; anything further ahead or behind is dropped: sync brings
such a node up to date.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Callable, Protocol

from chain.consensus.engine import BlockProducer, ConsensusEngine, ConsensusError, ValidatorsAt
from chain.consensus.pbft.committee import Committee
from chain.consensus.pbft.machine import Broadcast, BuildBlock, Decided, Evidence, HeightMachine, Persist, Timeouts
from chain.consensus.pbft.messages import Kind, MessageError, Signed, commit_digest, sign
from chain.consensus.pbft.rules import PbftRules, ProposalRules
from chain.consensus.pbft.seal import encode_seal
from chain.consensus.pbft.wal import WAL_KEY, VoteLog
from chain.core.blocks import Block, Header, InvalidBlock
from chain.core.hashing import keccak256
from chain.core.keys import PrivateKey

log = logging.getLogger("ewasm.consensus")

TICK = 0.02  # seconds between looks at the clock
MAX_INBOX = 10_000  # consensus messages waiting for the engine
MAX_BUFFERED_PER_SENDER = 64  # next-height messages kept per validator
MAX_EVIDENCE = 256
MAX_KEPT_OWN = 32  # own messages of the current height kept for peers that connect
CRASH_DELAY = 0.05  # test mode: seconds between sending the vote and the SIGKILL, for the frame to leave


class PbftProducer(BlockProducer, Protocol):
    """What the PBFT engine needs of its node beyond any engine's."""

    def build_proposal(self, engine: ConsensusEngine, timestamp: int) -> Block:
        """A block from the pool on the head, executed but not committed."""

    def check_proposal(self, block: Block, rules: ProposalRules) -> str | None:
        """Why `block` cannot be the next block (None when it can)."""

    def import_block(self, block: Block, *, held: bool = False) -> object:
        """Import a committed block (InvalidBlock if it breaks a rule); `held`: as the
        node executed it when it proposed or checked it, if it still holds that."""

    def announce(self, block: Block) -> None:
        """Tell the peers of a block this node committed."""

    def broadcast_consensus(self, payload: bytes) -> int:
        """Send a consensus message to every peer; returns how many."""

    def save_consensus(self, key: bytes, value: bytes) -> None:
        """Keep a record durably before the engine acts on it."""

    def load_consensus(self, key: bytes) -> bytes | None:
        """A record kept by `save_consensus`."""


class PbftEngine(ConsensusEngine):
    name = "pbft"

    def __init__(self, producer: PbftProducer, validators_at: ValidatorsAt, key: PrivateKey | None,
                 timeouts: Timeouts, *, clock: Callable[[], float] = time.time, equivocate: bool = False,
                 crash_after: Kind | None = None):
        """`key` votes at the heights where its address is a validator; None on a node
        that only follows."""
        super().__init__(producer)
        self.producer: PbftProducer = producer
        self.validators_at = validators_at
        self._committees: OrderedDict[tuple[bytes, ...], Committee] = OrderedDict()
        self.key = key
        self.timeouts, self.clock = timeouts, clock
        self.equivocate = equivocate  # test-only: send a conflicting twin of each proposal and commit
        if equivocate:
            log.warning("TEST MODE: this validator equivocates (a conflicting twin of each proposal and commit)")
        self.crash_after = crash_after  # test-only: SIGKILL this process right after its first vote of this kind
        if crash_after is not None:
            log.warning("TEST MODE: this validator kills itself right after it sends a %s", crash_after.name)
        self.rules = PbftRules(self.committee_at)
        self.proposal_rules = ProposalRules(self.committee_at)
        self.evidence: list[dict] = []
        self._inbox: queue.Queue[Signed] = queue.Queue(MAX_INBOX)
        self._machine: HeightMachine | None = None
        self._next: OrderedDict[bytes, list[Signed]] = OrderedDict()  # sender -> next-height messages
        self._digests: OrderedDict[bytes, bytes] = OrderedDict()  # block bytes -> digest (a small cache)
        self._mine: list[bytes] = []  # this node's messages at the current height, for peers that connect
        self.messages_sent = 0  # consensus messages broadcast (each to every peer), since start

    def committee_at(self, height: int) -> Committee:
        """The validators of `height` as a committee (the few recent ones cached)."""
        validators = tuple(self.validators_at(height))
        committee = self._committees.get(validators)
        if committee is None:
            committee = self._committees[validators] = Committee(validators)
            if len(self._committees) > 4:
                self._committees.popitem(last=False)
        return committee

    def validators(self) -> list[bytes]:
        """The validators of the next block."""
        return list(self.validators_at(self.producer.head().number + 1))

    def seal(self, header: Header) -> bytes:
        raise ConsensusError("a PBFT block is sealed by a quorum's commit seals, not by one node")

    # -- from the network -----------------------------------------------------------
    def on_message(self, peer: bytes, payload: bytes) -> str | None:
        """A consensus message from a peer; returns why it is refused (the peer sent
        something malformed), or None."""
        try:
            signed = Signed.decode(payload)
        except MessageError as err:
            return f"a malformed consensus message: {err}"
        try:
            self._inbox.put_nowait(signed)
        except queue.Full:
            log.warning("consensus inbox full: a message from 0x%s dropped", peer.hex())
        self._wake.set()
        return None

    def on_peer(self, peer: bytes) -> list[bytes]:
        """A peer connected: what it may have missed of this node's votes at the current
        height (a node that starts or heals late would otherwise wait for round changes)."""
        return list(self._mine)

    # -- the loop -------------------------------------------------------------------
    def step(self) -> None:
        try:
            signed = self._inbox.get(timeout=TICK)
        except queue.Empty:
            signed = None
        now = self.clock()
        machine = self._current(now)
        if signed is not None:
            self._deliver(machine, signed, now)
        round_ = machine.round
        self._run(machine, machine.tick(now), now)
        if machine.round != round_:
            self._summarize(machine, round_)

    def _current(self, now: float) -> HeightMachine:
        """The machine of the height after the head (a new one when the head moved)."""
        height = self.producer.head().number + 1
        if self._machine is None or self._machine.height != height:
            committee = self.committee_at(height)
            key = self.key if self.key is not None and self.key.address in committee else None
            if (self._machine is None or self._machine.key is None) != (key is None):
                log.info("height %d: %s", height, "voting as a validator" if key else "following (not a validator)")
            self._machine = HeightMachine(key, committee, height, now, self.timeouts, self._digest_of,
                                          self._check_block)
            self._restore(self._machine, now)
            for signed in [m for messages in self._next.values() for m in messages if m.message.height == height]:
                self._run(self._machine, self._machine.handle(signed, now), now)
            self._next.clear()
            self._mine = []
        return self._machine

    def _restore(self, machine: HeightMachine, now: float) -> None:
        data = self.producer.load_consensus(WAL_KEY)
        if data is None or machine.key is None:
            return
        try:
            record = VoteLog.decode(data)
        except MessageError as err:
            log.error("the PBFT vote log is damaged (%s): starting the height without it", err)
            return
        if record.height == machine.height:
            machine.restore(record.sent, record.prepared, now)
            log.info("height %d: resumed from the vote log at round %d (%d votes signed)", machine.height,
                     machine.round, len(record.sent))

    def _deliver(self, machine: HeightMachine, signed: Signed, now: float) -> None:
        height = signed.message.height
        if height == machine.height:
            self._run(machine, machine.handle(signed, now), now)
        elif height == machine.height + 1:
            kept = self._next.setdefault(signed.sender, [])
            if len(kept) < MAX_BUFFERED_PER_SENDER:
                kept.append(signed)

    def _run(self, machine: HeightMachine, actions: list, now: float) -> None:
        for action in actions:
            if isinstance(action, Persist):
                self.producer.save_consensus(WAL_KEY, VoteLog(machine.height, machine.sent, machine.prepared).encode())
            elif isinstance(action, Broadcast):
                payload = action.signed.encode()
                if payload not in self._mine:  # (a vote sent again is kept once)
                    self._mine = [*self._mine, payload][-MAX_KEPT_OWN:]
                self.messages_sent += self.producer.broadcast_consensus(payload)
                if self.equivocate:
                    self._send_twin(action.signed)
                if action.signed.message.kind == self.crash_after:
                    self._crash(action.signed)
            elif isinstance(action, BuildBlock):
                block = self.producer.build_proposal(self, max(int(now), self.producer.head().timestamp))
                self._run(machine, machine.propose(block.encode(), now), now)
            elif isinstance(action, Decided):
                self._commit(action)
            elif isinstance(action, Evidence):
                self._record(action)

    def _crash(self, signed: Signed) -> None:
        """Test mode: a crash at the worst moment for safety, the vote logged and sent."""
        m = signed.message
        log.warning("TEST MODE: SIGKILL right after sending a %s for height %d round %d", m.kind.name, m.height,
                    m.round)
        self.crash_after = None
        threading.Timer(CRASH_DELAY, os.kill, (os.getpid(), signal.SIGKILL)).start()
        time.sleep(4 * CRASH_DELAY)  # nothing more leaves this engine: the kill comes first

    def _send_twin(self, signed: Signed) -> None:
        """Test mode: after a PROPOSAL or COMMIT, a second one for another block, signed
        the same, as a Byzantine validator would (the others must not fork, and record it)."""
        m = signed.message
        if m.kind == Kind.PROPOSAL:
            block = Block.decode(m.block)
            other = replace(block, header=replace(block.header, timestamp=block.header.timestamp + 1)).encode()
            twin = replace(m, digest=Block.decode(other).hash, block=other)
        elif m.kind == Kind.COMMIT:
            digest = keccak256(m.digest)
            twin = replace(m, digest=digest, seal=sign(self.key, commit_digest(digest, m.round)))
        else:
            return
        self.messages_sent += self.producer.broadcast_consensus(Signed.make(self.key, twin).encode())

    def _commit(self, decided: Decided) -> None:
        block = Block.decode(decided.block)
        sealed = replace(block, header=block.header.with_seal(encode_seal(decided.round, decided.seals)))
        if self.producer.head().hash == sealed.hash:
            return  # a peer's announcement of it came first
        try:
            self.producer.import_block(sealed, held=True)
        except InvalidBlock as err:
            log.error("height %d: the decided block does not import: %s", decided.height, err)
            return
        log.info("height %d: committed in round %d with %d commit seals", decided.height, decided.round,
                 len(decided.seals))
        self.producer.announce(sealed)

    def _summarize(self, machine: HeightMachine, left: int) -> None:
        """One line on a round that ended without a decision, so that a stalled network
        explains itself: what this node saw of it, and where it went."""
        state = machine.rounds.get(left)
        committee = machine.committee
        quorum = committee.quorum
        seen = "no proposal" if state is None or state.proposal is None else (
            f"proposal 0x{state.digest.hex()[:12]}, {len(state.prepares_for_proposal())}/{quorum} prepares, "
            f"{len(state.commits_for_proposal())}/{quorum} commits")
        changes = len(machine.round_changes.get(machine.round, {}))
        log.warning("height %d round %d (proposer 0x%s) ended: %s; now round %d (proposer 0x%s, %d/%d round "
                    "changes, timer %.1f s)", machine.height, left,
                    committee.proposer(machine.height, left).hex()[:12], seen, machine.round,
                    committee.proposer(machine.height, machine.round).hex()[:12], changes, quorum,
                    machine.deadline - self.clock())

    def _record(self, evidence: Evidence) -> None:
        first, second = evidence.first, evidence.second
        record = {"validator": "0x" + first.sender.hex(), "height": first.message.height,
                  "round": first.message.round, "kind": first.message.kind.name,
                  "first": "0x" + first.encode().hex(), "second": "0x" + second.encode().hex()}
        log.warning("evidence: validator %s signed two %ss for height %d round %d", record["validator"],
                    record["kind"], record["height"], record["round"])
        self.evidence = [*self.evidence, record][-MAX_EVIDENCE:]

    # -- what the machine asks -------------------------------------------------------
    def _digest_of(self, data: bytes) -> bytes:
        digest = self._digests.get(data)
        if digest is None:
            try:
                digest = Block.decode(data).hash
            except InvalidBlock:
                digest = b""
            self._digests[data] = digest
            if len(self._digests) > 64:
                self._digests.popitem(last=False)
        return digest

    def _check_block(self, data: bytes) -> bool:
        try:
            block = Block.decode(data)
        except InvalidBlock as err:
            log.warning("a proposal that is not a block: %s", err)
            return False
        reason = self.producer.check_proposal(block, self.proposal_rules)
        if reason is not None:
            log.warning("height %d: refused a proposal: %s", block.number, reason)
            return False
        return True

    # -- reporting ------------------------------------------------------------------
    def on_head(self) -> None:
        """A committed block is final."""
        head = self.producer.head().number
        if head > self.producer.finalized():
            self.producer.finalize(head)

    def status(self) -> dict:
        machine = self._machine
        if machine is None:
            return {"height": self.producer.head().number + 1, "round": 0, "messagesSent": self.messages_sent,
                    "evidence": list(self.evidence)}
        return {"height": machine.height, "round": machine.round,
                "proposer": "0x" + machine.committee.proposer(machine.height, machine.round).hex(),
                "roundTimer": round(max(0.0, machine.deadline - self.clock()), 3), "started": machine.started,
                "messagesSent": self.messages_sent, "evidence": list(self.evidence)}
