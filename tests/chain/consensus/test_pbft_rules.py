"""Importing a PBFT block: it must carry commit seals of a quorum of distinct validators
over its hash and round; and a validator's vote log brings back, after a restart, what
it signed, so that it signs nothing contrary to it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chain.consensus.pbft.committee import Committee
from chain.consensus.pbft.machine import Broadcast, HeightMachine, Timeouts
from chain.consensus.pbft.messages import Kind, Message, Prepared, Signed, commit_digest, sign
from chain.consensus.pbft.rules import PbftRules
from chain.consensus.pbft.seal import encode_seal
from chain.consensus.pbft.wal import VoteLog
from chain.core.blocks import Header, InvalidBlock, validator_set_hash
from chain.core.hashing import keccak256
from chain.core.keys import PrivateKey

KEYS = [PrivateKey.from_hex(f"{0x40 + i:064x}") for i in range(5)]
COMMITTEE = Committee(tuple(k.address for k in KEYS[:4]))
RULES = PbftRules(lambda height: COMMITTEE)
PARENT = Header(shard_id=0, number=0, parent_hash=bytes(32), timestamp=0, proposer=bytes(20), state_root=bytes(32),
                transactions_root=bytes(32), receipts_root=bytes(32), outgoing_receipts_root=bytes(32),
                deliveries_root=bytes(32),
                validator_set_hash=validator_set_hash(list(COMMITTEE.validators)), gas_limit=30_000_000, gas_used=0)
BLOCK = replace(PARENT, number=1, parent_hash=PARENT.hash, proposer=KEYS[1].address, timestamp=1)


def sealed(signers, round_: int = 2, header: Header = BLOCK, seal_round: int | None = None) -> Header:
    seals = tuple(sign(KEYS[i], commit_digest(header.hash, round_)) for i in signers)
    return header.with_seal(encode_seal(round_ if seal_round is None else seal_round, seals))


def test_a_block_sealed_by_a_quorum_of_validators_passes():
    RULES.verify_header(sealed([0, 2, 3]), PARENT)
    RULES.verify_header(sealed([0, 1, 2, 3]), PARENT)


@pytest.mark.parametrize("header, reason", [
    (sealed([0, 2]), "commit seals of 2 validators"),
    (sealed([0, 2, 2]), "commit seals of 2 validators"),  # a seal twice counts once
    (sealed([0, 2, 4]), "not a validator"),
    (sealed([0, 2, 3], seal_round=1), "not a validator"),  # seals of another round recover to strangers
    (BLOCK.with_seal(b"\x01\x02"), "RLP \\[round"),
    (sealed([0, 1, 2], header=replace(BLOCK, proposer=KEYS[4].address)), "not a validator"),
])
def test_a_block_without_a_quorum_of_valid_seals_is_refused(header, reason):
    with pytest.raises(InvalidBlock, match=reason):
        RULES.verify_header(header, PARENT)


def test_after_a_restart_a_validator_signs_nothing_contrary_to_its_vote_log():
    timeouts = Timeouts(block_period=0.1, request_timeout=1.0)
    height = 7
    proposer = KEYS.index(next(k for k in KEYS if k.address == COMMITTEE.proposer(height, 0)))
    voter = next(i for i in range(4) if i != proposer)
    first, second = b"one block", b"another block"
    proposals = [Signed.make(KEYS[proposer], Message(Kind.PROPOSAL, height, 0, digest=keccak256(b), block=b))
                 for b in (first, second)]
    machine = HeightMachine(KEYS[voter], COMMITTEE, height, 0.0, timeouts, keccak256, lambda b: True)
    machine.tick(0.2)
    assert any(isinstance(a, Broadcast) and a.signed.message.kind == Kind.PREPARE for a in
               machine.handle(proposals[0], 0.2))
    prepared = Prepared(0, keccak256(first), first, ())
    log = VoteLog.decode(VoteLog(height, machine.sent, prepared).encode())
    assert log.sent == {(Kind.PREPARE, 0): keccak256(first)} and log.prepared == prepared

    restarted = HeightMachine(KEYS[voter], COMMITTEE, height, 5.0, timeouts, keccak256, lambda b: True)
    restarted.restore(log.sent, log.prepared, 5.0)
    restarted.tick(5.2)
    actions = restarted.handle(proposals[1], 5.2)  # the proposer equivocates after the restart
    assert not any(isinstance(a, Broadcast) and a.signed.message.kind == Kind.PREPARE for a in actions)
    assert restarted.prepared == prepared
