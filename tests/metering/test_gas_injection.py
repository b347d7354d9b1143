"""The optimised gas injector equals the plain reference: results, gas, out-of-gas points."""

from __future__ import annotations

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings, strategies as st

import metering
from metering import opcodes
from tests.metering.programs import programs
from tests.metering.reference_injector import reference_meter
from tests.metering.runner import run

AMPLE = 10**12
COSTS = metering.load_costs()


def used_gas(outcome) -> int:
    return AMPLE - outcome.gas_left


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(-5, 300), st.data())
def test_optimised_injector_matches_reference_and_original(wat, arg, data):
    original = wasmtime.wat2wasm(wat)
    optimised = metering.meter(original)
    reference = reference_meter(original, COSTS)
    plain = run(original, "run", [arg])
    opt = run(optimised, "run", [arg], AMPLE)
    ref = run(reference, "run", [arg], AMPLE)
    # Same behaviour as the un-metered module when gas suffices.
    assert (opt.value, opt.status, opt.memory) == (plain.value, plain.status, plain.memory)
    assert (ref.value, ref.status) == (plain.value, plain.status)
    # Same gas as the reference, and exact: used - 1 runs out, used succeeds with 0 left.
    assert opt.gas_left == ref.gas_left
    used = used_gas(opt)
    assert used > 0
    exact = run(optimised, "run", [arg], used)
    assert (exact.status, exact.value, exact.gas_left) == ("ok", plain.value, 0)
    short = run(optimised, "run", [arg], used - 1)
    assert (short.status, short.gas_left) == ("out_of_gas", -1)
    # Any smaller budget stops at the same point in both: memory shows how far it got.
    budget = data.draw(st.integers(0, used - 1))
    opt_cut = run(optimised, "run", [arg], budget)
    ref_cut = run(reference, "run", [arg], budget)
    assert opt_cut.status == ref_cut.status == "out_of_gas"
    assert opt_cut.memory == ref_cut.memory


def test_gas_of_a_counted_loop_is_the_sum_of_its_blocks():
    wat = """(module (func (export "f") (param i32)
      (loop $l (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))))"""
    wasm = metering.meter(wat)
    w = COSTS.weights
    per_iteration = w[0x20] + w[0x41] + w[0x6B] + w[0x22] + w[0x0D]  # get, const, sub, tee, br_if
    entry = w[0x03]  # loop
    tail = w[0x0B] * 2  # loop end + function end
    for n in (1, 2, 10):
        out = run(wasm, "f", [n], AMPLE)
        assert AMPLE - out.gas_left == entry + n * per_iteration + tail


def test_out_of_gas_happens_before_any_instruction_of_the_block_runs():
    wat = """(module (memory (export "memory") 1)
      (func (export "f") (i32.store (i32.const 0) (i32.const 1))
        (block (br_if 0 (i32.const 0)))
        (i32.store (i32.const 4) (i32.const 2))))"""
    wasm = metering.meter(wat)
    full = run(wasm, "f", [], AMPLE)
    used = AMPLE - full.gas_left
    w = COSTS.weights
    first_block = w[0x41] * 2 + w[0x36] + w[0x02] + w[0x41] + w[0x0D]  # store, block, const, br_if
    first = run(wasm, "f", [], first_block)
    assert first.status == "out_of_gas" and first.memory[:8] == b"\x01\0\0\0\0\0\0\0"
    assert run(wasm, "f", [], first_block - 1).memory[:8] == bytes(8)
    assert run(wasm, "f", [], used).memory[:8] == b"\x01\0\0\0\x02\0\0\0"


def test_declared_locals_are_charged_at_function_entry():
    few = metering.meter('(module (func (export "f") (local i64)))')
    many = metering.meter('(module (func (export "f") (local i64 i64 i64 i64 i64 i64)))')
    difference = (AMPLE - run(many, "f", [], AMPLE).gas_left) - (AMPLE - run(few, "f", [], AMPLE).gas_left)
    assert difference == 5 * COSTS.local


def test_memory_grow_is_charged_per_page_before_it_runs():
    wat = '(module (memory 1 10) (func (export "g") (param i32) (result i32) (memory.grow (local.get 0))))'
    wasm = metering.meter(wat)
    base = AMPLE - run(wasm, "g", [0], AMPLE).gas_left
    three = run(wasm, "g", [3], AMPLE)
    assert three.value == 1 and AMPLE - three.gas_left == base + 3 * COSTS.dynamic[0x40].cost
    # Not enough for the pages: out of gas, and the memory did not grow.
    assert run(wasm, "g", [3], base + 2 * COSTS.dynamic[0x40].cost).status == "out_of_gas"


def test_bulk_memory_is_charged_per_32_byte_word():
    wat = '(module (memory 1) (func (export "f") (param i32) (memory.fill (i32.const 0) (i32.const 7) (local.get 0))))'
    wasm = metering.meter(wat)
    word = COSTS.dynamic[opcodes.MEMORY_FILL].cost
    gas = {n: AMPLE - run(wasm, "f", [n], AMPLE).gas_left for n in (0, 1, 32, 33, 64)}
    assert gas[1] - gas[0] == word and gas[32] == gas[1]
    assert gas[33] - gas[0] == 2 * word and gas[64] == gas[33]


def test_a_failed_memory_grow_is_still_charged():
    wasm = metering.meter('(module (memory 1 2) (func (export "g") (param i32) (result i32) (memory.grow (local.get 0))))')
    out = run(wasm, "g", [5], AMPLE)
    assert out.value == -1
    assert AMPLE - out.gas_left >= 5 * COSTS.dynamic[0x40].cost


def test_out_of_range_indices_cannot_reach_the_injected_gas_global_or_local():
    # Invalid input must stay invalid: otherwise index 0/1 here would name gas_left or the
    # gas-counting local after metering, and the contract could refill its own gas.
    from metering.decode import decode_module
    from metering.encode import encode_module
    from metering.module import Section

    for wat, patch in [
        ('(module (global $g (mut i64) (i64.const 0)) (func (export "f") (global.set $g (i64.const 99))))', ("global", 1)),
        ('(module (func (export "f") (param i64) (local.set 0 (i64.const 99))))', ("local", 1)),
    ]:
        data = wasmtime.wat2wasm(wat)
        module = decode_module(data)
        body = module.codes[0].body
        code_op = 0x24 if patch[0] == "global" else 0x21
        module.codes[0].body = [(i[0], patch[1], -1, -1) if i[0] == code_op else i for i in body]
        module.touch(Section.CODE)
        with pytest.raises(metering.InvalidModule) as err:  # the validator's words
            metering.meter(encode_module(module, data))
        assert f"unknown {patch[0]}" in str(err.value)
