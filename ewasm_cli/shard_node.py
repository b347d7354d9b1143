"""`ewasm node run` on a sharded datadir: a process per shard, one JSON-RPC port for all.

`node init` of a spec with "shards" writes one datadir per shard, DIR/shard0 …
DIR/shardN-1. `node run --datadir DIR` then runs each shard as `node run --datadir
DIR/shardK` in a child process of its own (its log in DIR/shardK.log), so that shards
execute on separate cores, and serves them all on the node's RPC port: /shard/K is shard
K and / is shard 0 (chain/rpc/router.py). SIGINT or SIGTERM stops the shards and the
node; a shard that exits stops the node too, naming the shard and its log. A sharded
node runs alone for now: sharded networks are still to come (issue 12).
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from ewasm_cli.main import EXIT_OK, EXIT_REFUSED, CommandError

START_TIMEOUT = 60.0  # seconds for a shard to serve JSON-RPC


def shard_dirs(datadir: str) -> list[Path]:
    """DIR/shard0 … of a sharded datadir, in order ([] for any other datadir)."""
    root = Path(datadir)
    if (root / "data.mdb").is_file():
        return []
    dirs = []
    while (root / f"shard{len(dirs)}" / "data.mdb").is_file():
        dirs.append(root / f"shard{len(dirs)}")
    return dirs


class ShardProcesses:
    """The shards' child processes."""

    def __init__(self, dirs: list[Path], child_args: list[str]):
        self.dirs, self.child_args = dirs, child_args
        self.children: list[subprocess.Popen] = []
        self.urls: list[str] = []

    def log(self, k: int) -> Path:
        return self.dirs[k].with_suffix(".log")

    def start(self) -> list[str]:
        starts = []
        for k, datadir in enumerate(self.dirs):
            starts.append(self.log(k).stat().st_size if self.log(k).exists() else 0)
            with open(self.log(k), "a") as log:
                self.children.append(subprocess.Popen(
                    [sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", str(datadir), "--rpc-host",
                     "127.0.0.1", "--rpc-port", "0", *self.child_args], stdout=log, stderr=subprocess.STDOUT))
        self.urls = [self._wait_for_rpc(k, starts[k]) for k in range(len(self.dirs))]
        return self.urls

    def _wait_for_rpc(self, k: int, start: int) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = re.search(r"JSON-RPC on (http://\S+/)", self.log(k).read_bytes()[start:].decode(errors="replace"))
            if match:
                return match.group(1)
            if self.children[k].poll() is not None:
                raise CommandError(f"shard {k} exited with status {self.children[k].returncode}; see {self.log(k)}",
                                   EXIT_REFUSED)
            time.sleep(0.05)
        raise CommandError(f"shard {k} did not serve JSON-RPC within {START_TIMEOUT:.0f} s; see {self.log(k)}",
                           EXIT_REFUSED)

    def exited(self) -> str | None:
        """Why the node must stop: a shard that exited (None while all run)."""
        for k, child in enumerate(self.children):
            if child.poll() is not None:
                return f"shard {k} exited with status {child.returncode}; see {self.log(k)}"
        return None

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


def run_sharded(dirs: list[Path], host: str, port: int, child_args: list[str], max_body: int) -> int:
    """Run the shards and serve them on host:port until a signal (or a shard exits)."""
    from chain.rpc.router import ShardRouter

    shards = ShardProcesses(dirs, child_args)
    try:
        urls = shards.start()
        return asyncio.run(_serve(ShardRouter(urls, max_body), shards, host, port))
    finally:
        shards.stop()


async def _serve(router, shards: ShardProcesses, host: str, port: int) -> int:
    from aiohttp import web

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(router.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as err:
        await runner.cleanup()
        raise CommandError(f"cannot serve RPC on {host}:{port}: {err.strerror or err}", EXIT_REFUSED) from None
    bound = runner.addresses[0][1]
    for k, url in enumerate(shards.urls):
        print(f"shard {k}: JSON-RPC on http://{host}:{bound}/shard/{k}  (served by {url}, log {shards.log(k)})",
              flush=True)
    print(f"JSON-RPC on http://{host}:{bound}/  (shard 0 of {len(shards.urls)}; /shard/K for shard K)", flush=True)
    failure = None
    try:
        while not stop.is_set():
            failure = shards.exited()
            if failure:
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
    finally:
        await runner.cleanup()
    if failure:
        raise CommandError(failure, EXIT_REFUSED)
    return EXIT_OK
