"""Hostile contracts end in their defined status, with the same gas every time."""

from __future__ import annotations

import pytest

from ewasm_runtime import Status
from tests.ewasm_runtime.helpers import A, B, World, bytes_data, contract

INFINITE_LOOP = contract("(loop $l (br $l))")
DEEP_RECURSION = contract("(call $down)", funcs="(func $down (call $down))")
MEMORY_BOMB = contract("(loop $l (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable)) (br $l))")
HUGE_COPY = contract("(call $callDataCopy (i32.const 0) (i32.const 0) (i32.const 0xffffffff))")


def twice(code: bytes, gas: int, data: bytes = b""):
    results = []
    for _ in range(2):
        w = World(metering=True)
        w.deploy(A, code)
        results.append(w.call(A, data, gas=gas))
    assert results[0].status is results[1].status
    assert results[0].gas_used == results[1].gas_used
    return results[0]


def test_an_infinite_loop_runs_out_of_gas():
    r = twice(INFINITE_LOOP, 2_000_000)
    assert r.status is Status.OUT_OF_GAS and r.gas_used == 2_000_000


def test_unbounded_recursion_hits_the_deterministic_stack_limit():
    r = twice(DEEP_RECURSION, 50_000_000)
    assert r.status is Status.STACK_LIMIT and r.gas_used == 50_000_000


def test_a_memory_bomb_pays_for_its_pages_and_stops_at_the_page_limit():
    r = twice(MEMORY_BOMB, 3_000_000)
    assert r.status is Status.OUT_OF_GAS and r.gas_used == 3_000_000
    r = twice(MEMORY_BOMB, 10**12)
    assert r.status is Status.TRAP and r.gas_used == 10**12  # memory.grow refused at the cap


@pytest.mark.parametrize("gas, status", [(5_000_000, Status.OUT_OF_GAS), (10**12, Status.TRAP)])
def test_a_huge_call_data_copy_is_charged_first_then_refused(gas, status):
    r = twice(HUGE_COPY, gas, b"\x01" * 10)
    assert r.status is status and r.gas_used == gas


def test_a_call_bomb_is_bounded_by_the_instances_per_transaction():
    # A calls B 2500 times; every call needs a fresh instance and a transaction holds at
    # most 2048 (A's own included), so the last 453 calls fail. A counts the failures.
    from ewasm_runtime.engine import MAX_INSTANCES_PER_TX

    bomb = contract("""
        (loop $l
          (if (call $call (i64.const 20000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 0))
            (then (i32.store (i32.const 1060) (i32.add (i32.load (i32.const 1060)) (i32.const 1)))))
          (local.set 0 (i32.add (local.get 0) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get 0) (i32.const 2500))))
        (call $storageStore (i32.const 1000) (i32.const 1032))""",
        locals_="(local i32)", data=bytes_data(B, 100))
    outcomes = []
    for _ in range(2):
        w = World(metering=True)
        w.deploy(B, contract(""))
        w.deploy(A, bomb)
        r = w.call(A, gas=10**9)
        assert r.status is Status.SUCCESS, r.error
        failures = int.from_bytes(w.storage(A, 0)[28:32], "little")
        outcomes.append((r.gas_used, failures))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == 2500 - (MAX_INSTANCES_PER_TX - 1)
