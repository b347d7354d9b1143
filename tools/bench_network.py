#!/usr/bin/env python3
"""A PoA or PBFT consortium on loopback, measured: throughput, time to finality, CPU per node.

    python tools/bench_network.py [--engine poa|pbft] [--nodes N] [--transactions T] [--senders S]
                                  [--step-duration D] [--request-timeout S] [--rate R]
                                  [--json OUT] [--plot OUT.png]

`--step-duration` is PoA's step or PBFT's block period. It writes a network with
`network init` (N validators, the senders funded), runs each
node as its own process, and sends presigned transfers to all of them at once, spread
evenly: sender s always through node s mod N, so every node takes a share: all at once
(the most the network takes), or paced at R transfers a second (`--rate`: the latency
at a given load, free of the queue a burst builds). It reports:

- end-to-end tx/s: from the first send to the moment every node holds every transfer;
- the latency from a transfer's send to the moment its block is final (p50, p99);
- each node's CPU (user + system seconds over the run, as a share of one core);
- the single-node pipeline on the same transfers in the same run (tools/bench_chain.py's
  run_pipeline), and the network's throughput as a fraction of it.

Every node re-executes every block, so the ceiling on a machine of C cores is about the
single-node pipeline x C / N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench_chain import run_pipeline  # noqa: E402
from chain.core.hashing import keccak256  # noqa: E402
from chain.core.keys import PrivateKey  # noqa: E402
from chain.core.params import DEFAULT_MAX_FEE  # noqa: E402
from chain.tx.signing import sign_scoped_transaction  # noqa: E402
from ewasm_cli.local_network import LocalNetwork, free_port_block  # noqa: E402
from ewasm_cli.network_commands import initialize_network  # noqa: E402

console = Console(stderr=True)
CHAIN_ID = 1337


def post(url: str, payload):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def call(url: str, method: str, *params):
    answer = post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def consensus_messages(urls: list[str]) -> int:
    """Consensus messages the nodes have sent, one per peer that got it (PBFT; 0 for PoA)."""
    return sum(call(u, "ewasm_consensusStatus").get("messagesSent", 0) for u in urls)


def wait_for_blocks(urls: list[str], count: int, timeout: float) -> None:
    """Until every node has `count` blocks (the network is up and making them)."""
    deadline = time.monotonic() + timeout
    while min(int(call(u, "eth_blockNumber"), 16) for u in urls) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {count} blocks on every node within {timeout} s")
        time.sleep(0.1)


def signed_transfers(senders: list[PrivateKey], count: int) -> list[list[bytes]]:
    """Per sender, its transfers (value 1 to fresh addresses), nonces from 0."""
    plans: list[list[bytes]] = [[] for _ in senders]
    for i in range(count):
        s = i % len(senders)
        to = (0xB000000 + i).to_bytes(20, "big")
        plans[s].append(sign_scoped_transaction(senders[s], chain_id=CHAIN_ID, nonce=len(plans[s]), gas_limit=21_000,
                                                to=to, value=1, scope=[senders[s].address, to],
                                                max_fee_per_gas=DEFAULT_MAX_FEE, max_priority_fee_per_gas=1))
    return plans


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args) -> dict:
    senders = [PrivateKey.from_hex(f"{0x5E000 + i:064x}") for i in range(args.senders)]
    console.print(f"signing {args.transactions} transfers from {args.senders} senders ...")
    plans = signed_transfers(senders, args.transactions)
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.dir or Path(tmp)) / "net"
        initialize_network(SimpleNamespace(dir=root, validators=args.nodes, regular=0, engine=args.engine,
                                           step_duration=args.step_duration, block_period=args.step_duration,
                                           request_timeout=args.request_timeout,
                                           base_port=free_port_block(2 * args.nodes),
                                           chain_id=CHAIN_ID, dev_key=None, admin_key=None, json=False,
                                           fund=[s.address for s in senders]))
        spec = json.loads((root / "spec.json").read_text())
        network = LocalNetwork(root, args.nodes)
        try:
            urls = network.start()
            wait_for_blocks(urls, 2, args.timeout)  # peers connected, a block or two made
            figures = load(args, urls, plans, [c.pid for c in network.children])
        finally:
            network.stop()
    console.print("the single-node pipeline on the same transfers ...")
    single = run_pipeline([raw for plan in plans for raw in plan], [], [], block_size=5000, spec_data=spec)
    figures["single_node_tx_per_s"] = round(single["tx_per_s"], 1)
    figures["fraction_of_single_node"] = round(figures["tx_per_s"] / single["tx_per_s"], 3)
    return figures


def load(args, urls: list[str], plans: list[list[bytes]], pids: list[int]) -> dict:
    sent_at: dict[str, float] = {}  # tx hash -> when its batch went out
    lock = threading.Lock()

    share = args.rate / len(urls) if args.rate else None  # tx/s each node is offered
    size = 200 if share is None else max(1, min(200, int(share / 10)))  # paced: ten batches a second

    def bodies(k: int) -> list[tuple[list[str], bytes]]:
        """Node k's share as ready request bodies (the client's JSON work is not the network's)."""
        mine = [plan for s, plan in enumerate(plans) if s % len(urls) == k]
        ordered = [raw for round_ in zip(*mine) for raw in round_] if mine else []
        rest = [raw for plan in mine for raw in plan[min(map(len, mine)):]] if mine else []
        raws = ordered + rest
        batches = [raws[first:first + size] for first in range(0, len(raws), size)]
        return [(["0x" + keccak256(raw).hex() for raw in batch],
                 json.dumps([{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction",
                              "params": ["0x" + raw.hex()]} for j, raw in enumerate(batch)]).encode())
                for batch in batches]

    def send(k: int, batches: list[tuple[list[str], bytes]]) -> None:
        done = 0
        for hashes, body in batches:
            if share is not None:  # open loop: each batch at its time, however the last one went
                time.sleep(max(0.0, start + done / share - time.perf_counter()))
            now = time.perf_counter()
            with lock:
                sent_at.update(dict.fromkeys(hashes, now))
            request = urllib.request.Request(urls[k], data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                answers = json.loads(response.read())
            refused = [a["error"]["message"] for a in answers if "error" in a]
            if refused:
                raise RuntimeError(f"node{k} refused a transfer: {refused[0]}")
            done += len(hashes)

    final_at: dict[int, float] = {}
    stop = threading.Event()

    def watch_finality() -> None:
        seen = 0
        while not stop.is_set():
            try:
                final = call(urls[0], "ewasm_consensusStatus")["finalized"]
            except OSError:  # the network is going down
                return
            now = time.perf_counter()
            for number in range(seen + 1, final + 1):
                final_at[number] = now
            seen = max(seen, final)
            time.sleep(0.1)

    head_before = max(int(call(u, "eth_blockNumber"), 16) for u in urls)
    cpu_before = [cpu_seconds(pid) for pid in pids]
    messages_before = consensus_messages(urls)
    watcher = threading.Thread(target=watch_finality, daemon=True)
    watcher.start()
    prepared = [bodies(k) for k in range(len(urls))]
    start = time.perf_counter()
    senders = [threading.Thread(target=send, args=(k, prepared[k])) for k in range(len(urls))]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    sent = time.perf_counter()
    total = sum(len(p) for p in plans)
    addresses = ["0x" + PrivateKey.from_hex(f"{0x5E000 + i:064x}").address.hex() for i in range(len(plans))]
    while True:
        counts = [sum(int(c, 16) for c in [r.get("result", "0x0") for r in post(u, [
            {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionCount", "params": [a, "latest"]}
            for i, a in enumerate(addresses)])]) for u in urls]
        if min(counts) >= total:
            break
        if time.perf_counter() - start > args.timeout:
            raise RuntimeError(f"after {args.timeout} s only {min(counts)} of {total} transfers on every node")
        time.sleep(0.2)  # the polling is load on the nodes too: keep it light
    everywhere = time.perf_counter()
    cpu_after = [cpu_seconds(pid) for pid in pids]
    messages = consensus_messages(urls) - messages_before
    head = min(int(call(u, "eth_blockNumber"), 16) for u in urls)
    while max(final_at, default=0) < head and time.perf_counter() - everywhere < 60:
        time.sleep(0.05)
    stop.set()
    block_of = {}
    for number in range(head_before + 1, head + 1):
        for tx_hash in call(urls[0], "eth_getBlockByNumber", hex(number), False)["transactions"]:
            block_of[tx_hash] = number
    latencies = sorted(final_at[block_of[h]] - t for h, t in sent_at.items() if block_of.get(h) in final_at)
    wall = everywhere - start
    return {
        "engine": args.engine, "nodes": len(urls), "transactions": total, "senders": len(plans),
        "step_duration": args.step_duration,
        "offered_tx_per_s": args.rate,
        "seconds": round(wall, 3), "sending_seconds": round(sent - start, 3),
        "tx_per_s": round(total / wall, 1),
        "finality_latency_s": {"p50": round(statistics.median(latencies), 3),
                               "p99": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 3),
                               "samples": len(latencies)},
        "blocks": head - head_before,
        "consensus_messages_per_block": round(messages / max(1, head - head_before), 1),
        "cpu_share_per_node": [round((b - a) / wall, 2) for a, b in zip(cpu_before, cpu_after)],
    }


def report(figures: dict) -> None:
    timing = "s steps" if figures["engine"] == "poa" else "s block period"
    table = Table(title=f"{figures['nodes']} {figures['engine'].upper()} validators on loopback, "
                        f"{figures['step_duration']:g} {timing}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("transfers (senders)", f"{figures['transactions']} ({figures['senders']})")
    offered = figures["offered_tx_per_s"]
    table.add_row("offered", "all at once" if not offered else f"{offered:.0f} tx/s")
    table.add_row("end-to-end throughput", f"{figures['tx_per_s']:.0f} tx/s ({figures['seconds']:.2f} s)")
    lat = figures["finality_latency_s"]
    table.add_row("send to final, p50 / p99", f"{lat['p50']:.2f} / {lat['p99']:.2f} s")
    table.add_row("blocks", str(figures["blocks"]))
    if figures["engine"] == "pbft":
        table.add_row("consensus messages per block", f"{figures['consensus_messages_per_block']:.0f}")
    table.add_row("CPU per node (cores)", " ".join(f"{c:.2f}" for c in figures["cpu_share_per_node"]))
    table.add_row("single-node pipeline", f"{figures['single_node_tx_per_s']:.0f} tx/s")
    table.add_row("network / single node", f"{figures['fraction_of_single_node']:.2f}")
    Console().print(table)


def plot(figures: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(["network", "single node"], [figures["tx_per_s"], figures["single_node_tx_per_s"]])
    left.set_ylabel("tx/s")
    left.set_title(f"{figures['nodes']} validators vs one node's pipeline")
    right.bar([f"node{k}" for k in range(figures["nodes"])], figures["cpu_share_per_node"])
    right.set_ylabel("CPU (cores)")
    right.set_title(f"finality p50 {figures['finality_latency_s']['p50']:.2f} s")
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--transactions", type=int, default=6000)
    parser.add_argument("--senders", type=int, default=40)
    parser.add_argument("--engine", choices=["poa", "pbft"], default="poa")
    parser.add_argument("--step-duration", type=float, default=1.0, help="PoA's step, or PBFT's block period")
    parser.add_argument("--request-timeout", type=float, default=2.0, help="PBFT's round-0 timer")
    parser.add_argument("--rate", type=float, help="offer the transfers at this many per second (default: at once)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--dir", type=Path, help="keep the network (datadirs, node logs) here")
    parser.add_argument("--json", type=Path, metavar="OUT")
    parser.add_argument("--plot", type=Path, metavar="OUT.png")
    args = parser.parse_args(argv)
    figures = run(args)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if args.plot:
        plot(figures, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
