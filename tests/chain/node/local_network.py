"""Real node processes on loopback for the network tests: each `ewasm node run` with its
own datadir, node key, RPC port and p2p port, its log in a file."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from chain.core.keys import PrivateKey
from ewasm_cli.local_network import free_port_block  # noqa: F401  (the tests take it from here)

from chain_fixtures import REPO


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def rpc(port: int, method: str, *params, timeout: float = 30):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise AssertionError(f"{method}: {answer['error']}")
    return answer["result"]


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class NodeProcess:
    name: str
    key: PrivateKey
    datadir: Path
    p2p_port: int
    peers: list[int]
    log: Path
    process: subprocess.Popen | None = None
    rpc_port: int = 0

    from_config: bool = False  # run from the datadir's node.json (network init) instead of flags

    def start(self) -> "NodeProcess":
        args = [sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", str(self.datadir)]
        if not self.from_config:
            args += ["--key", self.key.secret.hex(), "--rpc-port", "0", "--p2p-port", str(self.p2p_port)]
            for port in self.peers:
                args += ["--peer", f"127.0.0.1:{port}"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log.stat().st_size if self.log.exists() else 0  # a restart appends
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.rpc_port = int(wait_for(self._rpc_port_from_log, 60, f"{self.name} to start"))
        return self

    def _rpc_port_from_log(self):
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
        match = re.search(r"JSON-RPC on http://127\.0\.0\.1:(\d+)/", self.log.read_bytes()[self._log_start:].decode())
        return match.group(1) if match else None

    def rpc(self, method: str, *params):
        return rpc(self.rpc_port, method, *params)

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block_hash(self, number: int) -> str:
        return self.rpc("eth_getBlockByNumber", hex(number), False)["hash"]

    def peer_ids(self) -> set[str]:
        return {peer["id"] for peer in self.rpc("ewasm_peers")}

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def init_datadir(spec: dict, directory: Path) -> None:
    spec_file = directory.with_suffix(".spec.json")
    spec_file.write_text(json.dumps(spec))
    subprocess.run([sys.executable, "-m", "ewasm_cli", "node", "init", "--spec", str(spec_file), "--datadir",
                    str(directory)], cwd=REPO, check=True, capture_output=True)
