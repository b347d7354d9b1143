"""The WebAssembly core spec suite, every module metered: integer files pass, float files are refused.

The runner lives in tools/spec_suite.py (also a command with a per-file table); these tests run
the whole suite once and state the issue's requirements over its results. The suite sits beside
the repository (../shared/wasm-testsuite or $EWASM_WASM_TESTSUITE); without it they skip.
"""

from __future__ import annotations

import textwrap

import pytest

from tools import spec_suite

# One worker runs them all: the whole suite behind `results` runs once.
pytestmark = pytest.mark.xdist_group("spec-suite")

SUITE = spec_suite.find_suite()
needs_suite = pytest.mark.skipif(SUITE is None, reason=spec_suite.HOW_TO_GET)


@pytest.fixture(scope="module")
def results() -> dict[str, spec_suite.FileResult]:
    files = spec_suite.select_files(SUITE)
    return {r.name: r for r in spec_suite.run_suite(files, metered=True, jobs=1)}


def _failures(group) -> list[str]:
    return [f"{r.name}:{f.line} {f.command}: {f.message[:300]}" for r in group for f in r.failures]


@needs_suite
def test_every_assertion_of_the_integer_files_passes_with_every_module_metered(results):
    integer = [r for r in results.values() if r.category == "integer"]
    assert len(integer) >= 20, "the classification found too few integer files"
    for name in ("i32", "i64", "int_exprs", "memory_copy", "switch", "fac", "names"):
        assert results[name].category == "integer"
        assert results[name].modules_metered == results[name].modules > 0
    assert _failures(integer) == []
    assert sum(r.passed for r in integer) > 6000


@needs_suite
def test_every_module_of_the_float_and_simd_files_is_refused(results):
    pure_float = [r for r in results.values()
                  if r.name.startswith(("f32", "f64", "float_", "simd_")) or r.name == "conversions"]
    assert len(pure_float) >= 60
    for r in pure_float:
        assert r.category == "float", r.name
        assert r.modules_refused == r.float_modules > 0, f"{r.name}: {r.modules_metered} module(s) metered"
    # In mixed files too, each float module is refused and each integer one metered.
    for r in results.values():
        assert r.modules_refused >= r.float_modules, r.name
    assert _failures(pure_float) == []


@needs_suite
def test_the_float_free_modules_of_mixed_files_behave_unchanged(results):
    mixed = [r for r in results.values() if r.category == "float" and r.modules_metered]
    assert mixed, "no mixed file has a float-free module"
    assert _failures(mixed) == []


@needs_suite
def test_the_integer_functions_of_mixed_control_flow_files_behave_unchanged_metered(results):
    """br, block, call_indirect...: their float functions stubbed out, the integer ones still pass.

    Whether an assertion survives the stubbing is learnt from the unmetered run of the same
    float-free variant, so only the metering can make one of these fail.
    """
    control_flow = ["block", "br", "br_if", "br_table", "call", "call_indirect", "if", "loop", "return",
                    "select", "unwind", "local_get", "local_set", "local_tee", "left-to-right", "memory_trap"]
    for name in control_flow:
        r = results[name]
        assert r.deflated_modules >= 1 and r.deflated_passed >= 10, (name, r.deflated_passed)
    assert _failures(results[n] for n in control_flow) == []
    assert sum(r.deflated_passed for r in results.values()) > 1500


@needs_suite
def test_modules_with_reference_types_and_table_operations_run_metered(results):
    extended = [r for r in results.values() if r.category == "extended"]
    assert {"table_copy", "table_init", "bulk", "linking"} <= {r.name for r in extended}
    assert _failures(extended) == []


@needs_suite
def test_invalid_and_malformed_modules_stay_refused_after_metering(results):
    """An invalid module must not become valid: metering may not give meaning to bad indices."""
    wrong = [f"{r.name}:{f.line}: {f.message}" for r in results.values() for f in r.failures
             if f.command in ("assert_invalid", "assert_malformed")]
    assert wrong == []
    assert sum(r.passed for r in results.values() if r.category == "none") > 700


@needs_suite
def test_runaway_recursion_ends_in_the_deterministic_stack_limiter(results):
    kinds: dict[str, int] = {}
    for r in results.values():
        for kind, count in r.exhaustion.items():
            kinds[kind] = kinds.get(kind, 0) + count
    assert kinds.get("stack limiter", 0) >= 10
    assert kinds.get("wasmtime", 0) == 0, "wasmtime's native overflow fired before the limiter"


def test_the_runner_reports_wrong_results_and_missing_traps(tmp_path):
    """The harness itself can fail: a wrong expectation and a missing trap are both caught."""
    wast = tmp_path / "selfcheck.wast"
    wast.write_text(textwrap.dedent("""
        (module
          (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
          (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
          (func (export "loop") (param i32) (result i32)
            (local i32)
            (block (loop
              (br_if 1 (i32.eqz (local.get 0)))
              (local.set 1 (i32.add (local.get 1) (local.get 0)))
              (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (br 0)))
            (local.get 1))
          (func $rec (export "rec") (call $rec)))
        (assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
        (assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 4))
        (assert_return (invoke "loop" (i32.const 100)) (i32.const 5050))
        (assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
        (assert_trap (invoke "div" (i32.const 4) (i32.const 2)) "integer divide by zero")
        (assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "out of bounds memory access")
        (assert_exhaustion (invoke "rec") "call stack exhausted")
        (assert_invalid (module (func (result i32) (i64.const 0))) "type mismatch")
    """))
    for metered in (False, True):
        result = spec_suite.run_file(wast, metered=metered, cache_root=tmp_path / "cache")
        assert result.category == "integer"
        assert result.failed == 3, result.failures
        assert sorted(f.line for f in result.failures) == [15, 18, 19]
        assert result.passed == 6
        assert sum(result.exhaustion.values()) == 1
    assert result.exhaustion == {"stack limiter": 1}


def test_without_the_suite_the_runner_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(spec_suite.SUITE_ENV, str(tmp_path / "absent"))
    monkeypatch.setattr(spec_suite, "REPO_ROOT", tmp_path / "repo")
    assert spec_suite.find_suite() is None
    assert spec_suite.main([]) == 2
    err = capsys.readouterr().err
    assert "WebAssembly/testsuite" in err and spec_suite.SUITE_COMMIT in err


@needs_suite
def test_every_invalid_and_malformed_module_of_the_suite_is_refused_by_the_transpiler_itself(results):
    """Not only later by wasmtime at deploy time: `meter` (and so `ewasm check`) says so."""
    accepted = [f for r in results.values() for f in r.failures if f.command in ("assert_invalid", "assert_malformed")]
    assert accepted == []
    assert sum(r.refused_by_meter for r in results.values()) > 3000  # 3,957 at the pinned commit
