"""The randomized fault runner, short version: a few rounds of crashes, pauses and lost
quorums on a PBFT consortium of real processes (tools/fault_runner.py), each round's
history checked on every node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("network")


def test_a_few_random_fault_rounds_leave_every_history_whole(tmp_path):
    out = tmp_path / "rounds.json"
    result = subprocess.run([sys.executable, "tools/fault_runner.py", "--rounds", "3", "--seed", "11", "--json",
                             str(out)], cwd=REPO, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rounds = json.loads(out.read_text())
    assert len(rounds) == 3 and all(r["height"] >= 2 for r in rounds)
    assert rounds[-1]["receipted"] > rounds[0]["receipted"]
