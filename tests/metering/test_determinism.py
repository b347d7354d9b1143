"""The determinism rules find floats and refused features wherever they hide."""

from __future__ import annotations

import pytest
import wasmtime

import metering


def reasons(wat: str, profile: str = "generic", **kw) -> list[str]:
    return [v.reason for v in metering.check(wasmtime.wat2wasm(wat), profile, **kw)]


HIDDEN_FLOATS = {
    "an unused type": '(module (type (func (param f32))))',
    "a local": '(module (func (local f64)))',
    "a global": '(module (global f32 (f32.const 0)))',
    "an imported global": '(module (import "m" "g" (global f64)))',
    "an imported function's signature": '(module (import "m" "f" (func (result f32))))',
    "a block type": '(module (func (block (result f64) (unreachable))))',
    "dead code after unreachable": '(module (func unreachable f32.const 1 drop))',
    "dead code after br": '(module (func (block (br 0) (drop (f64.const 1)))))',
    "a load": '(module (memory 1) (func (drop (f32.load (i32.const 0)))))',
    "a store": '(module (memory 1) (func (f64.store (i32.const 0) (f64.const 0))))',
    "a reinterpret from int": '(module (func (param i32) (drop (f32.reinterpret_i32 (local.get 0)))))',
    "a saturating truncation": '(module (func (param i32) (drop (i32.trunc_sat_f32_s (f32.reinterpret_i32 (local.get 0))))))',
    "a typed select": '(module (func (param i32) (drop (select (result f32) (f32.const 0) (f32.const 1) (local.get 0)))))',
    "a conversion to int": '(module (func (param i64) (drop (i64.trunc_f64_u (f64.convert_i64_s (local.get 0))))))',
}


@pytest.mark.parametrize("where", sorted(HIDDEN_FLOATS))
def test_floats_are_refused_in(where):
    found = reasons(HIDDEN_FLOATS[where])
    assert found, where
    assert any("f32" in r or "f64" in r or "float" in r for r in found)
    with pytest.raises(metering.DeterminismError) as err:
        metering.meter(wasmtime.wat2wasm(HIDDEN_FLOATS[where]))
    assert err.value.violations


def test_every_violation_is_reported_not_just_the_first():
    wat = '(module (func (local f32) (drop (f64.const 1)) (drop (f32.const 2))) (global f64 (f64.const 0)))'
    violations = metering.check(wasmtime.wat2wasm(wat))
    assert len(violations) >= 4
    funcs = {v.func for v in violations}
    assert 0 in funcs and None in funcs
    assert all(v.offset > 0 for v in violations)


def test_violations_carry_the_instruction_offset():
    wasm = wasmtime.wat2wasm('(module (func (drop (f32.const 1))))')
    (v,) = [v for v in metering.check(wasm) if "f32.const" in v.reason]
    assert wasm[v.offset] == 0x43  # the f32.const opcode byte


def test_integer_modules_pass():
    assert reasons('(module (memory 1) (func (param i64) (result i64) (i64.mul (local.get 0) (i64.const 3))))') == []


@pytest.mark.parametrize(
    "wat, word",
    [
        ('(module (memory 1 1 shared))', "threads"),
        ('(module (memory i64 1))', "memory64"),
        ('(module (memory 1) (memory 1))', "multi-memory"),
        ('(module (func (param i32) (result i32) (i32.popcnt (local.get 0))) (memory 1 1 shared) (func (drop (i32.atomic.load (i32.const 0)))))', "atomics"),
        ('(module (func (drop (v128.const i32x4 0 0 0 0))))', "SIMD"),
        ('(module (tag $e) (func (throw $e)))', "exceptions"),
    ],
)
def test_nondeterministic_or_unsupported_features_are_refused(wat, word):
    found = reasons(wat)
    assert any(word in r for r in found), found


def test_memory_above_the_page_limit_is_refused_and_a_missing_maximum_is_added():
    assert any("pages" in r for r in reasons('(module (memory 1 100))', max_memory_pages=10))
    assert any("pages" in r for r in reasons('(module (memory 20))', max_memory_pages=10))
    metered = metering.meter(wasmtime.wat2wasm('(module (memory (export "m") 1))'), max_memory_pages=10)
    store = wasmtime.Store()
    memory = wasmtime.Instance(store, wasmtime.Module(store.engine, metered), []).exports(store)["m"]
    assert memory.type(store).limits.max == 10
    assert memory.grow(store, 9) == 1
    with pytest.raises(wasmtime.WasmtimeError):
        memory.grow(store, 1)


EWASM_OK = '''(module (import "ethereum" "useGas" (func (param i64)))
  (memory (export "memory") 1) (func (export "main") (call 0 (i64.const 1))))'''


def test_ewasm_profile_accepts_a_conforming_contract():
    assert reasons(EWASM_OK, "ewasm") == []


@pytest.mark.parametrize(
    "wat, expected",
    [
        ('(module (memory (export "memory") 1) (func (export "main")) (func (export "other")))', "export 'other'"),
        ('(module (memory (export "memory") 1))', "missing export 'main'"),
        ('(module (func (export "main")))', "missing export 'memory'"),
        ('(module (memory (export "memory") 1) (func (export "main") (param i32)))', "no parameters"),
        ('(module (import "env" "x" (func)) (memory (export "memory") 1) (func (export "main")))', "only from 'ethereum'"),
        ('(module (memory (export "memory") 1) (func $m (export "main")) (start $m))', "start function"),
    ],
)
def test_ewasm_profile_enforces_contract_conventions(wat, expected):
    found = reasons(wat, "ewasm")
    assert any(expected in r for r in found), found


def test_debug_imports_are_allowed_only_in_dev_mode():
    wat = '(module (import "debug" "print" (func (param i32))) (memory (export "memory") 1) (func (export "main")))'
    assert any("only from 'ethereum'" in r for r in reasons(wat, "ewasm"))
    assert reasons(wat, "ewasm", dev=True) == []


@pytest.mark.parametrize(
    "imported, hint",
    [
        ('(import "env" "abort" (func (param i32 i32 i32 i32)))', "--runtime stub --use abort="),
        ('(import "env" "seed" (func (result f64)))', "Math.random"),
        ('(import "env" "trace" (func (param i32 i32 f64 f64 f64 f64 f64)))', "trace()"),
    ],
)
def test_assemblyscripts_runtime_imports_are_refused_with_the_flags_that_drop_them(imported, hint):
    found = reasons(f'(module {imported} (memory (export "memory") 1) (func (export "main")))', "ewasm")
    assert any("only from 'ethereum'" in r and "(AssemblyScript: " in r and hint in r for r in found), found


def test_an_env_import_with_another_signature_gets_no_assemblyscript_hint():
    found = reasons('(module (import "env" "abort" (func)) (memory (export "memory") 1) (func (export "main")))',
                    "ewasm")
    assert found and not any("AssemblyScript" in r for r in found)
