"""tools/bench_metering.py measures real runs: same results in all three columns, real gas."""

from __future__ import annotations

import json

import wasmtime

from tools import bench_metering


def test_every_workload_gives_the_same_result_plain_with_fuel_and_metered():
    rows = bench_metering.bench_workloads(quick=True, reps=1)
    assert [r.workload for r in rows] == list(bench_metering.WORKLOADS)
    for r in rows:
        assert r.result_agrees, r.workload
        assert r.gas_used > 1000, r.workload
        assert r.plain_s > 0 and r.fuel_s > 0 and r.ours_s > 0


def test_the_geometric_mean_of_ratios():
    assert abs(bench_metering.geomean([1.0, 4.0]) - 2.0) < 1e-12


def test_the_generated_throughput_module_is_valid_and_as_large_as_asked():
    wasm = bench_metering.generate_large_module(100_000)
    assert 100_000 <= len(wasm) < 130_000
    wasmtime.Module(wasmtime.Engine(), wasm)
    tp = bench_metering.bench_throughput(100_000, reps=1)
    assert tp.module_bytes == len(wasm) and tp.output_bytes > tp.module_bytes and tp.mb_per_s > 0


def test_the_command_writes_its_figures_as_json(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_metering, "WORKLOADS", dict(list(bench_metering.WORKLOADS.items())[:1]))
    out = tmp_path / "bench.json"
    assert bench_metering.main(["--quick", "--reps", "1", "--size", "50000", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"rows", "geomean", "throughput"}
    assert data["rows"][0]["result_agrees"] is True
