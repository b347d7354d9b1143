"""The validator set of each height, from the chain alone: the contract's list at each
epoch boundary validates the next epoch, the record survives a restart, goes with a
reverted boundary block, and a genesis whose contract disagrees with the spec is refused."""

from __future__ import annotations

import pytest

from chain.core.keys import PrivateKey
from chain.core.spec import SpecError, parse_spec
from chain.core.system import VALIDATORS, propose_validator_call, validators_storage
from chain.ledger.blockchain import Blockchain
from chain.ledger.validator_sets import epoch_boundary, next_epoch_boundary
from chain.tx.codec import decode_transaction
from chain.tx.signing import sign_scoped_transaction
from contracts import load_system

AUTHORITY = PrivateKey.from_hex("a1" * 32)
NEWCOMER = b"\x0e" * 20
EPOCH = 3
CHAIN_ID = 1337


def spec(listed=(AUTHORITY.address,), epoch: int = EPOCH) -> dict:
    return {"name": "sets", "engine": {"poa": {"validators": ["0x" + AUTHORITY.address.hex()], "stepDuration": 1,
                                               "epochLength": epoch}},
            "params": {"chainId": CHAIN_ID},
            "accounts": {"0x" + AUTHORITY.address.hex(): {"balance": str(10**21)},
                         "0x" + VALIDATORS.hex(): {
                             "code": "0x" + load_system("validators.wasm").hex(), "nonce": 1,
                             "storage": {"0x" + k.hex(): "0x" + v.hex()
                                         for k, v in validators_storage(list(listed)).items()}}}}


def build(chain: Blockchain, txs=()) -> None:
    number = chain.head().number + 1
    chain.build_block(list(txs), AUTHORITY.address, validators=list(chain.validators_at(number)))


def vote_in(chain: Blockchain) -> None:
    with chain.snapshot() as snap:
        nonce = snap.get_nonce(AUTHORITY.address)
    raw = sign_scoped_transaction(AUTHORITY, chain_id=CHAIN_ID, nonce=nonce, gas_limit=1_000_000, to=VALIDATORS,
                                  data=propose_validator_call(NEWCOMER, True), scope=[AUTHORITY.address, VALIDATORS])
    build(chain, [decode_transaction(raw)])


def test_epochs_end_at_multiples_of_the_length():
    assert [epoch_boundary(h, 3) for h in range(1, 8)] == [0, 0, 0, 3, 3, 3, 6]
    assert [next_epoch_boundary(h, 3) for h in range(1, 8)] == [3, 3, 3, 6, 6, 6, 9]


def test_a_change_voted_in_an_epoch_validates_from_the_block_after_its_boundary(tmp_path):
    chain = Blockchain.initialize(str(tmp_path / "db"), parse_spec(spec()))
    try:
        chain.keep_undo = True
        vote_in(chain)  # block 1: one of one, so the contract's list changes at once
        build(chain)
        assert chain.validators_at(3) == (AUTHORITY.address,)  # the epoch it was voted in
        build(chain)  # block 3: the boundary
        assert chain.validators_at(4) == (AUTHORITY.address, NEWCOMER)
        assert chain.validators_at(3) == (AUTHORITY.address,)
        chain.revert_to(2)  # the boundary block goes, and the set it fixed with it
        with pytest.raises(KeyError):
            chain.validators_at(4)
        build(chain)
    finally:
        chain.close()
    reopened = Blockchain.open(str(tmp_path / "db"))
    try:
        assert reopened.validators_at(4) == (AUTHORITY.address, NEWCOMER)
    finally:
        reopened.close()


def test_a_chain_without_the_contract_keeps_the_spec_set(tmp_path):
    plain = spec()
    del plain["accounts"]["0x" + VALIDATORS.hex()]
    chain = Blockchain.initialize(str(tmp_path / "db"), parse_spec(plain))
    try:
        for _ in range(2 * EPOCH):
            build(chain)
        assert not chain.validator_sets.voted
        assert chain.validators_at(2 * EPOCH + 1) == (AUTHORITY.address,)
    finally:
        chain.close()


def test_a_contract_listing_other_validators_than_the_spec_is_refused(tmp_path):
    with pytest.raises(SpecError, match="must be the same"):
        Blockchain.initialize(str(tmp_path / "db"), parse_spec(spec(listed=(AUTHORITY.address, NEWCOMER))))
