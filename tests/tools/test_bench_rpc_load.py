"""The node under hostile load, short version: a real node process on loopback gets
heavy eth_call batches, pool spam from unfunded keys and funded transfers all at once
(tools/bench_rpc_load.py --quick). No funded transfer is lost, eth_chainId is answered
within a second throughout, and the node's memory stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_under_heavy_calls_and_pool_spam_every_funded_transfer_is_included_and_eth_chain_id_stays_fast(tmp_path):
    out = tmp_path / "load.json"
    result = subprocess.run([sys.executable, "tools/bench_rpc_load.py", "--quick", "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    funded = figures["funded"]
    assert funded["accepted"] == funded["included"] == funded["succeeded"] == funded["expected"] == 200
    latency = figures["chain_id_latency_ms"]
    assert latency["errors"] == 0 and latency["samples"] >= 20  # (how many: as fast as the machine answers)
    assert latency["max"] < 1000, latency
    # 1,400 spam transactions from 20 keys: 64 queue per key at most, 1,024 in all; the rest refused.
    assert figures["spam"]["accepted"] <= 1024
    assert figures["spam"]["accepted"] + figures["spam"]["queue full"] + \
        figures["spam"]["too many queued transactions"] == 1400
    # The heavy batches were answered: a few calls ran out of gas, the rest exceeded the batch's budget.
    assert figures["heavy_answers"]["-32000"] > 0 and figures["heavy_answers"]["-32005"] > 0
    assert figures["rss_mb"]["peak"] < figures["rss_mb"]["start"] + 200, figures["rss_mb"]
