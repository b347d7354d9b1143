"""Truncated, corrupted and random input: only MalformedModule, DeterminismError or InvalidModule, never a hang.

Real modules are cut at every offset and mutated (byte flips, insertions, deletions), and
random bytes and text are thrown at `meter` and `check`. Where `meter` does return a module,
wasmtime must judge it as it judges the input: metering may not make an invalid module valid
(an out-of-range local or global index would otherwise reach the injected gas counter).
The `ewasm` command then prints one line and exits 2, with no traceback.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings, strategies as st

import metering
from tools import fuzz_metering, spec_suite

REGRESSIONS = Path(__file__).with_name("regressions")
ENGINE = spec_suite.suite_engine()  # Wasm 2.0 rules, as the transpiler's feature set

CORPUS_WAT = {
    "fac": """
        (module
          (func $fac (export "fac") (param i64) (result i64)
            (if (result i64) (i64.eqz (local.get 0))
              (then (i64.const 1))
              (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1))))))))
    """,
    "memory_and_tables": """
        (module
          (type $t (func (param i32) (result i32)))
          (memory (export "memory") 1 4)
          (data (i32.const 16) "hello, metering")
          (table 4 funcref)
          (elem (i32.const 0) $inc $dbl)
          (global $g (mut i32) (i32.const 3))
          (func $inc (type $t) (i32.add (local.get 0) (i32.const 1)))
          (func $dbl (type $t) (i32.shl (local.get 0) (i32.const 1)))
          (func (export "main") (param i32) (result i32)
            (local i32 i64)
            (memory.fill (i32.const 64) (i32.const 7) (local.get 0))
            (memory.copy (i32.const 128) (i32.const 16) (i32.const 15))
            (drop (memory.grow (i32.const 1)))
            (block $out
              (loop $l
                (br_if $out (i32.ge_u (local.get 1) (local.get 0)))
                (local.set 1 (i32.add (local.get 1) (i32.const 1)))
                (br_table $l $out $l (i32.and (local.get 1) (i32.const 3)))))
            (i32.add (call_indirect (type $t) (local.get 0) (i32.and (local.get 0) (i32.const 1)))
                     (global.get $g))))
    """,
}


def _corpus() -> dict[str, bytes]:
    modules = {name: wasmtime.wat2wasm(text) for name, text in CORPUS_WAT.items()}
    for i, seed in enumerate(fuzz_metering.seeds_for(7, 40)):  # a couple of bigger smith modules
        wasm = fuzz_metering.generate(seed)
        if wasm and 800 < len(wasm) < 4000:
            modules[f"smith{i}"] = wasm
            if len(modules) >= 4:
                break
    return modules


CORPUS = _corpus()


@contextlib.contextmanager
def deadline(seconds: int):
    """Turn a hang into a failure (SIGALRM; the tests run in each worker's main thread)."""

    def expired(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _valid(wasm: bytes) -> bool:
    try:
        wasmtime.Module.validate(ENGINE, wasm)
        return True
    except wasmtime.WasmtimeError:
        return False


REFUSED = (metering.MalformedModule, metering.DeterminismError, metering.InvalidModule)


def assert_only_refused(data: bytes | str) -> None:
    """meter/check either work or raise one of the three refusals; only valid input is
    metered, into valid output."""
    with deadline(10):
        try:
            violations = metering.check(data)
            assert isinstance(violations, list)
        except REFUSED:
            pass
        try:
            out = metering.meter(data)
        except REFUSED as err:
            assert str(err)
            return
    assert isinstance(out, bytes)
    if isinstance(data, bytes) and data[:4] == b"\0asm":
        assert _valid(data) and _valid(out), (
            f"input valid={_valid(data)}, metered output valid={_valid(out)}: {data.hex()}")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_real_module_cut_at_every_offset_is_refused_cleanly(name):
    wasm = CORPUS[name]
    assert metering.meter(wasm)  # the uncut module meters
    for cut in range(len(wasm)):
        assert_only_refused(wasm[:cut])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CORPUS)), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                                 min_size=1, max_size=4))
def test_byte_flips_in_real_modules_are_refused_cleanly(name, flips):
    wasm = bytearray(CORPUS[name])
    for pos, value in flips:
        wasm[pos % len(wasm)] = value
    assert_only_refused(bytes(wasm))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CORPUS)), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16),
       st.integers(0, 16))
def test_insertions_and_deletions_in_real_modules_are_refused_cleanly(name, pos, inserted, deleted):
    wasm = CORPUS[name]
    pos %= len(wasm)
    assert_only_refused(wasm[:pos] + inserted + wasm[pos:])
    assert_only_refused(wasm[:pos] + wasm[pos + deleted:])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_are_refused_cleanly(data):
    assert_only_refused(data)
    assert_only_refused(b"\0asm\x01\0\0\0" + data)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_random_text_is_refused_cleanly(text):
    assert_only_refused(text)
    assert_only_refused("(module " + text)


def _build(body: bytes) -> bytes:
    """A module with two functions of type () -> () and no globals; f (exported) has `body`."""

    def section(sid: int, payload: bytes) -> bytes:
        return bytes([sid, len(payload)]) + payload

    g = b"\x00\x0b"
    code = bytes([2, len(body)]) + body + bytes([len(g)]) + g
    return (b"\0asm\1\0\0\0" + section(1, b"\x01\x60\x00\x00") + section(3, b"\x02\x00\x00")
            + section(7, b"\x01\x01f\x00\x00") + section(10, code))


OUT_OF_RANGE = {
    # i64.const 1e9; local.set 0 (no such local); call 1  -> would refill gas via the injected local
    "local_index_out_of_range_refills_gas": b"\x00\x42\x80\x94\xeb\xdc\x03\x21\x00\x10\x01\x0b",
    # i64.const 1e9; global.set 0 (no globals); call 1    -> would write the injected gas_left
    "global_index_out_of_range_refills_gas": b"\x00\x42\x80\x94\xeb\xdc\x03\x24\x00\x10\x01\x0b",
    # i32.const 0; global.set 1 (no globals)             -> would reset the stack limiter
    "global_index_out_of_range_resets_stack_height": b"\x00\x41\x00\x24\x01\x0b",
}


@pytest.mark.parametrize("name, body", [pytest.param(k, v, id=k) for k, v in OUT_OF_RANGE.items()])
def test_out_of_range_indices_cannot_reach_the_injected_counters(name, body):
    wasm = _build(body)
    assert (REGRESSIONS / f"{name}.wasm").read_bytes() == wasm
    assert not _valid(wasm)
    with pytest.raises(REFUSED):
        metering.meter(wasm)


def _corrupted_files(tmp_path: Path) -> list[Path]:
    wasm = CORPUS["memory_and_tables"]
    samples = {
        "truncated.wasm": wasm[: len(wasm) // 2],
        "flipped.wasm": wasm[:8] + bytes([wasm[8] ^ 0xFF]) + wasm[9:],
        "random.wasm": bytes(range(7, 250, 3)),
        "empty.wasm": b"",
        "garbage.wat": b"(module (func (i32.add)) oops",
        "binary-garbage.wat": b"(\xff\xfe\x00",
    }
    paths = []
    for name, data in samples.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.mark.parametrize("command", [["check"], ["meter", "-o", "OUT"], ["inspect"]])
def test_the_cli_prints_one_line_and_exits_2_on_corrupted_files(tmp_path, command):
    for path in _corrupted_files(tmp_path):
        argv = [a if a != "OUT" else str(tmp_path / "out.wasm") for a in command]
        proc = subprocess.run([sys.executable, "-m", "ewasm_cli", argv[0], str(path), *argv[1:]],
                              capture_output=True, text=True, timeout=60)
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
        assert proc.returncode == 2, (path.name, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(lines) == 1, (path.name, lines)
        assert path.name in lines[0] or "malformed" in lines[0].lower()


def _violations_or_refusal(data: bytes, lazy: bool):
    from metering.decode import decode_module
    from metering.determinism import check_module

    try:
        return check_module(decode_module(data, lazy_bodies=lazy), "ewasm", max_memory_pages=512)
    except metering.MalformedModule as err:
        return ("malformed", str(err), err.offset)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CORPUS)), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                                 max_size=3))
def test_decoding_bodies_lazily_finds_exactly_what_eager_decoding_finds(name, flips):
    wasm = bytearray(CORPUS[name])
    for pos, value in flips:
        wasm[pos % len(wasm)] = value
    lazy, eager = _violations_or_refusal(bytes(wasm), True), _violations_or_refusal(bytes(wasm), False)
    if isinstance(eager, tuple):
        # Refused either way; a module malformed in a body and in a later section may be
        # refused for either (lazily, bodies are read after the sections).
        assert isinstance(lazy, tuple) and lazy[0] == "malformed"
    else:
        assert lazy == eager


def test_checking_a_large_module_needs_memory_near_its_size_not_per_instruction():
    """A 5 MB module of 3.3 million instructions: eager decoding took ~410 MiB for it."""
    program = (
        "import resource, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import metering\n"
        "from tests.metering.test_hostile_input import large_module\n"
        "data = large_module(5_000_000)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "assert metering.check(data, profile='ewasm') == []\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    grown = int(subprocess.run([sys.executable, "-c", program, root], capture_output=True, text=True, check=True,
                               timeout=120).stdout)
    assert grown < 3 * 5_000_000, f"checking a 5 MB module grew the process by {grown / 2**20:.0f} MiB"


def large_module(size: int) -> bytes:
    """A valid ewasm-shaped module of about `size` bytes: functions of 4,000 instructions."""
    import leb128

    def uleb(n: int) -> bytes:
        return bytes(leb128.u.encode(n))

    def section(kind: int, payload: bytes) -> bytes:
        return bytes([kind]) + uleb(len(payload)) + payload

    body = b"\x00" + b"\x41\x01\x1a" * 2000 + b"\x0b"  # no locals; (i32.const 1, drop) x 2000
    func = uleb(len(body)) + body
    n = size // len(func)
    exports = uleb(2) + uleb(4) + b"main\x00" + uleb(0) + uleb(6) + b"memory\x02" + uleb(0)
    return (b"\0asm\x01\0\0\0" + section(1, b"\x01\x60\x00\x00") + section(3, uleb(n) + b"\x00" * n)
            + section(5, b"\x01\x00\x01") + section(7, exports) + section(10, uleb(n) + func * n))
