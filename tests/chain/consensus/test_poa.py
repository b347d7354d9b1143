"""Aura-style PoA: whose step it is, when a block is final, which fork wins, and what
counts as evidence."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.consensus.poa.engine import PoaEngine
from chain.consensus.poa.finality import newest_final
from chain.consensus.poa.rules import PoaRules
from chain.consensus.poa.seal import sign_header
from chain.consensus.poa.steps import encode_step, header_step, proposer_of, step_timestamp
from chain.core.blocks import Header, InvalidBlock, validator_set_hash
from chain.core.keys import PrivateKey

KEYS = [PrivateKey.from_hex(f"{0x70 + i:064x}") for i in range(4)]
VALIDATORS = tuple(k.address for k in KEYS)
DURATION = 2.0
GENESIS = Header(shard_id=0, number=0, parent_hash=bytes(32), timestamp=0, proposer=bytes(20), state_root=bytes(32),
                 transactions_root=bytes(32), receipts_root=bytes(32), outgoing_receipts_root=bytes(32),
                 deliveries_root=bytes(32),
                 validator_set_hash=validator_set_hash(list(VALIDATORS)), gas_limit=10**7, gas_used=0)


def sealed(parent: Header, step: int, key: PrivateKey | None = None, **fields) -> Header:
    key = key or KEYS[step % len(KEYS)]
    header = replace(GENESIS, number=parent.number + 1, parent_hash=parent.hash, proposer=key.address,
                     timestamp=step_timestamp(step, DURATION), extra_data=encode_step(step), **fields)
    return header.with_seal(sign_header(key, header))


RULES = PoaRules(lambda height: VALIDATORS, DURATION, clock=lambda: 100 * DURATION)  # the node's clock is at step 100


def test_each_step_belongs_to_the_next_validator_in_turn():
    assert [proposer_of(s, VALIDATORS) for s in range(6)] == [*VALIDATORS, *VALIDATORS[:2]]
    parent = GENESIS
    for step in (3, 4, 9, 101):  # steps may be skipped (an offline validator), never repeated
        header = sealed(parent, step)
        RULES.verify_header(header, parent)
        parent = header
    assert header_step(parent) == 101


@pytest.mark.parametrize("make, reason", [
    (lambda p: sealed(p, 5, key=KEYS[0]), "step 5 belongs to validator"),
    (lambda p: sealed(sealed(p, 5), 5), "not after its parent's step"),
    (lambda p: sealed(p, 102), "more than one step ahead"),
    (lambda p: replace(sealed(p, 5), timestamp=11).with_seal(sign_header(KEYS[1], replace(sealed(p, 5), timestamp=11))),
     "not the start of step 5"),
    (lambda p: replace(sealed(p, 5), extra_data=b"\x05"), "carries its step"),
    (lambda p: sealed(p, 5).with_seal(sign_header(KEYS[2], sealed(p, 5))), "not by its proposer"),
    (lambda p: (lambda h: h.with_seal(sign_header(KEYS[1], h)))(replace(sealed(p, 5), validator_set_hash=bytes(32))),
     "validator-set hash"),
])
def test_headers_that_break_the_step_rules_are_refused(make, reason):
    header = make(GENESIS)
    parent = GENESIS if header.number == 1 else None
    if parent is None:  # the "same step twice" case builds its own parent
        parent = sealed(GENESIS, 5)
    with pytest.raises(InvalidBlock, match=reason):
        RULES.verify_header(header, parent)


def reference_final(sealers: list[bytes], finalized: int, n: int) -> int:
    """By the definition: the newest block b such that blocks b..head have more than n/2
    distinct validator sealers."""
    head = len(sealers)
    for b in range(head, finalized, -1):
        if 2 * len(set(sealers[b - 1:])) > n:
            return b
    return finalized


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=30), st.data())
def test_finality_is_the_newest_block_that_more_than_half_of_the_validators_built_on(sealed_by, data):
    sealers = [VALIDATORS[i] for i in sealed_by]
    finalized = data.draw(st.integers(0, len(sealers)))
    got = newest_final(len(sealers), finalized, lambda n: sealers[n - 1], VALIDATORS)
    assert got == reference_final(sealers, finalized, len(VALIDATORS))


def test_three_of_four_distinct_sealers_finalize_the_oldest_of_their_blocks():
    sealers = [VALIDATORS[0], VALIDATORS[1], VALIDATORS[0], VALIDATORS[2]]
    assert newest_final(4, 0, lambda n: sealers[n - 1], VALIDATORS) == 2  # blocks 2..4: three distinct
    assert newest_final(3, 0, lambda n: sealers[n - 1], VALIDATORS) == 0  # blocks 1..3: two distinct


class Producer:
    def __init__(self):
        self.head_header = GENESIS

    def head(self):
        return self.head_header


def engine() -> PoaEngine:
    return PoaEngine(Producer(), lambda height: VALIDATORS, None, DURATION, clock=lambda: 100 * DURATION)


def test_the_fork_with_more_blocks_wins_and_between_equals_the_lower_step():
    e = engine()
    one = sealed(GENESIS, 1)
    assert e.prefers(sealed(sealed(GENESIS, 2), 3), one)  # longer
    assert not e.prefers(sealed(GENESIS, 2), one)  # as long, a later step
    assert e.prefers(one, sealed(GENESIS, 2))


def test_two_blocks_by_one_validator_in_one_step_are_evidence_and_the_first_is_kept():
    e = engine()
    first, second = sealed(GENESIS, 6), sealed(GENESIS, 6, gas_used=1)
    assert e.witness(first) and e.witness(first)
    assert not e.witness(second)
    assert e.evidence == [{"validator": "0x" + KEYS[2].address.hex(), "step": 6, "first": "0x" + first.hash.hex(),
                           "second": "0x" + second.hash.hex()}]
    assert e.witness(first)  # the first stays the one


def test_a_header_its_proposer_did_not_seal_is_no_evidence_against_it():
    e = engine()
    first = sealed(GENESIS, 6)
    framed = sealed(GENESIS, 6, gas_used=1)
    framed = framed.with_seal(sealed(GENESIS, 7).seal)  # a signature of another header
    assert e.witness(first) and e.witness(framed)
    assert e.evidence == []
