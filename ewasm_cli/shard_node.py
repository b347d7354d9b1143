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
import signal
from pathlib import Path

from ewasm_cli.local_network import LocalNetwork
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


def run_sharded(dirs: list[Path], host: str, port: int, child_args: list[str], max_body: int) -> int:
    """Run the shards and serve them on host:port until a signal (or a shard exits)."""
    from chain.rpc.router import ShardRouter

    shards = LocalNetwork(dirs[0].parent, len(dirs), ("--rpc-host", "127.0.0.1", "--rpc-port", "0", *child_args),
                          datadirs=dirs, name="shard {}")
    try:
        urls = shards.start(START_TIMEOUT)
        return asyncio.run(_serve(ShardRouter(urls, max_body), shards, host, port))
    finally:
        shards.stop()


async def _serve(router, shards: LocalNetwork, host: str, port: int) -> int:
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
    try:
        while not stop.is_set():
            shards.check()  # CommandError, naming the shard and its log, if one has exited
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
    finally:
        await runner.cleanup()
    return EXIT_OK
