#!/usr/bin/env python3
"""Shards measured on one node: the same signed transfers with 1, 2 and 4 shards.

    python tools/bench_shards.py [--shards 1,2,4] [--transactions T] [--senders S]
                                 [--json OUT] [--plot OUT.png]

For each shard count it writes a spec with `"shards": {"count": N}` (one node, a single
PoA authority sealing each shard's blocks every --block-period), runs `ewasm node run` on it, which runs
each shard in a process of its own behind one JSON-RPC port (ewasm_cli/shard_node.py),
and sends the transfers to /shard/K, from senders spread evenly over the shards, each
to an address on its own shard (intra-shard: cross-shard receipts are still to come).
The request bodies are made before the clock starts, so the client's JSON work is not
counted. It reports, per shard count, the throughput from the first send until every
transfer is in a block, each shard process's CPU, and the speedup over one shard.

On a machine of C cores the shards can use min(N, C) of them; the client that sends the
transfers runs on the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from chain.core.keys import PrivateKey  # noqa: E402
from chain.core.shards import ShardLayout  # noqa: E402
from chain.tx.signing import sign_scoped_transaction  # noqa: E402
from ewasm_cli.local_network import free_port_block  # noqa: E402

console = Console(stderr=True)
CHAIN_ID = 1337
REPO = Path(__file__).resolve().parents[1]
BATCH = 200


def post(url: str, payload) -> object:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def senders_by_shard(layout: ShardLayout, per_shard: int) -> list[list[PrivateKey]]:
    """`per_shard` deterministic keys whose addresses are on each shard."""
    found: list[list[PrivateKey]] = [[] for _ in range(layout.count)]
    i = 0
    while min(map(len, found)) < per_shard:
        key = PrivateKey.from_hex(f"{0x5A000 + i:064x}")
        shard = layout.shard_of(key.address)
        if len(found[shard]) < per_shard:
            found[shard].append(key)
        i += 1
    return found


def signed_transfers(senders: list[PrivateKey], count: int, chain_id: int) -> list[bytes]:
    """`count` transfers from `senders` in turn, each to a fresh address on the sender's
    own shard (its first byte), in nonce order per sender."""
    nonces = [0] * len(senders)
    raws = []
    for i in range(count):
        s = i % len(senders)
        key = senders[s]
        to = key.address[:1] + (0xB00000 + i).to_bytes(19, "big")
        raws.append(sign_scoped_transaction(key, chain_id=chain_id, nonce=nonces[s], gas_limit=21_000, to=to,
                                            value=1, scope=[key.address, to], max_fee_per_gas=1,
                                            max_priority_fee_per_gas=1))
        nonces[s] += 1
    return raws


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shard_pids(pid: int) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]


def run_one(count: int, args, root: Path) -> dict:
    layout = ShardLayout(count)
    per_shard = max(1, args.senders // count)
    keys = senders_by_shard(layout, per_shard)
    share = args.transactions // count
    plans = [signed_transfers(keys[k], share, CHAIN_ID + k) for k in range(count)]
    authority = PrivateKey.from_hex("a0" * 32)
    spec = {"name": f"bench-{count}-shards",
            "engine": {"poa": {"authority": "0x" + authority.address.hex(), "blockPeriod": args.block_period}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 1_000_000_000}, "shards": {"count": count},
            "accounts": {"0x" + key.address.hex(): {"balance": str(10**24)} for shard in keys for key in shard}}
    spec_path = root / f"spec{count}.json"
    spec_path.write_text(json.dumps(spec))
    datadir = root / f"node{count}"
    for k in range(count):  # one shard too runs as a sharded node: behind the router, in a process of its own
        subprocess.run([sys.executable, "-m", "ewasm_cli", "node", "init", "--spec", str(spec_path), "--shard",
                        str(k), "--datadir", str(datadir / f"shard{k}")], cwd=REPO, check=True, capture_output=True)
    port = free_port_block(1)
    node = subprocess.Popen([sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", str(datadir),
                             "--rpc-port", str(port), "--key", authority.secret.hex(), "--quiet"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        while not line.startswith("JSON-RPC on http://"):  # the last line of the banner
            line = node.stdout.readline()
            if not line:
                raise RuntimeError("the node exited before it served JSON-RPC")
        urls = [f"http://127.0.0.1:{port}/shard/{k}" for k in range(count)]
        return measure(urls, plans, keys, shard_pids(node.pid), args.timeout) | {"shards": count}
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.kill()


def measure(urls: list[str], plans: list[list[bytes]], keys: list[list[PrivateKey]], pids: list[int],
            timeout: float) -> dict:
    bodies = [[json.dumps([{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction",
                            "params": ["0x" + raw.hex()]} for j, raw in enumerate(plan[i:i + BATCH])]).encode()
               for i in range(0, len(plan), BATCH)] for plan in plans]
    counts = [json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionCount",
                           "params": ["0x" + key.address.hex(), "latest"]} for i, key in enumerate(shard)]).encode()
              for shard in keys]
    failures: list[str] = []

    def send(k: int) -> None:
        for body in bodies[k]:
            refused = [a["error"]["message"] for a in post(urls[k], body) if "error" in a]
            if refused:
                failures.append(f"shard {k} refused a transfer: {refused[0]}")
                return

    cpu_before = [cpu_seconds(pid) for pid in pids]
    start = time.perf_counter()
    threads = [threading.Thread(target=send, args=(k,)) for k in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(failures[0])
    total = sum(map(len, plans))
    while True:
        included = sum(int(a["result"], 16) for k, url in enumerate(urls) for a in post(url, counts[k]))
        if included >= total:
            break
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"after {timeout} s only {included} of {total} transfers are in blocks")
        time.sleep(0.05)
    wall = time.perf_counter() - start
    cpu = [round((cpu_seconds(pid) - before) / wall, 2) for pid, before in zip(pids, cpu_before)]
    return {"transactions": total, "seconds": round(wall, 3), "tx_per_s": round(total / wall, 1),
            "cpu_share_per_shard": cpu}


def report(rows: list[dict]) -> None:
    table = Table(title=f"intra-shard transfers on one node ({os.cpu_count()} cores)")
    for column in ("shards", "transfers", "tx/s", "speedup", "CPU per shard (cores)"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["shards"]), str(row["transactions"]), f"{row['tx_per_s']:.0f}",
                      f"{row['speedup']:.2f}x", " ".join(f"{c:.2f}" for c in row["cpu_share_per_shard"]))
    Console().print(table)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 4))
    shards = [r["shards"] for r in rows]
    ax.plot(shards, [r["speedup"] for r in rows], marker="o", label="measured")
    ax.plot(shards, [min(s, os.cpu_count() or 1) for s in shards], linestyle="--", label="min(shards, cores)")
    ax.set_xlabel("shards")
    ax.set_ylabel("speedup over one shard")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="1,2,4", help="shard counts to measure (default 1,2,4)")
    parser.add_argument("--transactions", type=int, default=8000)
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--block-period", type=float, default=0.25, metavar="S",
                        help="seconds between a shard's blocks (default 0.25)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", type=Path, metavar="OUT")
    parser.add_argument("--plot", type=Path, metavar="OUT.png")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.shards.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            console.print(f"{count} shard(s): signing {args.transactions} transfers, starting the node ...")
            rows.append(run_one(count, args, Path(tmp)))
    base = rows[0]["tx_per_s"]
    for row in rows:
        row["speedup"] = round(row["tx_per_s"] / base, 3)
    report(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
