"""`ewasm check`, `meter` and `inspect` as a user runs them: real processes, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import wasmtime

import metering

EWASM = [sys.executable, "-m", "ewasm_cli"]
CLEAN = '(module (memory (export "memory") 1) (func (export "main")))'
FLOATY = '(module (func (export "f") (result f32) (f32.const 1)))'


def ewasm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EWASM, *args], capture_output=True, text=True, timeout=60)


def write(tmp_path: Path, name: str, data) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else bytes(data))
    return str(path)


def test_check_passes_a_clean_contract_and_refuses_floats_with_exit_1(tmp_path):
    clean = write(tmp_path, "clean.wasm", wasmtime.wat2wasm(CLEAN))
    floaty = write(tmp_path, "floaty.wat", FLOATY)
    ok = ewasm("check", "--profile", "ewasm", clean)
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = ewasm("check", clean, floaty)
    assert bad.returncode == 1
    assert "f32" in bad.stdout and "floaty.wat" in bad.stdout


def test_check_json_lists_violations_with_function_and_offset(tmp_path):
    floaty = write(tmp_path, "floaty.wat", FLOATY)
    out = ewasm("check", "--json", floaty)
    report = json.loads(out.stdout)[floaty]
    assert out.returncode == 1 and report and {"func", "offset", "reason"} <= set(report[0])


def test_meter_writes_what_the_library_produces(tmp_path):
    src = write(tmp_path, "c.wasm", wasmtime.wat2wasm(CLEAN))
    out = tmp_path / "c.metered.wasm"
    done = ewasm("meter", src, "-o", str(out), "--profile", "ewasm")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == metering.meter(wasmtime.wat2wasm(CLEAN), profile="ewasm")


def test_meter_refuses_floats_with_exit_1_and_the_reasons(tmp_path):
    done = ewasm("meter", write(tmp_path, "f.wat", FLOATY), "-o", str(tmp_path / "out.wasm"))
    assert done.returncode == 1 and "f32" in done.stderr and not (tmp_path / "out.wasm").exists()


def test_inspect_shows_functions_blocks_and_costs(tmp_path):
    src = write(tmp_path, "c.wat", '(module (func (export "f") (param i32) (result i32) (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2)))))')
    done = ewasm("inspect", "--json", src)
    info = json.loads(done.stdout)
    assert done.returncode == 0
    (func,) = info["functions"]
    assert func["metered_blocks"] == 3 and func["static_cost"] > 0 and func["name"] == "f"
    assert "code" in {s["name"] for s in info["sections"]}
    assert ewasm("inspect", src).returncode == 0


def test_malformed_input_gets_one_line_and_exit_2_never_a_traceback(tmp_path):
    good = wasmtime.wat2wasm(CLEAN)
    cases = {
        "truncated.wasm": good[: len(good) // 2],
        "garbage.wasm": b"\x00asm\x01\x00\x00\x00\xff\xff\xff",
        "text.wat": "(module (func (i32.bogus)))",
        "empty.wasm": b"",
    }
    for name, data in cases.items():
        path = write(tmp_path, name, data)
        for args in (["check", path], ["meter", path, "-o", str(tmp_path / "o.wasm")], ["inspect", path]):
            done = ewasm(*args)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_usage_errors_exit_2(tmp_path):
    assert ewasm("meter").returncode == 2
    assert ewasm("check", str(tmp_path / "missing.wasm")).returncode == 2
    assert ewasm("meter", write(tmp_path, "c.wat", CLEAN), "-o", str(tmp_path / "o"), "--costs", str(tmp_path / "none.json")).returncode == 2
    assert ewasm("--help").returncode == 0 and ewasm("meter", "--help").returncode == 0


INVALID = {  # well formed, deterministic, and refused by WebAssembly's validation rules
    "type.wat": ('(module (func (result i32) (i64.const 1)))', "type mismatch"),
    "align.wat": ('(module (memory 1) (func (drop (i32.load align=8 (i32.const 0)))))', "alignment"),
    "index.wat": ('(module (func (call 7)))', "unknown function"),
    "unreachable.wat": ('(module (func (result i32) (unreachable) (i64.const 0) (i32.add)))', "type mismatch"),
}


def test_an_invalid_module_is_refused_by_check_meter_and_inspect_with_the_validators_reason(tmp_path):
    for name, (text, reason) in INVALID.items():
        path = write(tmp_path, name, wasmtime.wat2wasm(text))
        for args in (["check", path], ["meter", path, "-o", str(tmp_path / "o.wasm")], ["inspect", path]):
            done = ewasm(*args)
            assert done.returncode == 2 and "Traceback" not in done.stderr, (args, done.stderr)
            (line,) = done.stderr.strip().splitlines()
            assert "invalid module" in line and reason in line, line
        report = json.loads(ewasm("check", "--json", path).stdout)[path]
        assert reason in report["invalid"]


def test_a_sample_of_the_spec_suites_invalid_modules_is_refused_by_ewasm_check(tmp_path):
    """A process per module: the in-process test (test_spec_suite.py) covers all of them."""
    from tools import spec_suite

    suite = spec_suite.find_suite()
    if suite is None:
        import pytest
        pytest.skip(spec_suite.HOW_TO_GET)
    converted = spec_suite.convert(suite / "unreached-invalid.wast")
    invalid = [c for c in converted.commands if c["type"] == "assert_invalid"][:12]
    paths = [str(converted.directory / c["filename"]) for c in invalid]
    done = ewasm("check", "--json", *paths)
    report = json.loads(done.stdout)
    assert done.returncode == 2 and len(invalid) == 12
    assert all("invalid" in report[p] or "malformed" in report[p] for p in paths), report


def test_wat_that_begins_with_a_comment_is_read_as_text_by_every_command(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    for example in ("counter.wat", "forwarder.wat"):
        path = str(repo / "contracts" / "examples" / example)
        assert Path(path).read_text().lstrip().startswith(";;")
        assert ewasm("check", "--profile", "ewasm", path).returncode == 0
        assert ewasm("inspect", "--json", path).returncode == 0
        assert ewasm("meter", path, "-o", str(tmp_path / "o.wasm")).returncode == 0


def test_with_json_a_refused_module_is_described_on_stdout(tmp_path):
    floaty, garbage = write(tmp_path, "f.wat", FLOATY), write(tmp_path, "g.wasm", b"\x00asm\x01\x00\x00\x00\xff")
    refused = ewasm("meter", "--json", floaty, "-o", str(tmp_path / "o.wasm"))
    assert refused.returncode == 1 and "f32" in json.loads(refused.stdout)["violations"][0]["reason"]
    for args in (["meter", "--json", garbage, "-o", str(tmp_path / "o.wasm")], ["inspect", "--json", garbage]):
        done = ewasm(*args)
        assert done.returncode == 2 and "malformed" in json.loads(done.stdout), done.stdout
