from __future__ import annotations

import pytest
import rlp
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.core.keys import PrivateKey, recover_address, to_checksum_address
from chain.core.params import ChainParams
from chain.state.account import Account as StateAccount
from chain.tx.codec import decode_transaction
from chain.tx.errors import (
    BadSignature,
    FeeTooLow,
    GasLimitError,
    InsufficientFunds,
    MalformedTransaction,
    NonceTooHigh,
    NonceTooLow,
    OutOfScope,
    OversizedTransaction,
    UnsupportedTransactionType,
    WrongChainId,
)
from chain.tx.signing import sign_scoped_transaction
from chain.tx.validation import validate, validate_stateless
from ewasm_runtime.hashing import create_address

from chain_fixtures import CHAIN_ID, sign

OTHER = "0x" + "22" * 20


class FixedState:
    def __init__(self, nonce=0, balance=10**18):
        self.nonce, self.balance = nonce, balance

    def get_nonce(self, address):
        return self.nonce

    def get_balance(self, address):
        return self.balance


def test_eip1559_transaction_signed_by_eth_account_decodes_with_its_hash_and_sender(account):
    signed = account.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": 7, "maxFeePerGas": 30,
                                       "maxPriorityFeePerGas": 2, "gas": 50_000, "to": OTHER, "value": 5,
                                       "data": b"\x01\x02", "accessList": []})
    tx = decode_transaction(bytes(signed.raw_transaction))
    assert tx.hash == bytes(signed.hash)
    assert to_checksum_address(tx.sender) == account.address
    assert (tx.nonce, tx.max_fee_per_gas, tx.max_priority_fee_per_gas, tx.gas_limit, tx.value, tx.data) == \
        (7, 30, 2, 50_000, 5, b"\x01\x02")
    assert tx.to == bytes.fromhex("22" * 20)


def test_eip2930_access_list_addresses_become_the_scope(account, params):
    raw = bytes(account.sign_transaction({
        "type": 1, "chainId": CHAIN_ID, "nonce": 0, "gasPrice": 10, "gas": 60_000, "to": OTHER, "value": 0,
        "data": b"", "accessList": [{"address": OTHER, "storageKeys": ["0x" + "00" * 32]},
                                    {"address": account.address, "storageKeys": []}]}).raw_transaction)
    tx = decode_transaction(raw)
    assert tx.scope == (bytes.fromhex("22" * 20), bytes.fromhex(account.address[2:]))
    validate_stateless(tx, params)


def test_an_empty_access_list_means_the_whole_address_space(account):
    assert decode_transaction(sign(account)).scope == (b"",)


def test_native_scoped_transaction_round_trips_prefix_ranges():
    key = PrivateKey.generate()
    raw = sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=1, gas_limit=30_000, to=b"\x22" * 20,
                                  scope=[key.address[:3], b"\x22"], max_fee_per_gas=5)
    tx = decode_transaction(raw)
    assert tx.sender == key.address
    assert tx.scope == (key.address[:3], b"\x22")
    assert tx.intrinsic_gas() == 21_000


def test_sender_outside_its_scope_is_rejected(account, params):
    raw = sign(account, accessList=[{"address": OTHER, "storageKeys": []}])
    with pytest.raises(OutOfScope, match="sender"):
        validate_stateless(decode_transaction(raw), params)


def test_recipient_outside_its_scope_is_rejected(params):
    key = PrivateKey.generate()
    raw = sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=0, gas_limit=30_000, to=b"\x33" * 20,
                                  scope=[key.address], max_fee_per_gas=1)
    with pytest.raises(OutOfScope, match="recipient"):
        validate_stateless(decode_transaction(raw), params)


def test_created_contract_must_be_inside_the_scope(params):
    key = PrivateKey.generate()
    created = create_address(key.address, 0)
    ok = sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=0, gas_limit=100_000, to=None, data=b"\x00",
                                 scope=[key.address, created], max_fee_per_gas=1)
    validate_stateless(decode_transaction(ok), params)
    bad = sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=0, gas_limit=100_000, to=None, data=b"\x00",
                                  scope=[key.address], max_fee_per_gas=1)
    with pytest.raises(OutOfScope, match="created contract"):
        validate_stateless(decode_transaction(bad), params)


def test_wrong_chain_id_is_rejected(account, params):
    with pytest.raises(WrongChainId, match="chain id 1, this chain is 1337"):
        validate_stateless(decode_transaction(sign(account, chainId=1)), params)


def test_a_tampered_signature_is_rejected_or_recovers_another_sender(account, params):
    tx = decode_transaction(sign(account))
    fields = rlp.decode(tx.raw[1:])
    fields[-1] = (int.from_bytes(fields[-1], "big") ^ 1).to_bytes(32, "big").lstrip(b"\x00")
    tampered = decode_transaction(b"\x02" + rlp.encode(fields))
    try:
        assert tampered.sender != tx.sender
    except BadSignature:
        pass


def test_high_s_signatures_are_rejected():
    tx = decode_transaction(sign(Account.create()))
    from chain.core.keys import SECP256K1_N
    with pytest.raises(ValueError, match="high s"):
        recover_address(tx.signing_hash, tx.y_parity ^ 1, tx.r, SECP256K1_N - tx.s)


def test_gas_limit_below_intrinsic_or_above_block_limit_is_rejected(account, params):
    with pytest.raises(GasLimitError, match="intrinsic"):
        validate_stateless(decode_transaction(sign(account, gas=21_000, data=b"\x01")), params)
    with pytest.raises(GasLimitError, match="block gas limit"):
        validate_stateless(decode_transaction(sign(account, gas=params.block_gas_limit + 1)), params)


def test_fee_below_the_base_fee_is_rejected(account):
    with pytest.raises(FeeTooLow):
        validate_stateless(decode_transaction(sign(account, maxFeePerGas=1, maxPriorityFeePerGas=0)),
                           ChainParams(chain_id=CHAIN_ID, base_fee_per_gas=7))


def test_oversized_transactions_are_rejected(account):
    raw = sign(account, data=b"\x01" * 2000, gas=1_000_000)
    with pytest.raises(OversizedTransaction):
        validate_stateless(decode_transaction(raw), ChainParams(chain_id=CHAIN_ID, max_transaction_size=1000))


def test_nonce_and_balance_are_checked_against_the_account(account, params):
    tx = decode_transaction(sign(account, nonce=3, value=1000))
    with pytest.raises(NonceTooLow, match="replay"):
        validate(tx, params, FixedState(nonce=4))
    with pytest.raises(NonceTooHigh):
        validate(tx, params, FixedState(nonce=2))
    validate(tx, params, FixedState(nonce=2), allow_future_nonce=True)
    with pytest.raises(InsufficientFunds, match="needs 1001000"):
        validate(tx, params, FixedState(nonce=3, balance=1_000_999))
    validate(tx, params, FixedState(nonce=3, balance=1_001_000))


@pytest.mark.parametrize("raw, error", [
    (b"", MalformedTransaction),
    (b"\xf8\x01", MalformedTransaction),
    (rlp.encode([1] * 8), MalformedTransaction),  # a legacy list of 8 fields
    (rlp.encode([1, 1, 21_000, b"\x11" * 20, 0, b"", 30, 1, 1]), MalformedTransaction),  # v below 35
    (b"\x03\xc0", UnsupportedTransactionType),
    (b"\x02\xc0", MalformedTransaction),
    (b"\x02\xff\xff", MalformedTransaction),
    (b"\x02" + rlp.encode([1] * 12), MalformedTransaction),
])
def test_malformed_envelopes_get_a_clear_error(raw, error):
    with pytest.raises(error):
        decode_transaction(raw)


@given(st.integers(0, 2**64 - 1), st.integers(0, 10**12), st.integers(21_000, 10**7), st.booleans(),
       st.integers(0, 10**24), st.binary(max_size=64), st.integers(1, 2**32))
@settings(max_examples=40, deadline=None)
def test_legacy_eip155_transactions_signed_by_eth_account_decode_with_their_hash_sender_and_chain(
        nonce, price, gas, create, value, data, chain_id):
    account = Account.from_key("0x" + "42" * 32)
    fields = {"nonce": nonce, "gasPrice": price, "gas": gas, "value": value, "data": data, "chainId": chain_id}
    signed = account.sign_transaction(fields if create else {**fields, "to": "0x" + "22" * 20})
    tx = decode_transaction(bytes(signed.raw_transaction))
    assert (tx.tx_type, tx.chain_id, tx.nonce, tx.gas_limit, tx.value, tx.data) == (0, chain_id, nonce, gas, value,
                                                                                     data)
    assert tx.max_fee_per_gas == tx.max_priority_fee_per_gas == price and tx.is_create == create
    assert tx.hash == bytes(signed.hash) and tx.sender == bytes.fromhex(account.address[2:]) and tx.v == signed.v
    assert tx.scope == (b"",)  # undeclared: its sender's whole shard, run serially


def test_a_legacy_transaction_without_a_chain_id_is_refused_as_replayable(account):
    signed = account.sign_transaction({"nonce": 0, "gasPrice": 1, "gas": 21_000, "to": "0x" + "22" * 20,
                                       "value": 1, "data": b""})
    with pytest.raises(UnsupportedTransactionType, match="replayed on any chain"):
        decode_transaction(bytes(signed.raw_transaction))


def test_trailing_bytes_after_the_rlp_list_are_malformed(account):
    with pytest.raises(MalformedTransaction):
        decode_transaction(sign(account) + b"\x00")


def test_account_encoding_round_trips():
    account = StateAccount(nonce=3, balance=2**127, code_hash=b"\x05" * 32)
    assert StateAccount.decode(account.encode()) == account
