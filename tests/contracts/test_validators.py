"""The validator-set contract (system/validators.wat) on a real chain: validators vote,
a change applies at more than half of them, votes lapse once it has, and every other
caller or argument is refused. Random vote sequences are checked against a plain model."""

from __future__ import annotations

import pytest
from eth_abi import decode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.core.keys import PrivateKey
from chain.core.spec import parse_spec
from chain.core.system import (
    GET_VALIDATORS,
    PROPOSE_VALIDATOR,
    VALIDATORS,
    propose_validator_call,
    read_validators,
    validators_storage,
)
from chain.ledger.blockchain import Blockchain
from chain.tx.codec import decode_transaction
from chain.tx.signing import sign_scoped_transaction
from contracts import load_system
from ewasm_runtime.hashing import keccak256

KEYS = [PrivateKey.from_hex(f"{0x51 + i:064x}") for i in range(6)]
GENESIS = [k.address for k in KEYS[:3]]
CHAIN_ID = 1337


def open_chain(path, validators=GENESIS) -> Blockchain:
    spec = {"name": "validators", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID},
            "accounts": {"0x" + k.address.hex(): {"balance": str(10**21)} for k in KEYS}}
    spec["accounts"]["0x" + VALIDATORS.hex()] = {
        "code": "0x" + load_system("validators.wasm").hex(), "nonce": 1,
        "storage": {"0x" + k.hex(): "0x" + v.hex() for k, v in validators_storage(validators).items()}}
    return Blockchain.initialize(str(path), parse_spec(spec))


@pytest.fixture
def chain(tmp_path):
    chain = open_chain(tmp_path / "db")
    yield chain
    chain.close()


def listed(chain) -> list[bytes]:
    """getValidators() through the VM, checked against what the chain reads from storage."""
    result = chain.call(sender=bytes(20), to=VALIDATORS, data=GET_VALIDATORS)
    assert result.status == "SUCCESS", result.error
    (addresses,) = decode(["address[]"], result.output)
    from_abi = [bytes.fromhex(a[2:]) for a in addresses]
    with chain.snapshot() as snap:
        assert list(read_validators(lambda slot: snap.get_storage(VALIDATORS, slot))) == from_abi
    return from_abi


def vote(chain, key: PrivateKey, candidate: bytes, add: bool, *, data: bytes | None = None):
    with chain.snapshot() as snap:
        nonce = snap.get_nonce(key.address)
    tx = decode_transaction(sign_scoped_transaction(
        key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=1_000_000, to=VALIDATORS,
        data=propose_validator_call(candidate, add) if data is None else data, scope=[key.address, VALIDATORS]))
    _, execution = chain.build_block([tx], b"\x0c" * 20)
    return execution.receipts[0]


def test_genesis_lists_the_spec_validators_in_order(chain):
    assert listed(chain) == GENESIS


def test_a_change_applies_once_more_than_half_agree_and_is_logged(chain):
    newcomer = KEYS[3].address
    first = vote(chain, KEYS[0], newcomer, True)
    assert first.status == 1 and listed(chain) == GENESIS  # 1 of 3 is not more than half
    assert first.logs[0].topics == (keccak256(b"ValidatorVoted(address,address,bool)"),
                                    KEYS[0].address.rjust(32, b"\x00"), newcomer.rjust(32, b"\x00"))
    assert vote(chain, KEYS[0], newcomer, True).status == 1 and listed(chain) == GENESIS  # counted once
    second = vote(chain, KEYS[1], newcomer, True)
    assert second.status == 1 and listed(chain) == [*GENESIS, newcomer]
    assert second.logs[1].topics == (keccak256(b"ValidatorAdded(address)"), newcomer.rjust(32, b"\x00"))
    # Four now: removing one takes three votes, and the last validator fills the gap.
    for k in (0, 1):
        vote(chain, KEYS[k], GENESIS[0], False)
    assert listed(chain) == [*GENESIS, newcomer]
    removed = vote(chain, KEYS[3], GENESIS[0], False)
    assert removed.status == 1 and listed(chain) == [newcomer, GENESIS[1], GENESIS[2]]
    assert removed.logs[1].topics[0] == keccak256(b"ValidatorRemoved(address)")


def test_votes_cast_before_a_change_lapse_with_it(chain):
    newcomer = KEYS[3].address
    vote(chain, KEYS[0], newcomer, True)
    vote(chain, KEYS[1], newcomer, True)  # added
    for k in (0, 1, 3):
        vote(chain, KEYS[k], newcomer, False)  # removed again
    assert listed(chain) == GENESIS
    assert vote(chain, KEYS[2], newcomer, True).status == 1 and listed(chain) == GENESIS  # the old votes are gone


def test_standing_votes_on_different_candidates_do_not_disturb_each_other(chain):
    target = GENESIS[2]
    vote(chain, KEYS[0], target, False)
    vote(chain, KEYS[0], KEYS[4].address, True)  # another candidate: its own standing vote
    vote(chain, KEYS[1], target, False)
    assert listed(chain) == GENESIS[:2]


@pytest.mark.parametrize("case", ["stranger", "add a validator", "remove a stranger", "remove the last"])
def test_votes_that_cannot_apply_revert_and_change_nothing(tmp_path, case):
    chain = open_chain(tmp_path / "db", GENESIS[:1] if case == "remove the last" else GENESIS)
    try:
        before = listed(chain)
        key, candidate, add = {"stranger": (KEYS[5], KEYS[4].address, True),
                               "add a validator": (KEYS[0], GENESIS[1], True),
                               "remove a stranger": (KEYS[0], KEYS[4].address, False),
                               "remove the last": (KEYS[0], GENESIS[0], False)}[case]
        assert vote(chain, key, candidate, add).status == 0
        assert listed(chain) == before
    finally:
        chain.close()


@pytest.mark.parametrize("data", [
    b"", GET_VALIDATORS[:3], PROPOSE_VALIDATOR + bytes(32),
    PROPOSE_VALIDATOR + b"\x01" * 32 + bytes(32),  # dirty address word
    PROPOSE_VALIDATOR + KEYS[4].address.rjust(32, b"\x00") + (2).to_bytes(32, "big"),  # not a bool
    PROPOSE_VALIDATOR + KEYS[4].address.rjust(32, b"\x00") + b"\x01" + bytes(30) + b"\x01",
    b"\xde\xad\xbe\xef" + bytes(64),
])
def test_malformed_calldata_reverts(chain, data):
    result = chain.call(sender=KEYS[0].address, to=VALIDATORS, data=data)
    assert result.status == "REVERT" and result.output == b""


class VoteModel:
    """The contract's rules, plainly: the reference the random sequences are checked against."""

    def __init__(self, validators):
        self.validators = list(validators)
        self.generation: dict[bytes, int] = {}
        self.votes: dict[tuple[bytes, bytes], tuple[bytes, bool, int]] = {}

    def propose(self, voter: bytes, candidate: bytes, add: bool) -> bool:
        listed = candidate in self.validators
        if voter not in self.validators or (add and listed) or (not add and (not listed or len(self.validators) == 1)):
            return False
        generation = self.generation.get(candidate, 0)
        ballot = (candidate, add, generation)
        self.votes[(voter, candidate[:11])] = ballot
        tally = sum(self.votes.get((v, candidate[:11])) == ballot for v in self.validators)
        if 2 * tally > len(self.validators):
            if add:
                self.validators.append(candidate)
            else:
                index, last = self.validators.index(candidate), self.validators.pop()
                if index < len(self.validators):
                    self.validators[index] = last
            self.generation[candidate] = generation + 1
        return True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.booleans()), min_size=1, max_size=14))
def test_random_vote_sequences_match_the_model(tmp_path_factory, votes):
    chain = open_chain(tmp_path_factory.mktemp("votes") / "db")
    model = VoteModel(GENESIS)
    try:
        for voter, candidate, add in votes:
            expected = model.propose(KEYS[voter].address, KEYS[candidate].address, add)
            assert vote(chain, KEYS[voter], KEYS[candidate].address, add).status == int(expected)
            assert listed(chain) == model.validators
    finally:
        chain.close()
