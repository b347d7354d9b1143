"""ewasm's rules where a plain reading of Byzantium differs, checked against the EEI
specification (ewasm/design eth_interface.md) and Hera, its reference host."""

from __future__ import annotations

import wasmtime

from ewasm_runtime import Runtime, Status, keccak256
from ewasm_runtime.gas import EIP170_MAX_CODE_SIZE
from ewasm_runtime.statetest import state_test_block_hashes
from tests.ewasm_runtime.helpers import A, B, World, bytes_data, contract

OVER_128_BITS = 1 << 128


def test_a_call_with_value_from_a_balance_past_128_bits_ends_the_frame():
    w = World()
    w.deploy(A, contract("(drop (call $call (i64.const 100000) (i32.const 32) (i32.const 64) (i32.const 0)"
                         " (i32.const 0)))", data=bytes_data(B, 32) + bytes_data(b"\x01", 64)),
             balance=OVER_128_BITS)
    r = w.call(A)
    assert r.status is Status.TRAP and "the sender's balance exceeds 128 bits" in r.error
    w.deploy(A, contract("(drop (call $call (i64.const 100000) (i32.const 32) (i32.const 64) (i32.const 0)"
                         " (i32.const 0)))", data=bytes_data(B, 32) + bytes_data(b"\x01", 64)),
             balance=OVER_128_BITS - 1)
    assert w.call(A).status is Status.SUCCESS


def test_a_create_from_a_balance_past_128_bits_ends_the_frame_even_without_value():
    w = World()
    w.deploy(A, contract("(drop (call $create (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 64)))"),
             balance=OVER_128_BITS)
    r = w.call(A, gas=5_000_000)
    assert r.status is Status.TRAP and "the sender's balance exceeds 128 bits" in r.error


def _returning(size: int) -> bytes:
    """Init code that returns `size` bytes of its memory (zeros: not wasm) as runtime code."""
    return contract(f"(call $finish (i32.const 0) (i32.const {size}))")


def test_eip_170_fails_a_creation_whose_runtime_code_is_above_24576_bytes_as_out_of_gas():
    w = World(runtime=Runtime(metering=False, max_code_size=EIP170_MAX_CODE_SIZE))
    at_limit = w.call(None, _returning(EIP170_MAX_CODE_SIZE), gas=10_000_000)
    assert at_limit.status is Status.SUCCESS
    over = w.call(None, _returning(EIP170_MAX_CODE_SIZE + 1), gas=10_000_000)
    assert over.status is Status.OUT_OF_GAS and over.gas_used == 10_000_000
    assert "above the limit of 24576" in over.error
    assert World().call(None, _returning(EIP170_MAX_CODE_SIZE + 1), gas=10_000_000).status is Status.SUCCESS


def test_unmetered_creation_refuses_returned_wasm_that_is_not_a_contract_but_stores_other_bytes():
    starts = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1) (func $s) (start $s)'
                                     ' (func (export "main")))'))
    w = World(metering=False)
    init = contract(f"(call $finish (i32.const 0) (i32.const {len(starts)}))", data=bytes_data(starts, 0))
    r = w.call(None, init, gas=5_000_000)
    assert r.status is Status.INVALID_CODE and "start function" in r.error
    assert w.call(None, _returning(10), gas=5_000_000).status is Status.SUCCESS  # not wasm: stored as it is


def test_stored_code_with_a_start_function_fails_when_called_even_unmetered():
    starts = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1) (func $s) (start $s)'
                                     ' (func (export "main")))'))
    w = World(metering=False)
    w.deploy(A, starts)
    assert w.call(A).status is Status.INVALID_CODE


def test_a_state_test_block_sees_the_hashes_of_the_256_blocks_before_it_by_the_tests_convention():
    hashes = state_test_block_hashes(300)
    assert sorted(hashes) == list(range(44, 300))
    assert hashes[299] == keccak256(b"299") and hashes[44] == keccak256(b"44")
    assert state_test_block_hashes(0) == {} and sorted(state_test_block_hashes(3)) == [0, 1, 2]


def test_contract_code_in_wat_text_is_refused_so_no_start_function_can_hide_in_it():
    text = (b'(module (import "ethereum" "storageStore" (func $ss (param i32 i32))) (memory (export "memory") 1)'
            b' (func $s (call $ss (i32.const 0) (i32.const 100))) (start $s) (func (export "main")))')
    w = World(metering=False)
    w.deploy(A, text)
    r = w.call(A)
    assert r.status is Status.INVALID_CODE and "not a wasm binary module" in r.error
    assert w.state.accounts[A].storage == {}


def test_under_default_v1_a_balance_past_128_bits_still_sends_value_and_created_code_has_no_size_rule():
    import metering

    from ewasm_runtime import runtime_for_costs

    v1 = metering.load_costs("default-v1")
    w = World(runtime=Runtime(metering=False, costs=v1))
    w.deploy(A, contract("(drop (call $call (i64.const 100000) (i32.const 32) (i32.const 64) (i32.const 0)"
                         " (i32.const 0)))", data=bytes_data(B, 32) + bytes_data(b"\x01", 64)),
             balance=OVER_128_BITS)
    assert w.call(A).status is Status.SUCCESS
    assert runtime_for_costs(v1.hash, 24_576).max_code_size is None
    assert runtime_for_costs(metering.load_costs().hash, 24_576).max_code_size == 24_576
