"""Nested calls, static frames, the depth limit, re-entrancy and contract creation."""

from __future__ import annotations

import wasmtime

from ewasm_runtime import Status, create_address
from tests.ewasm_runtime.helpers import A, B, C, SENDER, World, bytes_data, contract, word

CALL_B = "(call $call (i64.const {gas}) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const {n}))"
STORE_RESULT = "(i32.store8 (i32.const 1031) {expr}) (call $storageStore (i32.const 1000) (i32.const 1000))"
# Stores an i32 expression's low byte at storage key zero (memory 1000..1032 must be zero).


def store_result(expr: str) -> str:
    return f"(i32.store8 (i32.const 1063) {expr}) (call $storageStore (i32.const 1000) (i32.const 1032))"


def test_a_call_transfers_value_and_the_callee_sees_caller_and_value():
    w = World()
    w.deploy(B, contract("(call $getCaller (i32.const 0)) (call $getCallValue (i32.const 20))"
                         "(call $finish (i32.const 0) (i32.const 36))"))
    w.deploy(A, contract(
        store_result(CALL_B.format(gas=100000, n=0))
        + "(call $returnDataCopy (i32.const 0) (i32.const 0) (i32.const 36)) (call $finish (i32.const 0) (i32.const 36))",
        data=bytes_data(B, 100) + bytes_data((9).to_bytes(16, "little"), 200)), balance=50)
    r = w.call(A)
    assert r.status is Status.SUCCESS, r.error
    assert r.output == A + (9).to_bytes(16, "little")
    assert w.state.get_balance(B) == 9 and w.state.get_balance(A) == 41
    assert w.storage(A, 0) == word(0)


def test_a_revert_in_a_nested_call_undoes_only_the_callee_and_returns_two():
    w = World()
    w.deploy(B, contract("(i32.store8 (i32.const 0) (i32.const 1))"
                         "(call $storageStore (i32.const 0) (i32.const 0)) (call $revert (i32.const 0) (i32.const 1))"))
    w.deploy(A, contract(store_result(CALL_B.format(gas=100000, n=0)), data=bytes_data(B, 100)))
    r = w.call(A)
    assert r.status is Status.SUCCESS
    assert w.storage(A, 0) == word(2)
    assert B in w.state.accounts and not w.state.accounts[B].storage


def test_a_failing_callee_returns_one_and_consumes_only_its_own_gas():
    w = World()
    w.deploy(B, contract("unreachable"))
    w.deploy(A, contract(store_result(CALL_B.format(gas=30000, n=0)), data=bytes_data(B, 100)))
    r = w.call(A)
    assert r.status is Status.SUCCESS and w.storage(A, 0) == word(1)
    assert r.gas_used == 21000 + 700 + 30000 + 20000


def test_a_revert_deep_in_a_chain_keeps_the_outer_frames_changes():
    w = World()
    w.deploy(C, contract("(call $storageStore (i32.const 0) (i32.const 0)) (call $revert (i32.const 0) (i32.const 0))",
                         data=bytes_data(b"\x07", 0)))
    w.deploy(B, contract(store_result(CALL_B.format(gas=100000, n=0)), data=bytes_data(C, 100)))
    w.deploy(A, contract(store_result(CALL_B.format(gas=300000, n=0)), data=bytes_data(B, 100)))
    r = w.call(A)
    assert r.status is Status.SUCCESS
    assert w.storage(A, 0) == word(0) and w.storage(B, 0) == word(2)
    assert not w.state.accounts[C].storage


def test_writes_are_refused_in_a_static_call():
    w = World()
    w.deploy(B, contract("(i32.store8 (i32.const 0) (i32.const 1)) (call $storageStore (i32.const 0) (i32.const 0))"))
    w.deploy(A, contract(store_result("(call $callStatic (i64.const 100000) (i32.const 100) (i32.const 0) (i32.const 0))"),
                         data=bytes_data(B, 100)))
    r = w.call(A)
    assert r.status is Status.SUCCESS and w.storage(A, 0) == word(1)
    assert not w.state.accounts[B].storage


def test_logs_creates_value_calls_and_self_destructs_are_refused_in_a_static_call():
    bodies = [
        "(call $log (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))",
        "(drop (call $create (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))",
        "(i32.store8 (i32.const 0) (i32.const 1)) (drop (call $call (i64.const 0) (i32.const 100) (i32.const 0) (i32.const 0) (i32.const 0)))",
        "(call $selfDestruct (i32.const 100))",
    ]
    for body in bodies:
        w = World()
        w.deploy(B, contract(body, data=bytes_data(C, 100)), balance=10)
        w.deploy(A, contract(store_result("(call $callStatic (i64.const 100000) (i32.const 100) (i32.const 0) (i32.const 0))"),
                             data=bytes_data(B, 100)))
        r = w.call(A)
        assert r.status is Status.SUCCESS and w.storage(A, 0) == word(1), body
        assert not r.logs and w.state.get_balance(B) == 10


def test_a_static_frame_stays_static_through_a_plain_call():
    w = World()
    w.deploy(C, contract("(i32.store8 (i32.const 0) (i32.const 1)) (call $storageStore (i32.const 0) (i32.const 0))"))
    w.deploy(B, contract(store_result(CALL_B.format(gas=50000, n=0)) + "", data=bytes_data(C, 100)))
    # B's own storageStore is refused too, so B fails as a whole: A sees 1.
    w.deploy(A, contract(store_result("(call $callStatic (i64.const 200000) (i32.const 100) (i32.const 0) (i32.const 0))"),
                         data=bytes_data(B, 100)))
    r = w.call(A)
    assert w.storage(A, 0) == word(1) and not w.state.accounts[C].storage and not w.state.accounts[B].storage


# Calls itself with depth+1 (the depth travels in the call data) and records, at key =
# depth, the result of its own call. The call from depth 1024 must fail (result 1).
RECURSE = """
    (call $getAddress (i32.const 100))
    (if (call $getCallDataSize) (then (call $callDataCopy (i32.const 0) (i32.const 0) (i32.const 4))))
    (i32.store (i32.const 4) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.store8 (i32.const 1063)
      (call $call (call $getGasLeft) (i32.const 100) (i32.const 200) (i32.const 4) (i32.const 4)))
    (i32.store (i32.const 1028) (i32.load (i32.const 0)))
    (call $storageStore (i32.const 1000) (i32.const 1032))
"""


def test_calls_nest_to_depth_1024_and_the_next_call_fails():
    w = World()
    w.deploy(A, contract(RECURSE))
    r = w.call(A, gas=10**14)
    assert r.status is Status.SUCCESS, r.error
    key = lambda depth: (0).to_bytes(28, "big") + depth.to_bytes(4, "little")
    assert w.storage(A, key(1024)) == word(1)
    assert w.storage(A, key(1023)) == word(0)
    assert w.storage(A, key(0)) == word(0)


def test_reentrancy_sees_and_keeps_the_inner_frames_writes():
    w = World()
    # A: with call data, store 7 at key 1; without, call B, then copy key 1 to key 2.
    w.deploy(A, contract("""
        (if (call $getCallDataSize)
          (then (i32.store8 (i32.const 31) (i32.const 1)) (i32.store8 (i32.const 63) (i32.const 7))
                (call $storageStore (i32.const 0) (i32.const 32)) (return)))
        (drop (call $call (i64.const 200000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 0)))
        (i32.store8 (i32.const 31) (i32.const 1)) (call $storageLoad (i32.const 0) (i32.const 32))
        (i32.store8 (i32.const 31) (i32.const 2)) (call $storageStore (i32.const 0) (i32.const 32))""",
        data=bytes_data(B, 100)))
    w.deploy(B, contract("(drop (call $call (i64.const 100000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 1)))",
                         data=bytes_data(A, 100)))
    r = w.call(A)
    assert r.status is Status.SUCCESS
    assert w.storage(A, 2) == word(7) and w.storage(A, 1) == word(7)


def test_call_code_runs_the_other_code_on_the_callers_storage():
    w = World()
    w.deploy(B, contract("(i32.store8 (i32.const 0) (i32.const 5)) (call $storageStore (i32.const 32) (i32.const 0))"))
    w.deploy(A, contract("(drop (call $callCode (i64.const 100000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 0)))",
                         data=bytes_data(B, 100)))
    w.call(A)
    assert w.storage(A, 0) == b"\x05".ljust(32, b"\0") and not w.state.accounts[B].storage


def test_call_delegate_keeps_the_callers_sender_and_value():
    w = World()
    w.deploy(B, contract("(call $getCaller (i32.const 0)) (call $getCallValue (i32.const 20))"
                         "(call $finish (i32.const 0) (i32.const 36))"))
    w.deploy(A, contract("(drop (call $callDelegate (i64.const 100000) (i32.const 100) (i32.const 0) (i32.const 0)))"
                         "(call $returnDataCopy (i32.const 0) (i32.const 0) (i32.const 36)) (call $finish (i32.const 0) (i32.const 36))",
                         data=bytes_data(B, 100)))
    r = w.call(A, value=3)
    assert r.output == SENDER + (3).to_bytes(16, "little")


def test_a_call_without_enough_balance_fails_without_spending_the_forwarded_gas():
    w = World()
    w.deploy(A, contract(store_result(CALL_B.format(gas=100000, n=0)),
                         data=bytes_data(B, 100) + bytes_data((5).to_bytes(16, "little"), 200)))
    r = w.call(A)
    assert w.storage(A, 0) == word(1)
    assert r.gas_used == 21000 + 700 + 9000 + 20000


def test_calling_an_account_without_code_succeeds_and_moves_the_value():
    w = World()
    w.deploy(A, contract(store_result(CALL_B.format(gas=0, n=0)),
                         data=bytes_data(B, 100) + bytes_data((5).to_bytes(16, "little"), 200)), balance=5)
    r = w.call(A)
    assert w.storage(A, 0) == word(0) and w.state.get_balance(B) == 5
    assert r.gas_used == 21000 + 700 + 9000 + 25000 + 5000 - 2300  # the unused stipend comes back


RUNTIME = "(module (memory (export \"memory\") 1) (func (export \"main\") (call $f (i32.const 0) (i32.const 2))) (import \"ethereum\" \"finish\" (func $f (param i32 i32))) (data (i32.const 0) \"ok\"))"


def init_code(runtime: bytes) -> bytes:
    """An init module whose main returns `runtime` through finish."""
    return contract(f"(call $finish (i32.const 0) (i32.const {len(runtime)}))", data=bytes_data(runtime, 0))


def runtime_code() -> bytes:
    return bytes(wasmtime.wat2wasm(
        '(module (import "ethereum" "finish" (func $f (param i32 i32))) (memory (export "memory") 1)'
        ' (data (i32.const 0) "ok") (func (export "main") (call $f (i32.const 0) (i32.const 2))))'))


def test_a_creation_transaction_stores_the_returned_code_at_the_ethereum_address():
    w = World()
    w.state.put(SENDER, balance=10**30, nonce=5)
    runtime = runtime_code()
    r = w.call(None, init_code(runtime), gas=2_000_000)
    assert r.status is Status.SUCCESS, r.error
    assert r.created_address == create_address(SENDER, 5)
    assert w.state.get_code(r.created_address) == runtime
    assert w.state.get_nonce(r.created_address) == 1 and w.state.get_nonce(SENDER) == 6
    assert w.call(r.created_address).output == b"ok"


def test_create_from_a_contract_returns_the_new_address_and_bumps_the_nonce():
    w = World()
    init = init_code(runtime_code())
    w.deploy(A, contract(f"(i32.store8 (i32.const 1063) (call $create (i32.const 0) (i32.const 2000) (i32.const {len(init)}) (i32.const 500)))"
                         "(call $storageStore (i32.const 1000) (i32.const 1032)) (call $finish (i32.const 500) (i32.const 20))",
                         data=bytes_data(init, 2000)))
    r = w.call(A, gas=5_000_000)
    assert r.status is Status.SUCCESS, r.error
    assert r.output == create_address(A, 0) and w.storage(A, 0) == word(0)
    assert w.state.get_code(r.output) == runtime_code() and w.state.get_nonce(A) == 1


def test_a_reverting_init_leaves_no_account_and_returns_the_revert_data():
    w = World()
    init = contract("(call $revert (i32.const 0) (i32.const 3))", data=bytes_data(b"bad", 0))
    w.deploy(A, contract(f"(i32.store8 (i32.const 1063) (call $create (i32.const 0) (i32.const 2000) (i32.const {len(init)}) (i32.const 500)))"
                         "(call $storageStore (i32.const 1000) (i32.const 1032))"
                         "(call $returnDataCopy (i32.const 0) (i32.const 0) (i32.const 3)) (call $finish (i32.const 0) (i32.const 3))",
                         data=bytes_data(init, 2000)))
    r = w.call(A, gas=5_000_000)
    assert r.output == b"bad" and w.storage(A, 0) == word(2)
    assert create_address(A, 0) not in w.state.accounts


def test_with_metering_init_code_is_metered_and_the_stored_code_is_metered():
    w = World(metering=True)
    runtime = runtime_code()
    r = w.call(None, init_code(runtime), gas=5_000_000)
    assert r.status is Status.SUCCESS, r.error
    stored = w.state.get_code(r.created_address)
    assert stored == w.runtime.meter(runtime) and stored != runtime
    assert w.runtime.compiled(stored).metered
    call = w.call(r.created_address, gas=100_000)
    assert call.status is Status.SUCCESS and call.output == b"ok"
    assert call.gas_used > 21000  # instructions and the memory page are paid for


def test_with_metering_unmetered_code_in_the_state_is_refused():
    w = World(metering=True)
    w.state.put(A, code=runtime_code())
    r = w.call(A, gas=100_000)
    assert r.status is Status.INVALID_CODE and r.gas_used == 100_000


def test_with_metering_an_init_module_with_floats_is_invalid_code():
    w = World(metering=True)
    init = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "main") (drop (f32.const 1))))'))
    r = w.call(None, init, gas=2_000_000)
    assert r.status is Status.INVALID_CODE and r.gas_used == 2_000_000
    assert w.state.get_nonce(SENDER) == 1
