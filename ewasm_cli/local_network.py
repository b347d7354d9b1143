"""A local network of node processes: the datadirs `network init` wrote, each run by
`ewasm node run --datadir DIR/nodeK` as a child process with its log beside it. Used by
`ewasm devnet --nodes N`, `ewasm demo-chain`, tools/bench_network.py, and (over the
datadirs of a node's shards, DIR/shardK) by a sharded node (shard_node.py)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ewasm_cli.main import EXIT_REFUSED, CommandError


class LocalNetwork:
    def __init__(self, root: Path, count: int, extra_args: tuple[str, ...] = (), *,
                 datadirs: list[Path] | None = None, name: str = "node{}"):
        """`count` nodes on ROOT/node0 …, or on `datadirs`; `name` formats a node's
        number in messages."""
        self.root, self.count, self.extra_args, self.name = Path(root), count, tuple(extra_args), name
        self.datadirs = datadirs or [self.root / f"node{k}" for k in range(count)]
        self.children: list[subprocess.Popen] = []
        self.urls: list[str] = []

    def log(self, k: int) -> Path:
        return self.datadirs[k].with_suffix(".log")

    def start(self, timeout: float = 60) -> list[str]:
        """Start every node and return their RPC URLs once all serve."""
        # Where each log ends now: a restarted network appends, and the banner to wait for is the new one.
        self._log_starts = [self.log(k).stat().st_size if self.log(k).exists() else 0 for k in range(self.count)]
        for k in range(self.count):
            with open(self.log(k), "a") as log:
                self.children.append(subprocess.Popen(
                    [sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", str(self.datadirs[k]),
                     *self.extra_args], stdout=log, stderr=subprocess.STDOUT))
        self.urls = [self._wait_for_rpc(k, timeout) for k in range(self.count)]
        return self.urls

    def kill(self, k: int) -> None:
        """SIGKILL node k (a crash: no clean shutdown)."""
        self.children[k].send_signal(signal.SIGKILL)
        self.children[k].wait()

    def restart(self, k: int, timeout: float = 60, extra_args: tuple[str, ...] = ()) -> str:
        """Start node k again on its datadir (with `extra_args` this time); its RPC URL
        once it serves."""
        self._log_starts[k] = self.log(k).stat().st_size
        with open(self.log(k), "a") as log:
            self.children[k] = subprocess.Popen(
                [sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", str(self.datadirs[k]),
                 *self.extra_args, *extra_args], stdout=log, stderr=subprocess.STDOUT)
        self.urls[k] = self._wait_for_rpc(k, timeout)
        return self.urls[k]

    def check(self) -> None:
        """CommandError if a node has exited."""
        for k, child in enumerate(self.children):
            if child.poll() is not None:
                raise CommandError(f"{self.name.format(k)} exited with status {child.returncode}; see {self.log(k)}",
                                   EXIT_REFUSED)

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _wait_for_rpc(self, k: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        start = self._log_starts[k]
        while time.monotonic() < deadline:
            text = self.log(k).read_bytes()[start:].decode(errors="replace")
            match = re.search(r"JSON-RPC on (http://\S+)", text)
            if match:
                return match.group(1)
            if self.children[k].poll() is not None:
                raise CommandError(f"{self.name.format(k)} exited with status {self.children[k].returncode}: "
                                   f"{text[-500:]}", EXIT_REFUSED)
            time.sleep(0.05)
        raise CommandError(f"{self.name.format(k)} did not start within {timeout:.0f} s; see {self.log(k)}",
                           EXIT_REFUSED)


def free_port_block(count: int, start: int = 20000) -> int:
    """The first of `count` consecutive ports that are all free now."""
    for base in range(start, 60000, count):
        sockets = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise CommandError("no block of free ports on 127.0.0.1", EXIT_REFUSED)
