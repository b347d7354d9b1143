"""A real `ewasm devnet` process for the client tests, on a free port of its own choosing."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def start_devnet(datadir: Path, *options: str) -> tuple[subprocess.Popen, str, int]:
    """A real `ewasm devnet` process with `options` (say --dev-key HEX): (process, its
    banner, the port its JSON-RPC listens on)."""
    process = subprocess.Popen([sys.executable, "-m", "ewasm_cli", "devnet", "--rpc-port", "0", "--datadir",
                                str(datadir), "--quiet", *options], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    for line in process.stdout:
        output += line
        if "JSON-RPC on" in line:
            break
    match = re.search(r"JSON-RPC on http://[^:]+:(\d+)/", output)
    if match is None:
        stop(process)
        raise AssertionError(f"the devnet did not start:\n{output}")
    return process, output, int(match.group(1))


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, as an operator stops it; SIGKILL if it does not go within 30 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
