"""The deterministic stack limit fires before wasmtime's native stack overflow."""

from __future__ import annotations

import pytest
import wasmtime

import metering
from tests.metering.runner import ENGINE, Outcome, run

AMPLE = 10**15


def deep(wat: str, export: str, args, **kw) -> Outcome:
    return run(metering.meter(wat, **kw), export, args, AMPLE)


def test_infinite_direct_recursion_hits_the_limit():
    out = deep('(module (func $f (export "f") (param i32) (result i32) (call $f (local.get 0))))', "f", [1])
    assert out.status == "stack_limit"


def test_recursion_below_the_limit_is_unaffected():
    wat = '''(module (func $d (export "d") (param i64) (result i64)
      (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 0))
        (else (i64.add (i64.const 1) (call $d (i64.sub (local.get 0) (i64.const 1))))))))'''
    assert deep(wat, "d", [500]) == Outcome(500, "ok", deep(wat, "d", [500]).gas_left, None)


@pytest.mark.parametrize("params, locals_, operands", [(0, 0, 0), (60, 0, 0), (0, 2000, 0), (3, 10, 200)])
def test_frames_of_every_shape_hit_our_limit_first(params, locals_, operands):
    # Big frames, many params, many locals, deep operand stacks: the accounting must
    # over-estimate native usage in every case, or wasmtime's own guard would fire first.
    param_decl = " ".join(["i64"] * params)
    args = " ".join(f"(local.get {i})" for i in range(params))
    pushes = " ".join(["(i64.const 1)"] * operands)
    drops = " ".join(["(drop)"] * operands)
    local_decl = f"(local {' '.join(['i64'] * locals_)})" if locals_ else ""
    touch = f"(local.set {params} (i64.const 1))" if locals_ else ""
    wat = f'''(module (func $f (export "f") {f"(param {param_decl})" if params else ""} {local_decl}
      {touch} {pushes} (call $f {args}) {drops}))'''
    out = deep(wat, "f", [0] * params)
    assert out.status == "stack_limit", out


def test_mutual_recursion_through_call_indirect_hits_the_limit():
    wat = '''(module (type $t (func (param i32) (result i32)))
      (table 2 funcref) (elem (i32.const 0) $a $b)
      (func $a (export "a") (param i32) (result i32) (call_indirect (type $t) (local.get 0) (i32.const 1)))
      (func $b (param i32) (result i32) (call_indirect (type $t) (local.get 0) (i32.const 0))))'''
    assert deep(wat, "a", [0]).status == "stack_limit"


def test_reentry_through_the_host_and_an_export_hits_the_limit():
    # wasm -> host import -> exported entry point -> wasm ..., the pattern of a contract
    # that calls itself through the host. The height global accumulates across entries.
    wat = '''(module (import "env" "reenter" (func $reenter (param i32)))
      (func (export "entry") (param i32) (call $reenter (i32.add (local.get 0) (i32.const 1)))))'''
    wasm = metering.meter(wat, stack_limit=400)
    store = wasmtime.Store(ENGINE)
    module = wasmtime.Module(ENGINE, wasm)
    holder = {}
    depth = []

    def reenter(n):
        depth.append(n)
        holder["entry"](store, n)

    func = wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i32()], []), reenter)
    instance = wasmtime.Instance(store, module, [func])
    exports = instance.exports(store)
    holder["entry"] = exports["entry"]
    exports["gas_left"].set_value(store, wasmtime.Val.i64(AMPLE))
    with pytest.raises((wasmtime.Trap, wasmtime.WasmtimeError)):
        exports["entry"](store, 0)
    assert exports["stack_height"].value(store) == -1
    assert 10 < max(depth) < 400


def test_the_limit_is_deterministic_across_runs_and_counts_frames_exactly():
    wat = '(module (func $f (export "f") (param i32) (result i32) (call $f (i32.add (local.get 0) (i32.const 1)))))'
    a, b = deep(wat, "f", [0]), deep(wat, "f", [0])
    assert a == b and a.status == "stack_limit"


def test_a_stack_limit_trap_is_not_mistaken_for_out_of_gas():
    wat = '(module (func $f (export "f") (call $f)))'
    out = deep(wat, "f", [])
    assert out.status == "stack_limit" and out.gas_left >= 0


SMALL_RECURSION = '''(module (func $d (export "d") (param i64) (result i64)
  (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 0))
    (else (i64.add (i64.const 1) (call $d (i64.sub (local.get 0) (i64.const 1))))))))'''


def test_a_small_recursive_function_goes_ten_thousand_frames_deep_under_the_default_table():
    out = deep(SMALL_RECURSION, "d", [10_000])
    assert out.status == "ok" and out.value == 10_000


def test_default_v1_keeps_its_own_limit_for_the_chains_that_name_it():
    v1 = metering.load_costs("default-v1")
    assert deep(SMALL_RECURSION, "d", [10_000], costs=v1).status == "stack_limit"
    assert deep(SMALL_RECURSION, "d", [500], costs=v1).status == "ok"
