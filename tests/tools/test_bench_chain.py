"""tools/bench_chain.py runs end to end on a small workload and reports its stages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_chain_reports_throughput_and_stage_breakdown(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "tools/bench_chain.py", "--transactions", "300", "--block-size", "100",
                             "--senders", "10", "--pyevm-transactions", "50", "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["ours"]["transactions"] == 300 and figures["ours"]["tx_per_s"] > 0
    assert {"decode + recover", "pool", "execute", "commitment", "commit"} <= set(figures["ours"]["stages"])
    assert figures["pyevm"]["transactions"] == 50


def test_bench_chain_parallel_reports_speedups_next_to_the_ideal_split(tmp_path):
    out, plot = tmp_path / "parallel.json", tmp_path / "scaling.png"
    result = subprocess.run([sys.executable, "tools/bench_chain.py", "parallel", "--transactions", "200",
                             "--block-size", "100", "--senders", "10", "--repeat", "1", "--workers", "1,2",
                             "--json", str(out), "--plot", str(plot)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert set(figures["speedup"]) == {"process 2", "thread 2", "ideal 2"}
    assert all(value > 0 for value in figures["speedup"].values())
    assert len(figures["samples"]["serial"]) == 2  # two blocks, one run each
    assert figures["helper_failures"] == 0
    assert plot.read_bytes().startswith(b"\x89PNG")
