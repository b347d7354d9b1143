"""Metered and original smith modules behave identically, and gas is exact to the unit.

The fuzzer is tools/fuzz_metering.py (it runs 10,000+ modules from the command line); these
tests run 1,000 generated modules with a fixed master seed, so a failure reproduces exactly.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

import metering
from tools import fuzz_metering as fz

# One worker runs them all: the thousand modules behind `report` are metered and run once.
pytestmark = pytest.mark.xdist_group("differential-fuzz")

MASTER_SEED = int(os.environ.get("EWASM_FUZZ_SEED", "20240601"))
MODULES = 1000


def _describe(report: fz.Report) -> str:
    return "\n".join(f"{m.kind} {m.module} {m.export!r}: {m.detail}" for m in report.mismatches[:10])


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> fz.Report:
    save = tmp_path_factory.mktemp("fuzz-reproducers")
    return fz.fuzz(MODULES, MASTER_SEED, jobs=1, save_dir=save)


def test_a_thousand_smith_modules_are_metered_and_compared(report):
    assert report.modules == MODULES
    assert report.refused == 0, _describe(report)
    assert report.compared + report.uninstantiable >= MODULES * 0.95
    assert report.calls >= 5 * MODULES


def test_metered_modules_give_the_same_results_traps_and_state_as_the_originals(report):
    assert [m for m in report.mismatches if m.kind in ("behaviour", "state", "instantiate", "harness")] == [], \
        _describe(report)


def test_every_returning_call_runs_out_with_one_gas_less_and_ends_at_zero_with_exactly_enough(report):
    assert report.gas_exact >= MODULES // 2
    assert [m for m in report.mismatches if m.kind == "gas"] == [], _describe(report)


def test_the_optimised_injector_charges_and_runs_out_exactly_where_the_reference_does(report):
    assert report.reference_checked == report.gas_exact
    assert report.oog_points >= 50, "too few trapping calls had their out-of-gas point compared"
    assert report.oog_states >= 2 * report.reference_checked, "too few short-of-gas runs compared"
    assert [m for m in report.mismatches if m.kind.startswith(("reference", "oog"))] == [], _describe(report)
    assert report.reproducers == []


def test_the_fuzzer_notices_an_injector_that_charges_differently_from_the_reference():
    """The oracle can fail: a cost table one gas dearer for i32.add is caught as a gas mismatch."""
    costs = metering.load_costs()
    i32_add = 0x6A
    dearer = dataclasses.replace(costs, weights={**costs.weights, i32_add: costs.cost(i32_add) + 1})
    honest = fz.default_checker()
    skewed = fz.Checker(lambda w: metering.meter(w, costs=dearer, max_memory_pages=fz.MAX_PAGES), honest.reference)
    found = fz.Report()
    for wasm in fz.generate_batch(fz.seeds_for(MASTER_SEED, 60)):
        if wasm is not None and b"\x6a" in wasm:
            found.merge(skewed.run_module(wasm))
    assert any(m.kind == "reference-gas" for m in found.mismatches)
    assert not any(m.kind in ("behaviour", "state") for m in found.mismatches)


def test_smith_modules_are_refused_exactly_when_they_use_floats_or_simd_anywhere():
    """Floats in imports, globals, locals, block types, dead code...: wasm-tools is the judge."""
    modules = [m for m in fz.generate_batch(fz.seeds_for(MASTER_SEED + 1, 300), floats=True) if m]
    floaty = sum(fz.uses_floats(m) for m in modules)
    assert len(modules) >= 280 and 100 <= floaty <= len(modules) - 30
    assert [m for m in map(fz.float_refusal_mismatch, modules) if m] == []


def test_the_start_section_is_removed_and_the_module_stays_valid():
    import wasmtime

    wasm = wasmtime.wat2wasm('(module (global (export "g") (mut i32) (i32.const 0)) '
                             '(func $s (global.set 0 (i32.const 7))) (start $s) (func (export "f")))')
    stripped = fz.strip_start(wasm)
    assert len(stripped) < len(wasm)
    store = wasmtime.Store()
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, stripped), [])
    assert instance.exports(store)["g"].value(store) == 0
