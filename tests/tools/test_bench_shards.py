"""The shard benchmark, short version: one node with one and then two shards takes a few
hundred intra-shard transfers, then two shards take them with 10% cross-shard
(tools/bench_shards.py); every one lands in a block of its sender's shard, every receipt
is delivered, and the figures, latencies and the plot are written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("network")


def test_one_and_two_shards_take_every_transfer_and_the_figures_are_written(tmp_path):
    out, plot = tmp_path / "shards.json", tmp_path / "shards.png"
    result = subprocess.run([sys.executable, "tools/bench_shards.py", "--shards", "1,2", "--transactions", "400",
                             "--senders", "8", "--timeout", "120", "--json", str(out), "--plot", str(plot)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [(r["shards"], r["cross_shard"], r["transactions"]) for r in rows] == [(1, 0, 400), (2, 0, 400),
                                                                               (2, 0.1, 400)]
    assert rows[0]["speedup"] == 1.0 and all(r["tx_per_s"] > 0 for r in rows)
    assert [len(r["cpu_share_per_shard"]) for r in rows] == [1, 2, 2]
    crossing = rows[2]
    assert crossing["cross_shard_transfers"] == 40
    assert 0 <= crossing["latency_from_source_block_s"]["p50"] <= crossing["latency_from_send_s"]["p99"]
    assert plot.stat().st_size > 0
