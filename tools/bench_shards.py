#!/usr/bin/env python3
"""Shards measured on one node: the same signed transfers with 1, 2 and 4 shards.

    python tools/bench_shards.py [--shards 1,2,4] [--cross-shard 0,0.1] [--transactions T]
                                 [--senders S] [--validators N [--engine pbft|poa]]
                                 [--json OUT] [--plot OUT.png]

For each shard count it writes a spec with `"shards": {"count": N}` (one node, a single
PoA authority sealing each shard's blocks every --block-period), runs `ewasm node run` on it, which runs
each shard in a process of its own behind one JSON-RPC port (ewasm_cli/shard_node.py),
and sends the transfers to /shard/K, from senders spread evenly over the shards, each
to an address on its own shard, or, for the --cross-shard fraction of them, through the
system outbox to an address on the next shard. The request bodies are made before the
clock starts, so the client's JSON work is not counted. It reports, per shard count and
cross-shard fraction, the throughput from the first send until every transfer is in a
block and every receipt delivered, each shard process's CPU, the speedup over one shard
(intra-shard), and for cross-shard transfers the latency from the send, and from the
source block (final at once under a single authority), to the delivery on the other
shard, p50 and p99, over a sample of LATENCY_SAMPLE transfers polled every 50 ms.

On a machine of C cores the shards can use min(N, C) of them; the client that sends the
transfers runs on the same cores. With --validators N it runs the same on a consortium
(`network init --shards`): N nodes, each running every shard, so N × shards processes
share the cores and the figures measure consensus as much as execution. CPU is then
node 0's shard processes.
"""

from __future__ import annotations

import argparse
import contextlib
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
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from chain.core.keys import PrivateKey  # noqa: E402
from chain.core.params import DEFAULT_MAX_FEE  # noqa: E402
from chain.core.shards import ShardLayout  # noqa: E402
from chain.core.system import OUTBOX  # noqa: E402
from chain.tx.signing import sign_scoped_transaction  # noqa: E402
from contracts import outbox_accounts  # noqa: E402
from ewasm_cli.local_network import LocalNetwork, free_port_block  # noqa: E402
from ewasm_cli.network_commands import initialize_network  # noqa: E402

console = Console(stderr=True)
CHAIN_ID = 1337
REPO = Path(__file__).resolve().parents[1]
BATCH = 200
# Cross-shard transfers whose latency is followed (evenly spread): polling every one
# would load the shards it measures.
LATENCY_SAMPLE = 100


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


def signed_transfers(senders: list[PrivateKey], count: int, chain_id: int, *, cross: float = 0.0,
                     elsewhere: bytes = b"") -> tuple[list[bytes], set[int]]:
    """`count` transfers from `senders` in turn, in nonce order per sender: each to a
    fresh address on the sender's own shard (its first byte) or, for a `cross` fraction
    spread evenly, through the outbox to a fresh address starting with `elsewhere`.
    Returns the raw transactions and the positions of the cross-shard ones."""
    nonces = [0] * len(senders)
    raws, crossing = [], set()
    for i in range(count):
        s = i % len(senders)
        key = senders[s]
        if cross and int((i + 1) * cross) > int(i * cross):
            to = elsewhere + (0xC00000 + i).to_bytes(19, "big")
            raw = sign_scoped_transaction(key, chain_id=chain_id, nonce=nonces[s], gas_limit=100_000, to=OUTBOX,
                                          value=1, data=to, scope=[key.address, OUTBOX],
                                          max_fee_per_gas=DEFAULT_MAX_FEE, max_priority_fee_per_gas=1)
            crossing.add(i)
        else:
            to = key.address[:1] + (0xB00000 + i).to_bytes(19, "big")
            raw = sign_scoped_transaction(key, chain_id=chain_id, nonce=nonces[s], gas_limit=21_000, to=to,
                                          value=1, scope=[key.address, to], max_fee_per_gas=DEFAULT_MAX_FEE,
                                          max_priority_fee_per_gas=1)
        raws.append(raw)
        nonces[s] += 1
    return raws, crossing


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shard_pids(pid: int) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]


def run_one(count: int, cross: float, args, root: Path) -> dict:
    layout = ShardLayout(count)
    per_shard = max(1, args.senders // count)
    keys = senders_by_shard(layout, per_shard)
    share = args.transactions // count
    signed = [signed_transfers(keys[k], share, CHAIN_ID + k, cross=cross,
                               elsewhere=bytes((layout.first_bytes((k + 1) % count)[0],)))
              for k in range(count)]
    plans, crossing = [plan for plan, _ in signed], [positions for _, positions in signed]
    if args.validators > 1:
        return run_network(count, cross, args, root, keys, plans, crossing)
    authority = PrivateKey.from_hex("a0" * 32)
    spec = {"name": f"bench-{count}-shards",
            "engine": {"poa": {"authority": "0x" + authority.address.hex(), "blockPeriod": args.block_period}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 1_000_000_000}, "shards": {"count": count},
            "accounts": {**{"0x" + key.address.hex(): {"balance": str(10**24)} for shard in keys for key in shard},
                         **(outbox_accounts() if count > 1 else {})}}
    name = f"{count}-{cross}"
    spec_path = root / f"spec{name}.json"
    spec_path.write_text(json.dumps(spec))
    datadir = root / f"node{name}"
    for k in range(count):  # one shard too runs as a sharded node: behind the router, in a process of its own
        subprocess.run([sys.executable, "-m", "ewasm_cli", "node", "init", "--spec", str(spec_path), "--shard",
                        str(k), "--datadir", str(datadir / f"shard{k}")], cwd=REPO, check=True, capture_output=True)
    port = free_port_block(1)
    node = subprocess.Popen([sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", str(datadir),
                             "--rpc-port", str(port), "--key", authority.secret.hex(),
                             *([] if args.keep else ["--quiet"])],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        while not line.startswith("JSON-RPC on http://"):  # the last line of the banner
            line = node.stdout.readline()
            if not line:
                raise RuntimeError("the node exited before it served JSON-RPC")
        urls = [f"http://127.0.0.1:{port}/shard/{k}" for k in range(count)]
        return measure(urls, plans, crossing, keys, shard_pids(node.pid), args.timeout) | {"shards": count,
                                                                                     "cross_shard": cross}
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.kill()


def run_network(count: int, cross: float, args, root: Path, keys, plans, crossing) -> dict:
    """The same on a consortium: `network init --shards` with --validators nodes, each
    running every shard; shard k's transfers go to node k mod n."""
    directory = root / f"net{count}-{cross}"
    base = free_port_block(2 * args.validators + args.validators * count)
    initialize_network(SimpleNamespace(
        dir=directory, validators=args.validators, regular=0, engine=args.engine, step_duration=args.block_period,
        block_period=args.block_period, request_timeout=max(1.0, 4 * args.block_period), epoch_length=30_000,
        base_port=base, chain_id=CHAIN_ID, dev_key=None, admin_key=None, json=False, shards=count,
        fund=[key.address for shard in keys for key in shard]))
    network = LocalNetwork(directory, args.validators, ("--quiet",) if not args.keep else ())
    try:
        network.start(120)
        urls = [f"http://127.0.0.1:{base + 2 * (k % args.validators)}/" + (f"shard/{k}" if count > 1 else "")
                for k in range(count)]
        first = network.children[0].pid
        pids = shard_pids(first) if count > 1 else [first]
        return measure(urls, plans, crossing, keys, pids, args.timeout) | {"shards": count, "cross_shard": cross,
                                                                           "validators": args.validators}
    finally:
        network.stop()


def measure(urls: list[str], plans: list[list[bytes]], crossing: list[set[int]], keys: list[list[PrivateKey]],
            pids: list[int], timeout: float) -> dict:
    batches = [[plan[i:i + BATCH] for i in range(0, len(plan), BATCH)] for plan in plans]
    bodies = [[json.dumps([{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction",
                            "params": ["0x" + raw.hex()]} for j, raw in enumerate(batch)]).encode()
               for batch in shard] for shard in batches]
    failures: list[str] = []
    sent_at: dict[tuple[int, str], float] = {}  # cross-shard transfers: (shard, tx hash) -> when sent

    def send(k: int) -> None:
        position = 0
        for body, batch in zip(bodies[k], batches[k]):
            answers = post(urls[k], body)
            now = time.perf_counter()
            refused = [a["error"]["message"] for a in answers if "error" in a]
            if refused:
                failures.append(f"shard {k} refused a transfer: {refused[0]}")
                return
            for j, answer in enumerate(sorted(answers, key=lambda a: a["id"])):
                if position + j in crossing[k]:
                    sent_at[(k, answer["result"])] = now
            position += len(batch)

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
    counts = [json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionCount",
                           "params": ["0x" + key.address.hex(), "latest"]} for i, key in enumerate(shard)]).encode()
              for shard in keys]

    def all_included() -> bool:
        return sum(int(a["result"], 16) for k, url in enumerate(urls) for a in post(url, counts[k])) >= total

    sample = dict(list(sent_at.items())[::max(1, len(sent_at) // LATENCY_SAMPLE)])
    included_at, delivered_at = follow(urls, sample, start, timeout, all_included)
    wall = time.perf_counter() - start
    cpu = [round((cpu_seconds(pid) - before) / wall, 2) for pid, before in zip(pids, cpu_before)]
    row = {"transactions": total, "cross_shard_transfers": len(sent_at), "seconds": round(wall, 3),
           "tx_per_s": round(total / wall, 1), "cpu_share_per_shard": cpu}
    if sent_at:
        from_send = sorted(delivered_at[t] - sample[t] for t in sample)
        from_block = sorted(delivered_at[t] - included_at[t] for t in sample)
        row |= {"latency_from_send_s": {"p50": _pct(from_send, 50), "p99": _pct(from_send, 99)},
                "latency_from_source_block_s": {"p50": _pct(from_block, 50), "p99": _pct(from_block, 99)}}
    return row


def follow(urls: list[str], sent_at: dict, start: float, timeout: float, all_included):
    """Poll until every transfer is in a block and every receipt delivered: when each
    cross-shard transfer's source block was seen (eth_getTransactionReceipt, which names
    the receipt's id), and when its destination shard had consumed the receipt
    (ewasm_getReceiptStatus). Each transfer goes to the next shard."""
    destinations = {t: (t[0] + 1) % len(urls) for t in sent_at}
    included_at: dict = {}
    delivered_at: dict = {}
    receipt_ids: dict = {}
    senders_done = False
    while True:
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"after {timeout} s, {len(delivered_at)} of {len(sent_at)} receipts delivered")
        for k in range(len(urls)):
            mine = [t for t in sent_at if t[0] == k and t not in included_at]
            if mine:
                answers = post(urls[k], [{"jsonrpc": "2.0", "id": i, "method": "ewasm_getTransactionResult",
                                          "params": [t[1]]} for i, t in enumerate(mine)])
                seen = time.perf_counter()
                for answer in answers:
                    result = answer.get("result")
                    if result:
                        t = mine[answer["id"]]
                        included_at[t] = seen
                        receipt_ids[t] = result["crossShardReceipts"][0]
        for dest in range(len(urls)):
            mine = [t for t in receipt_ids if destinations[t] == dest and t not in delivered_at]
            if mine:
                answers = post(urls[dest], [{"jsonrpc": "2.0", "id": i, "method": "ewasm_getReceiptStatus",
                                             "params": [receipt_ids[t]]} for i, t in enumerate(mine)])
                seen = time.perf_counter()
                for answer in answers:
                    if answer["result"]["status"] != "pending":
                        delivered_at[mine[answer["id"]]] = seen
        senders_done = senders_done or all_included()
        if senders_done and len(delivered_at) == len(sent_at):
            return included_at, delivered_at
        time.sleep(0.05)


@contextlib.contextmanager
def _kept(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    yield str(directory)


def _pct(values: list[float], p: int) -> float:
    return round(values[min(len(values) - 1, len(values) * p // 100)], 3)


def report(rows: list[dict]) -> None:
    where = f"{rows[0].get('validators', 1)} validators" if rows[0].get("validators", 1) > 1 else "one node"
    table = Table(title=f"transfers on {where} ({os.cpu_count()} cores)")
    for column in ("shards", "cross-shard", "transfers", "tx/s", "speedup", "latency p50/p99 from send (s)",
                   "from source block (s)", "CPU per shard (cores)"):
        table.add_column(column, justify="right")
    for row in rows:
        send, block = row.get("latency_from_send_s"), row.get("latency_from_source_block_s")
        table.add_row(str(row["shards"]), f"{row['cross_shard']:.0%}", str(row["transactions"]),
                      f"{row['tx_per_s']:.0f}", f"{row['speedup']:.2f}x",
                      f"{send['p50']:.2f} / {send['p99']:.2f}" if send else "-",
                      f"{block['p50']:.2f} / {block['p99']:.2f}" if block else "-",
                      " ".join(f"{c:.2f}" for c in row["cpu_share_per_shard"]))
    Console().print(table)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 4))
    for cross in sorted({r["cross_shard"] for r in rows}):
        mine = [r for r in rows if r["cross_shard"] == cross]
        ax.plot([r["shards"] for r in mine], [r["speedup"] for r in mine], marker="o",
                label=f"measured, {cross:.0%} cross-shard")
    shards = sorted({r["shards"] for r in rows})
    ax.plot(shards, [min(s, os.cpu_count() or 1) for s in shards], linestyle="--", label="min(shards, cores)")
    ax.set_xlabel("shards")
    ax.set_ylabel("speedup over one shard")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="1,2,4", help="shard counts to measure (default 1,2,4)")
    parser.add_argument("--cross-shard", default="0,0.1", metavar="F,F",
                        help="fractions of the transfers that go to another shard (default 0,0.1: all intra-shard, "
                             "then 10%% cross-shard)")
    parser.add_argument("--transactions", type=int, default=8000)
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--block-period", type=float, default=0.25, metavar="S",
                        help="seconds between a shard's blocks (default 0.25)")
    parser.add_argument("--validators", type=int, default=1, metavar="N",
                        help="run a consortium of N validators, each running every shard (default 1: one node)")
    parser.add_argument("--engine", choices=["pbft", "poa"], default="pbft", help="the consortium's engine")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="run the nodes in DIR and keep it, with each shard's log (default: a temporary folder)")
    parser.add_argument("--json", type=Path, metavar="OUT")
    parser.add_argument("--plot", type=Path, metavar="OUT.png")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.shards.split(",")]
    fractions = [float(f) for f in args.cross_shard.split(",")]
    rows = []
    with (tempfile.TemporaryDirectory() if args.keep is None else _kept(args.keep)) as tmp:
        for cross in fractions:
            for count in counts:
                if cross and count == 1:
                    continue  # one shard has nowhere to send
                console.print(f"{count} shard(s), {cross:.0%} cross-shard: signing {args.transactions} transfers, "
                              "starting the node ...")
                rows.append(run_one(count, cross, args, Path(tmp)))
    base = next((r["tx_per_s"] for r in rows if r["shards"] == 1), rows[0]["tx_per_s"])
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
