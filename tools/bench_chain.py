#!/usr/bin/env python3
"""Chain throughput: signed token transfers through the whole pipeline, vs py-evm's chain.

    python tools/bench_chain.py [--transactions N] [--block-size B] [--senders S] [--json OUT]
                                [--tokens shared|per-sender] [--executor-workers N]
    python tools/bench_chain.py parallel [--workers 1,2,4] [--mode process,thread] [--transactions N] [--repeat R]

The pipeline is the node's: decode and signature recovery, pool admission, block
building, execution (the wasm token), the Merkle commitment and the lmdb commit. The
transactions are signed beforehand (that is the client's work). py-evm runs the same
workload in the same run: a Vyper token with the same ABI, real signed transactions,
`MiningChain.mine_all` per block (execution, tries, in-memory database).

`parallel` measures the parallel executor on disjoint scopes: every sender has its own
token contract, so blocks split into independent components. It reports the execution
speedup over the serial executor for each worker count and helper kind, next to the
"ideal split": the same shares run by processes that already hold them, which is the
most this machine gives for this work.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from chain.ledger.blockchain import Blockchain  # noqa: E402
from chain.execution.conflicts import conflict_components, schedule  # noqa: E402
from chain.execution.serial import execute_serial  # noqa: E402
from chain.execution.parallel import ParallelExecutor  # noqa: E402
from chain.core.keys import PrivateKey  # noqa: E402
from chain.txpool.policy import PoolLimits  # noqa: E402
from chain.txpool.pool import TransactionPool  # noqa: E402
from chain.core.spec import parse_spec  # noqa: E402
from chain.tx.codec import decode_transaction  # noqa: E402
from chain.tx.signing import sign_scoped_transaction  # noqa: E402
from contracts.token import genesis_entry, transfer_data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHAIN_ID = 1337
PROPOSER = b"\x0c" * 20
console = Console()


def spec(keys, tokens) -> dict:
    accounts = {"0x" + k.address.hex(): {"balance": str(10**21)} for k in keys}
    for token in tokens:
        accounts["0x" + token.hex()] = genesis_entry({k.address: 10**9 for k in keys})
    return {"name": "bench", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID, "gasLimit": 10**9},
            "accounts": accounts}


def make_keys(n: int) -> list[PrivateKey]:
    return [PrivateKey((i + 1000).to_bytes(32, "big")) for i in range(n)]


def signed_transfers(keys, count: int, token_of) -> list[bytes]:
    """`count` transfers, round-robin over senders, each to a fresh recipient."""
    raws, nonces = [], [0] * len(keys)
    for i in range(count):
        k = i % len(keys)
        token = token_of(k)
        raws.append(sign_scoped_transaction(
            keys[k], chain_id=CHAIN_ID, nonce=nonces[k], gas_limit=100_000, to=token,
            data=transfer_data((i + 1).to_bytes(20, "big"), 1), scope=[keys[k].address, token],
            max_fee_per_gas=1, max_priority_fee_per_gas=1))
        nonces[k] += 1
    return raws


# -- this chain ---------------------------------------------------------------------
def run_pipeline(raws: list[bytes], keys, tokens, block_size: int, workers: int = 1, mode: str = "process",
                 warm: int = 0, spec_data: dict | None = None) -> dict:
    """Push `raws` through the node's pipeline; the first `warm` transactions form an
    untimed block that warms the module caches (in every worker process too).
    `spec_data` replaces the token spec of `keys` and `tokens`."""
    with tempfile.TemporaryDirectory() as tmp:
        chain = Blockchain.initialize(os.path.join(tmp, "db"), parse_spec(spec_data or spec(keys, tokens)))
        if workers > 1:
            chain.executor = ParallelExecutor(chain.store, workers, mode)
            chain.executor.warm_up()  # start the workers outside the timing
        pool = TransactionPool(chain.params, PoolLimits(max_transactions=len(raws) + 1))
        stages = {"decode + recover": 0.0, "pool": 0.0}  # building: execute, commitment, commit (timings)
        timings: dict[str, float] = {}
        clock = time.perf_counter
        if warm:
            txs = [decode_transaction(raw) for raw in raws[:warm]]
            with chain.snapshot() as snap:
                for tx in txs:
                    pool.add(tx, snap)
            _, execution = chain.build_block(txs, PROPOSER, timestamp=1)
            pool.remove(execution.included)
            raws = raws[warm:]
        start = clock()
        included = 0
        for first in range(0, len(raws), block_size):
            t0 = clock()
            txs = [decode_transaction(raw) for raw in raws[first:first + block_size]]
            for tx in txs:
                tx.sender
            t1 = clock()
            with chain.snapshot() as snap:
                for tx in txs:
                    pool.add(tx, snap)
            with chain.snapshot() as snap:
                ready = pool.ready(snap, chain.params.block_gas_limit, block_size)
            t3 = clock()
            block, execution = chain.build_block(ready, PROPOSER, timestamp=1, timings=timings)
            t4 = clock()
            pool.remove(execution.included)
            included += len(execution.included)
            stages["decode + recover"] += t1 - t0
            stages["pool"] += t3 - t1 + clock() - t4
        total = clock() - start
        assert included == len(raws), f"only {included} of {len(raws)} included"
        stages.update(timings)
        chain.close()
    return {"tx_per_s": len(raws) / total, "seconds": total, "stages": stages, "transactions": len(raws)}


# -- py-evm ---------------------------------------------------------------------------
def run_pyevm(count: int, n_senders: int, block_size: int) -> dict | None:
    try:
        from eth.chains.base import MiningChain
        from eth.db.atomic import AtomicDB
        from eth.vm.forks.cancun import CancunVM
        from eth_keys import keys as eth_keys
        from ewasm_cli.evmbench.evm_contracts import compile_contract, hashmap_slot
    except ImportError as err:
        console.print(f"[yellow]py-evm comparison skipped: {err}[/]")
        return None
    token = compile_contract("token")
    token_address = b"\x00" * 18 + b"\xa0\x01"
    senders = [eth_keys.PrivateKey((i + 1000).to_bytes(32, "big")) for i in range(n_senders)]
    balances = token.storage_slots["balanceOf"]
    storage = {hashmap_slot(balances, k.public_key.to_canonical_address()): 10**9 for k in senders}
    state = {k.public_key.to_canonical_address(): {"balance": 10**21, "nonce": 0, "code": b"", "storage": {}}
             for k in senders}
    state[token_address] = {"balance": 0, "nonce": 1, "code": token.runtime, "storage": storage}
    klass = MiningChain.configure(__name__="BenchChain", vm_configuration=((0, CancunVM),), chain_id=CHAIN_ID)
    chain = klass.from_genesis(AtomicDB(), {"difficulty": 0, "gas_limit": 10**9, "timestamp": 1,
                                            "coinbase": PROPOSER, "base_fee_per_gas": 1}, state)
    vm = chain.get_vm()
    nonces = [0] * n_senders
    txs = []
    for i in range(count):
        k = i % n_senders
        tx = vm.create_unsigned_transaction(nonce=nonces[k], gas_price=2, gas=100_000, to=token_address, value=0,
                                            data=transfer_data((i + 1).to_bytes(20, "big"), 1))
        txs.append(tx.as_signed_transaction(senders[k], chain_id=CHAIN_ID))
        nonces[k] += 1
    start = time.perf_counter()
    for first in range(0, count, block_size):
        block_import, receipts, computations = chain.mine_all(txs[first:first + block_size], timestamp=2 + first)
        assert all(c.is_success for c in computations)
    total = time.perf_counter() - start
    return {"tx_per_s": count / total, "seconds": total, "transactions": count}


# -- commands -------------------------------------------------------------------------
def cmd_throughput(args) -> dict:
    keys = make_keys(args.senders)
    if args.tokens == "shared":
        tokens = [b"\x70" * 20]
        raws = signed_transfers(keys, args.transactions + 2 * len(keys), lambda k: tokens[0])
    else:  # one token per sender: blocks split into independent components
        tokens = [(0x7000 + i).to_bytes(2, "big") * 10 for i in range(len(keys))]
        raws = signed_transfers(keys, args.transactions + 2 * len(keys), lambda k: tokens[k])
    ours = run_pipeline(raws, keys, tokens, args.block_size, args.executor_workers, warm=2 * len(keys))
    pyevm = None if args.no_pyevm else run_pyevm(args.pyevm_transactions, args.senders, args.block_size)
    executor = "serial" if args.executor_workers <= 1 else f"{args.executor_workers} workers"
    table = Table(title=f"signed token transfers ({args.tokens} tokens, {executor} execution), "
                        f"{args.transactions} tx in blocks of {args.block_size}")
    table.add_column("stage")
    table.add_column("µs / tx", justify="right")
    table.add_column("share", justify="right")
    for stage, seconds in ours["stages"].items():
        table.add_row(stage, f"{seconds / ours['transactions'] * 1e6:.1f}", f"{seconds / ours['seconds']:.0%}")
    table.add_row("[bold]total", f"{ours['seconds'] / ours['transactions'] * 1e6:.1f}", "")
    console.print(table)
    console.print(f"this chain: [bold]{ours['tx_per_s']:.0f} tx/s[/] (goal ≥ 3000)")
    if pyevm:
        ratio = ours["tx_per_s"] / pyevm["tx_per_s"]
        console.print(f"py-evm chain: {pyevm['tx_per_s']:.0f} tx/s ({pyevm['transactions']} tx) → "
                      f"[bold]{ratio:.1f}×[/] (goal ≥ 6×)")
    return {"ours": ours, "pyevm": pyevm}


# -- the parallel executor -------------------------------------------------------------
def _split_helper(conn, store_path: str) -> None:
    """One process of the ideal split: it holds its share before the clock starts and
    runs it when told."""
    from chain.execution.serial import run_share
    from chain.state.store import Store
    store = Store(store_path, readonly=True)
    while (message := conn.recv()) is not None:
        txs, components, context, params = message
        conn.send("ready")
        conn.recv()  # go
        with store.snapshot() as snapshot:
            run_share(snapshot, txs, components, context, params)
        conn.send("done")


class IdealSplit:
    """The block's components split evenly (LPT) among processes that already hold
    their transactions: no shipping, no merging, no caller. Its time is what the
    machine allows for this work (cores shared with the host, memory, caches), so the
    executor's speedup is read against it."""

    def __init__(self, store_path: str, workers: int):
        context = multiprocessing.get_context("forkserver")
        self.conns, self.processes = [], []
        for _ in range(workers):
            mine, theirs = context.Pipe()
            process = context.Process(target=_split_helper, args=(theirs, store_path), daemon=True)
            process.start()
            self.conns.append(mine)
            self.processes.append(process)

    def run(self, txs, context, params) -> float:
        shares = schedule(conflict_components(txs), len(self.conns))
        for conn, share in zip(self.conns, shares):
            indices = sorted(i for component in share for i in component)
            renumber = {i: k for k, i in enumerate(indices)}
            conn.send(([txs[i] for i in indices], [[renumber[i] for i in c] for c in share], context, params))
        busy = self.conns[:len(shares)]
        for conn in busy:
            conn.recv()
        # Timed from the first "go" to the last "done": with more processes than cores,
        # some start late, and that wait is part of the split's time.
        start = time.perf_counter()
        for conn in busy:
            conn.send("go")
        for conn in busy:
            conn.recv()
        return time.perf_counter() - start

    def close(self) -> None:
        for conn, process in zip(self.conns, self.processes):
            conn.send(None)
            process.join()


def _same_execution(a, b) -> bool:
    return (a.receipts == b.receipts and a.changes == b.changes and a.fees == b.fees
            and [tx.hash for tx in a.included] == [tx.hash for tx in b.included]
            and [(tx.hash, str(err)) for tx, err in a.excluded] == [(tx.hash, str(err)) for tx, err in b.excluded])


class _FallbackCounter(logging.Handler):
    """Counts the executor's warnings: a helper that failed means the caller reran its
    shares, and that sample measures a recovery, not the executor."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record) -> None:
        self.count += 1


def _measure_block(snap, block, context, params, executors, ideals, rng) -> dict[str, float]:
    """Seconds each variant takes for `block`, serial first and the others in a random
    order (no variant always follows another); parallel results are checked."""
    clock = time.perf_counter
    start = clock()
    reference = execute_serial(snap, block, context, params)
    sample = {"serial": clock() - start}
    variants = [*executors.items(), *ideals.items()]
    rng.shuffle(variants)
    for name, variant in variants:
        if isinstance(variant, IdealSplit):
            sample[name] = variant.run(block, context, params)
            continue
        start = clock()
        result = variant.execute(snap, block, context, params)
        sample[name] = clock() - start
        if not _same_execution(result, reference):
            raise SystemExit(f"{name}: the parallel result differs from the serial one")
    return sample


def cmd_parallel(args) -> dict:
    """Serial and parallel execution of the same blocks, measured in alternation.

    The machine is shared and its speed drifts by tens of percent within seconds, so
    every variant runs each block in turn, `--repeat` times, and the speedup is the
    median of per-run ratios to the serial time measured next to it. Every parallel
    result is checked equal to the serial one.
    """
    keys = make_keys(args.senders)
    tokens = [(0x7000 + i).to_bytes(2, "big") * 10 for i in range(len(keys))]
    warm = 4 * len(keys)
    raws = signed_transfers(keys, args.transactions + warm, lambda k: tokens[k])
    counts = sorted({int(w) for w in args.workers.split(",")} - {1})
    modes = args.mode.split(",")
    variants = [(mode, w) for mode in modes for w in counts]
    names = [f"{mode} {w}" for mode, w in variants] + [f"ideal {w}" for w in counts]
    times: dict[str, list[float]] = {name: [] for name in ["serial"] + names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    rng = random.Random(1)
    fallbacks = _FallbackCounter()
    logging.getLogger("ewasm.executor").addHandler(fallbacks)
    with tempfile.TemporaryDirectory() as tmp:
        chain = Blockchain.initialize(os.path.join(tmp, "db"), parse_spec(spec(keys, tokens)))
        executors = {f"{mode} {w}": ParallelExecutor(chain.store, w, mode) for mode, w in variants}
        ideals = {f"ideal {w}": IdealSplit(chain.store.path, w) for w in counts}
        try:
            for executor in executors.values():
                executor.warm_up()
            txs = [decode_transaction(raw) for raw in raws]
            for tx in txs:
                tx.sender
            blocks = [txs[warm + i:warm + i + args.block_size] for i in range(0, args.transactions, args.block_size)]
            # The first block, untimed, warms the module caches of every process.
            for block, rounds in [(txs[:warm], 0)] + [(block, args.repeat) for block in blocks]:
                context = chain.context(PROPOSER, timestamp=1)
                with chain.snapshot() as snap:
                    for _ in range(max(1, rounds)):
                        sample = _measure_block(snap, block, context, chain.params, executors, ideals, rng)
                        if rounds:
                            for name, elapsed in sample.items():
                                times[name].append(elapsed)
                                if name != "serial":
                                    ratios[name].append(sample["serial"] / elapsed)
                chain.build_block(block, PROPOSER, timestamp=1)
        finally:
            for executor in executors.values():
                executor.close()
            for ideal in ideals.values():
                ideal.close()
            chain.close()
            logging.getLogger("ewasm.executor").removeHandler(fallbacks)
    return _report_parallel(args, times, ratios, fallbacks.count)


def _report_parallel(args, times: dict[str, list[float]], ratios: dict[str, list[float]], fallbacks: int) -> dict:
    median = statistics.median
    speedup = {name: median(r) for name, r in ratios.items()}
    table = Table(title=f"parallel executor: {args.transactions} transfers on {args.senders} disjoint tokens, "
                        f"blocks of {args.block_size}, {args.repeat} runs each")
    for column in ("variant", "ms / block", "speedup", "of the ideal split"):
        table.add_column(column, justify="right")
    table.add_row("serial", f"{median(times['serial']) * 1e3:.1f}", "1.00×", "")
    for name in times:
        if name == "serial":
            continue
        ideal = speedup.get("ideal " + name.split()[-1])
        share = "" if name.startswith("ideal") else f"{speedup[name] / ideal:.0%}"
        table.add_row(name, f"{median(times[name]) * 1e3:.1f}", f"{speedup[name]:.2f}×", share)
    console.print(table)
    console.print("speedup: median of per-run ratios to the serial run beside it (ms / block is a median of "
                  "its own). ideal split: the block's components divided evenly among processes that already "
                  "hold their transactions, started together; an upper bound for the parallel part, which leaves "
                  "out conflict analysis, shipping, merging and receipts.")
    if fallbacks:
        console.print(f"[bold red]{fallbacks} helper failure(s) during the runs: those samples include the "
                      "caller rerunning shares[/]")
    console.print(f"cores: {os.cpu_count()}; load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.plot:
        plot_scaling(speedup, args.plot, f"{args.transactions} transfers on disjoint tokens, {os.cpu_count()} cores")
        console.print(f"plot written to {args.plot}")
    return {"speedup": speedup, "median_seconds": {name: median(t) for name, t in times.items()},
            "samples": times, "cores": os.cpu_count(), "helper_failures": fallbacks}


def plot_scaling(speedup: dict[str, float], path: str, title: str) -> None:
    """Speedup against workers, one line per helper kind and one for the ideal split."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lines: dict[str, list[tuple[int, float]]] = {}
    for name, value in speedup.items():
        kind, workers = name.rsplit(" ", 1)
        lines.setdefault(kind, [(1, 1.0)]).append((int(workers), value))
    fig, ax = plt.subplots(figsize=(6, 4))
    top = max(w for points in lines.values() for w, _ in points)
    ax.plot([1, top], [1, top], color="lightgrey", linestyle=":", label="linear")
    labels = {"process": "helper processes", "thread": "helper threads", "ideal": "ideal split (upper bound)"}
    for kind, points in lines.items():
        ax.plot(*zip(*sorted(points)), marker="o", label=labels.get(kind, kind),
                linestyle="--" if kind == "ideal" else "-")
    ax.set_xticks(sorted({w for points in lines.values() for w, _ in points}))
    ax.set_xlabel("workers")
    ax.set_ylabel("execution speedup over serial")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["throughput", "parallel"], default="throughput")
    parser.add_argument("--transactions", type=int, default=6000)
    parser.add_argument("--pyevm-transactions", type=int, default=1000)
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=100)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=5, help="`parallel`: runs of each block per variant")
    parser.add_argument("--mode", default="process,thread", help="`parallel`: helper kinds to measure "
                        "(comma-separated: process, thread)")
    parser.add_argument("--tokens", choices=["shared", "per-sender"], default="shared",
                        help="throughput: every transfer on one token, or one token per sender")
    parser.add_argument("--executor-workers", type=int, default=1, metavar="N",
                        help="throughput: execute blocks on N workers (the parallel executor, processes)")
    parser.add_argument("--no-pyevm", action="store_true")
    parser.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    parser.add_argument("--plot", metavar="PNG", help="`parallel`: plot speedup against workers")
    args = parser.parse_args(argv)
    if not set(args.mode.split(",")) <= {"process", "thread"}:
        parser.error("--mode takes process, thread or both")
    result = cmd_parallel(args) if args.command == "parallel" else cmd_throughput(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
