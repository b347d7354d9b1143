"""Precompile vectors and prices; scopes ending a transaction with OUT_OF_RANGE."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PrivateKey

from ewasm_runtime import Precompile, PrecompileRegistry, Runtime, Status, keccak256
from ewasm_runtime.precompiles import address_of
from tests.ewasm_runtime.helpers import A, B, C, SENDER, World, bytes_data, contract, word


def call_precompile(number: int, data: bytes, gas: int = 100_000, runtime=None):
    w = World(runtime=runtime)
    body = (f"(i32.store8 (i32.const 999) (call $call (i64.const {gas}) (i32.const 100) (i32.const 200) (i32.const 1000) (i32.const {len(data)})))"
            "(i32.store (i32.const 0) (call $getReturnDataSize))"
            "(call $returnDataCopy (i32.const 4) (i32.const 0) (call $getReturnDataSize))"
            "(i32.store8 (i32.const 3) (i32.load8_u (i32.const 999)))"
            "(call $finish (i32.const 0) (i32.add (i32.const 4) (call $getReturnDataSize)))")
    w.deploy(A, contract(body, data=bytes_data(address_of(number), 100) + bytes_data(data, 1000), memory="2"))
    r = w.call(A, gas=1_000_000)
    assert r.status is Status.SUCCESS, r.error
    status = r.output[3]
    return status, r.output[4:], r.gas_used


def signed(message: bytes):
    key = PrivateKey(b"\x01" * 32)
    digest = keccak256(message)
    sig = key.sign_recoverable(digest, hasher=None)
    addr = keccak256(key.public_key.format(compressed=False)[1:])[12:]
    return digest, sig, addr


def test_ecrecover_returns_the_signer_address_left_padded():
    digest, sig, addr = signed(b"hello")
    data = digest + word(27 + sig[64]) + sig[:32] + sig[32:64]
    status, out, _ = call_precompile(1, data)
    assert status == 0 and out == bytes(12) + addr


@pytest.mark.parametrize("v", [0, 26, 29])
def test_ecrecover_with_a_bad_v_returns_nothing(v):
    digest, sig, _ = signed(b"hello")
    status, out, _ = call_precompile(1, digest + word(v) + sig[:64])
    assert status == 0 and out == b""


@pytest.mark.parametrize("number, data, expected", [
    (2, b"abc", hashlib.sha256(b"abc").digest()),
    (3, b"", bytes(12) + bytes.fromhex("9c1185a5c5e9fc54612808977ee8f548b2258d31")),
    (3, b"abc", bytes(12) + bytes.fromhex("8eb208f7e05d987a9b044a8e98c6b087f15a0bfc")),
    (4, b"copy me", b"copy me"),
    (9, b"", bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")),
])
def test_hash_and_identity_precompiles_match_their_vectors(number, data, expected):
    status, out, _ = call_precompile(number, data)
    assert status == 0 and out == expected


def test_precompiles_charge_evm_prices():
    # sha256 of 33 bytes: 60 + 12*2; identity: 15 + 3*2. Identity's 33-byte output costs
    # one more word (3 gas) to copy out than sha256's 32 bytes.
    _, _, sha_gas = call_precompile(2, b"x" * 33)
    _, _, id_gas = call_precompile(4, b"x" * 33)
    assert sha_gas - id_gas == (60 + 24) - (15 + 6) - 3


def test_a_precompile_without_enough_gas_fails_and_eats_the_forwarded_gas():
    status, out, _ = call_precompile(1, bytes(128), gas=2999)
    assert status == 1 and out == b""


def test_a_deployment_can_register_its_own_precompile_in_the_private_range():
    registry = PrecompileRegistry()
    registry.register(0x400, Precompile("reverse", lambda data: 10, lambda data: data[::-1]))
    status, out, _ = call_precompile(0x400, b"abc", runtime=Runtime(metering=False, precompiles=registry))
    assert status == 0 and out == b"cba"
    with pytest.raises(ValueError):
        registry.register(0x10, Precompile("x", lambda d: 0, bytes))
    with pytest.raises(ValueError):
        registry.register(0x400, Precompile("x", lambda d: 0, bytes))


# -- scopes

PREFIX_A = A[:1]


def test_a_call_to_an_address_outside_the_scope_is_out_of_range_and_spends_all_gas():
    w = World()
    w.deploy(B, contract("(call $useGas (i64.const 1))"))
    r = w.call(B, gas=90_000, scope=(PREFIX_A,), gas_price=1)
    assert r.status is Status.OUT_OF_RANGE and r.gas_used == 90_000
    assert w.state.get_nonce(SENDER) == 1


def test_a_nested_scope_violation_ends_the_whole_transaction_and_undoes_earlier_writes():
    w = World()
    w.deploy(B, contract(""))
    w.deploy(A, contract("(i32.store8 (i32.const 0) (i32.const 1)) (call $storageStore (i32.const 0) (i32.const 0))"
                         "(drop (call $call (i64.const 1000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 0)))",
                         data=bytes_data(B, 100)))
    r = w.call(A, gas=200_000, scope=(PREFIX_A,))
    assert r.status is Status.OUT_OF_RANGE and r.gas_used == 200_000
    assert not w.state.accounts[A].storage


def test_a_violation_two_calls_deep_names_the_account_outside_the_scope_not_the_callee():
    w = World()
    w.deploy(C, contract(""))
    w.deploy(B, contract("(drop (call $call (i64.const 1000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 0)))",
                         data=bytes_data(C, 100)))
    w.deploy(A, contract("(drop (call $call (i64.const 50000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 0)))",
                         data=bytes_data(B, 100)))
    r = w.call(A, gas=200_000, scope=(A, B))
    assert r.status is Status.OUT_OF_RANGE
    assert f"account 0x{C.hex()} is outside" in r.error


@pytest.mark.parametrize("body", [
    "(call $getExternalBalance (i32.const 100) (i32.const 0))",
    "(drop (call $getExternalCodeSize (i32.const 100)))",
    "(call $externalCodeCopy (i32.const 100) (i32.const 0) (i32.const 0) (i32.const 0))",
    "(call $selfDestruct (i32.const 100))",
])
def test_reading_or_paying_an_account_outside_the_scope_is_out_of_range(body):
    w = World()
    w.deploy(A, contract(body, data=bytes_data(C, 100)))
    assert w.call(A, gas=100_000, scope=(PREFIX_A,)).status is Status.OUT_OF_RANGE


def test_accounts_inside_the_scope_and_precompiles_are_fine():
    w = World()
    w.deploy(A, contract("(call $getExternalBalance (i32.const 100) (i32.const 0))"
                         "(drop (call $call (i64.const 1000) (i32.const 120) (i32.const 200) (i32.const 0) (i32.const 0)))",
                         data=bytes_data(A, 100) + bytes_data(address_of(4), 120)))
    assert w.call(A, gas=100_000, scope=(PREFIX_A,)).status is Status.SUCCESS
    assert w.call(A, gas=100_000, scope=(b"",)).status is Status.SUCCESS


PAY_PRECOMPILE = "(drop (call $call (i64.const 1000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 0)))"


@pytest.mark.parametrize("body", [
    PAY_PRECOMPILE,  # value 1 at 200: a balance write to the precompile's account
    "(call $selfDestruct (i32.const 100))",
    "(call $getExternalBalance (i32.const 100) (i32.const 0))",
])
def test_paying_or_reading_a_precompile_account_needs_it_in_the_scope(body):
    """Only a call that sends a precompile nothing is exempt: balances of precompile
    addresses are state like any other, and two components writing one would collide."""
    w = World()
    w.deploy(A, contract(body, data=bytes_data(address_of(4), 100) + bytes_data((1).to_bytes(16, "little"), 200)),
             balance=10)
    assert w.call(A, gas=100_000, scope=(PREFIX_A,)).status is Status.OUT_OF_RANGE
    assert w.call(A, gas=100_000, scope=(PREFIX_A, address_of(4))).status is Status.SUCCESS


def test_creating_a_contract_at_an_address_outside_the_scope_is_out_of_range():
    w = World()
    init = contract("")
    r = w.call(None, init, gas=500_000, scope=(PREFIX_A,))
    assert r.status is Status.OUT_OF_RANGE and r.gas_used == 500_000
