#!/usr/bin/env python3
"""Chain throughput: signed token transfers through the whole pipeline, vs py-evm's chain.

    python tools/bench_chain.py [--transactions N] [--block-size B] [--senders S] [--json OUT]
    python tools/bench_chain.py parallel [--workers 1,2,4] [--mode process|thread] [--transactions N] [--repeat R]

The pipeline is the node's: decode and signature recovery, pool admission, block
building, execution (the wasm token), the Merkle commitment and the lmdb commit. The
transactions are signed beforehand (that is the client's work). py-evm runs the same
workload in the same run: a Vyper token with the same ABI, real signed transactions,
`MiningChain.mine_all` per block (execution, tries, in-memory database).

`parallel` measures the parallel executor on disjoint scopes: every sender has its own
token contract, so blocks split into independent components; it reports execution
speedup over the serial executor for each worker count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from chain.blockchain import Blockchain  # noqa: E402
from chain.executor import ParallelExecutor, execute_serial  # noqa: E402
from chain.keys import PrivateKey  # noqa: E402
from chain.pool import TransactionPool  # noqa: E402
from chain.spec import parse_spec  # noqa: E402
from chain.transactions import decode_transaction, sign_scoped_transaction  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOKEN_RUNTIME = (REPO / "contracts" / "examples" / "token.wasm").read_bytes()
CHAIN_ID = 1337
PROPOSER = b"\x0c" * 20
console = Console()


def token_slot(holder: bytes) -> bytes:
    return b"\x01" + bytes(11) + holder


def transfer_data(to: bytes, amount: int) -> bytes:
    return bytes.fromhex("a9059cbb") + to.rjust(32, b"\x00") + amount.to_bytes(32, "big")


def spec(keys, tokens) -> dict:
    accounts = {"0x" + k.address.hex(): {"balance": str(10**21)} for k in keys}
    for token in tokens:
        accounts["0x" + token.hex()] = {"nonce": 1, "code": "0x" + TOKEN_RUNTIME.hex(), "storage": {
            "0x" + token_slot(k.address).hex(): "0x" + (10**9).to_bytes(32, "big").hex() for k in keys}}
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
                 warm: int = 0) -> dict:
    """Push `raws` through the node's pipeline; the first `warm` transactions form an
    untimed block that warms the module caches (in every worker process too)."""
    with tempfile.TemporaryDirectory() as tmp:
        chain = Blockchain.initialize(os.path.join(tmp, "db"), parse_spec(spec(keys, tokens)))
        if workers > 1:
            chain.executor = ParallelExecutor(chain.store, workers, mode)
            chain.executor.warm_up()  # start the workers outside the timing
        pool = TransactionPool(chain.params, max_size=len(raws) + 1, max_future_per_sender=len(raws) + 1)
        stages = {"decode + recover": 0.0, "pool": 0.0, "build": 0.0}
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
            t2 = clock()
            with chain.snapshot() as snap:
                ready = pool.ready(snap, chain.params.block_gas_limit, block_size)
            t3 = clock()
            block, execution = chain.build_block(ready, PROPOSER, timestamp=1, timings=timings)
            t4 = clock()
            pool.remove(execution.included)
            included += len(execution.included)
            stages["decode + recover"] += t1 - t0
            stages["pool"] += t2 - t1 + clock() - t4
            stages["build"] += t3 - t2
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
    token = b"\x70" * 20
    raws = signed_transfers(keys, args.transactions + 2 * len(keys), lambda k: token)
    ours = run_pipeline(raws, keys, [token], args.block_size, warm=2 * len(keys))
    pyevm = None if args.no_pyevm else run_pyevm(args.pyevm_transactions, args.senders, args.block_size)
    table = Table(title=f"signed token transfers, {args.transactions} tx in blocks of {args.block_size}")
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


def cmd_parallel(args) -> dict:
    keys = make_keys(args.senders)
    tokens = [(0x7000 + i).to_bytes(2, "big") * 10 for i in range(len(keys))]
    raws = signed_transfers(keys, args.transactions + 4 * len(keys), lambda k: tokens[k])
    counts = [int(w) for w in args.workers.split(",")]
    runs: dict[int, list[dict]] = {w: [] for w in counts}
    # Rounds interleave the worker counts so that a burst of outside load hits them alike;
    # each figure is the median round (by execution time).
    for _ in range(max(1, args.repeat)):
        for workers in counts:
            runs[workers].append(run_pipeline(raws, keys, tokens, args.block_size, workers, args.mode,
                                              warm=4 * len(keys)))
    results = {w: sorted(r, key=lambda run: run["stages"]["execute"])[len(r) // 2] for w, r in runs.items()}
    base = results[min(results)]["stages"]["execute"]
    table = Table(title=f"parallel executor ({args.mode}s), {args.transactions} transfers on {len(tokens)} disjoint tokens")
    for column in ("workers", "execute s", "speedup (execute)", "pipeline tx/s"):
        table.add_column(column, justify="right")
    for workers, run in results.items():
        table.add_row(str(workers), f"{run['stages']['execute']:.3f}", f"{base / run['stages']['execute']:.2f}×",
                      f"{run['tx_per_s']:.0f}")
    console.print(table)
    console.print(f"cores: {os.cpu_count()}, median of {max(1, args.repeat)} rounds; load average now: "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return {str(w): r for w, r in results.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["throughput", "parallel"], default="throughput")
    parser.add_argument("--transactions", type=int, default=6000)
    parser.add_argument("--pyevm-transactions", type=int, default=1000)
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=100)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=3, help="rounds for `parallel` (median reported)")
    parser.add_argument("--mode", choices=["process", "thread"], default="process", help="parallel workers")
    parser.add_argument("--no-pyevm", action="store_true")
    parser.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    args = parser.parse_args(argv)
    result = cmd_parallel(args) if args.command == "parallel" else cmd_throughput(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
