"""The network benchmark, short version: two validators on loopback with half-second
steps take a few hundred transfers through both (tools/bench_network.py), every one
reaches both nodes and becomes final, and the figures and the plot are written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("network")


def test_two_validators_take_every_transfer_to_finality_and_the_figures_are_written(tmp_path):
    out, plot = tmp_path / "network.json", tmp_path / "network.png"
    result = subprocess.run([sys.executable, "tools/bench_network.py", "--nodes", "2", "--transactions", "300",
                             "--senders", "6", "--step-duration", "0.5", "--timeout", "120", "--json", str(out),
                             "--plot", str(plot)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["nodes"] == 2 and figures["transactions"] == 300 and figures["blocks"] >= 1
    assert figures["finality_latency_s"]["samples"] == 300  # every transfer's block became final
    assert 0 < figures["finality_latency_s"]["p50"] <= figures["finality_latency_s"]["p99"]
    assert figures["tx_per_s"] > 0 and figures["single_node_tx_per_s"] > figures["tx_per_s"]
    assert len(figures["cpu_share_per_node"]) == 2
    assert plot.stat().st_size > 0
