#!/usr/bin/env python3
"""Randomized fault rounds on a local PBFT consortium, each checked like Jepsen would.

    python tools/fault_runner.py [--validators N] [--rounds R | --minutes M] [--seed S]
                                 [--block-period S] [--request-timeout S] [--json OUT]

It writes a network with `network init --engine pbft` (N validators and a regular node),
runs every node as its own process, and repeats rounds until the count or the time is
spent. Each round picks a fault at random, keeps signed transfers flowing through the
nodes that are up, ends the fault, waits for every node to catch up, and runs the
history checker (ewasm_cli/history.py) over every node: one block hash per height, every
receipted transfer in the same block everywhere, value conserved, and no evidence of a
validator signing twice. The faults:

- kill: SIGKILL a validator, restart it;
- pause: SIGSTOP a validator past several round timers, then SIGCONT;
- no-quorum: SIGKILL more than a third of the validators (no block may commit), then
  restart them;
- restart-all: SIGKILL every validator at once and restart them on their datadirs;
- crash-after-vote: restart a validator so that it SIGKILLs itself right after it sends
  a PROPOSAL, a PREPARE or a COMMIT (`node run --test-fault crash-after:KIND`), then
  restart it as usual: its vote log must keep it from contradicting that vote.

It prints one line per round and a summary; it exits 1 at the first broken property.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.core.keys import PrivateKey, to_checksum_address  # noqa: E402
from chain.core.params import DEFAULT_MAX_FEE  # noqa: E402
from chain.tx.signing import sign_scoped_transaction  # noqa: E402
from ewasm_cli.history import HistoryError, check_history, rpc  # noqa: E402
from ewasm_cli.local_network import LocalNetwork, free_port_block  # noqa: E402
from ewasm_cli.network_commands import FUNDS, initialize_network  # noqa: E402

FAULTS = ("kill", "pause", "no-quorum", "restart-all", "crash-after-vote")
CRASH_POINTS = ("proposal", "prepare", "commit")
CHAIN_ID = 1337


class Runner:
    def __init__(self, args, root: Path):
        self.args, self.rng = args, random.Random(args.seed)
        count = args.validators + 1
        self.summary = initialize_network(SimpleNamespace(
            dir=root, validators=args.validators, regular=1, engine="pbft", step_duration=args.block_period,
            block_period=args.block_period, request_timeout=args.request_timeout, epoch_length=30_000,
            base_port=free_port_block(2 * count), chain_id=CHAIN_ID, dev_key=None, admin_key=None, json=False))
        self.network = LocalNetwork(root, count)
        self.senders = [PrivateKey.from_hex(self.summary["dev_key"]), PrivateKey.from_hex(self.summary["admin_key"])]
        self.nonces = [0] * len(self.senders)
        self.receipted: list[str] = []
        self.recipients: set[str] = set()
        self.down: set[int] = set()

    # -- the network ----------------------------------------------------------------
    def url(self, k: int) -> str:
        return self.network.urls[k]

    def live(self) -> list[int]:
        return [k for k in range(len(self.network.urls)) if k not in self.down]

    def head(self, k: int) -> int:
        return int(rpc(self.url(k), "eth_blockNumber"), 16)

    def kill(self, k: int) -> None:
        self.network.kill(k)
        self.down.add(k)

    def restart(self, k: int, *extra_args: str) -> None:
        self.network.restart(k, extra_args=extra_args)
        self.down.discard(k)

    def wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise HistoryError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    # -- load -----------------------------------------------------------------------
    def transfers(self, count: int, confirm: bool = True) -> None:
        """`count` transfers through the live nodes; with `confirm`, until each has a receipt."""
        hashes = []
        for i in range(count):
            s = i % len(self.senders)
            to = (0xFA000000 + self.rng.randrange(1 << 16)).to_bytes(20, "big")
            raw = sign_scoped_transaction(self.senders[s], chain_id=CHAIN_ID, nonce=self.nonces[s], gas_limit=21_000,
                                          to=to, value=1 + self.rng.randrange(1000),
                                          scope=[self.senders[s].address, to], max_fee_per_gas=DEFAULT_MAX_FEE,
                                          max_priority_fee_per_gas=1)
            self.nonces[s] += 1
            self.recipients.add(to_checksum_address(to))
            hashes.append(rpc(self.url(self.rng.choice(self.live())), "eth_sendRawTransaction", "0x" + raw.hex()))
        if confirm:
            node = self.live()[0]
            self.wait(lambda: all(rpc(self.url(node), "eth_getTransactionReceipt", h) for h in hashes), 120,
                      "the transfers' receipts")
            self.receipted.extend(hashes)

    # -- rounds ---------------------------------------------------------------------
    def round(self, fault: str) -> str:
        validators = list(range(self.args.validators))
        tolerated = (self.args.validators - 1) // 3
        if fault == "kill":
            k = self.rng.choice(validators)
            self.kill(k)
            self.transfers(8)
            self.restart(k)
            return f"node{k} killed and restarted"
        if fault == "pause":
            k = self.rng.choice(validators)
            self.network.children[k].send_signal(signal.SIGSTOP)
            self.down.add(k)  # it answers nothing while stopped
            try:
                self.transfers(8)
                time.sleep(self.args.request_timeout * 4)
            finally:
                self.network.children[k].send_signal(signal.SIGCONT)
                self.down.discard(k)
            return f"node{k} paused for {self.args.request_timeout * 4:.1f} s and more"
        if fault == "no-quorum":
            gone = self.rng.sample(validators, tolerated + 1)
            for k in gone:
                self.kill(k)
            time.sleep(1)
            stalled = max(self.head(k) for k in self.live())
            time.sleep(3 * self.args.request_timeout)
            if max(self.head(k) for k in self.live()) > stalled + 1:
                raise HistoryError(f"blocks committed without a quorum ({sorted(gone)} down)")
            for k in gone:
                self.restart(k)
            return f"nodes {sorted(gone)} killed (no quorum: no block), restarted"
        if fault == "crash-after-vote":
            k, kind = self.rng.choice(validators), self.rng.choice(CRASH_POINTS)
            self.kill(k)
            self.restart(k, "--test-fault", f"crash-after:{kind}")
            self.transfers(4, confirm=False)
            self.wait(lambda: self.network.children[k].poll() is not None, 60, f"node{k} to die after a {kind}")
            self.down.add(k)
            self.transfers(4)
            self.restart(k)
            return f"node{k} killed itself right after sending a {kind.upper()}, restarted"
        for k in validators:
            self.kill(k)
        for k in validators:
            self.restart(k)
        return "every validator killed and restarted at once"

    def check(self) -> dict:
        self.transfers(4)  # commits resume after the fault
        top = max(self.head(k) for k in self.live())
        self.wait(lambda: min(self.head(k) for k in self.live()) >= top, 120, "every node catching up")
        accounts = [to_checksum_address(PrivateKey.from_hex(key).address) for key in
                    (self.summary["dev_key"], self.summary["admin_key"])]
        accounts += [to_checksum_address(bytes.fromhex(n["address"][2:])) for n in self.summary["nodes"]]
        history = check_history([self.url(k) for k in self.live()], self.receipted, accounts + sorted(self.recipients),
                                FUNDS * (2 + len(self.summary["nodes"])))
        for k in self.live():
            evidence = rpc(self.url(k), "ewasm_evidence")
            if evidence:
                raise HistoryError(f"node{k} recorded evidence: {evidence[0]}")
        return {"height": history.height, "receipted": history.transactions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--minutes", type=float, help="run rounds for this long instead of a count")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--block-period", type=float, default=0.3)
    parser.add_argument("--request-timeout", type=float, default=1.0)
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args(argv)
    results, started = [], time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(args, Path(tmp) / "net")
        try:
            runner.network.start()
            runner.wait(lambda: min(runner.head(k) for k in runner.live()) >= 2, 120, "the first blocks")
            number = 0
            while (time.monotonic() - started < args.minutes * 60) if args.minutes else number < args.rounds:
                number += 1
                fault = runner.rng.choice(FAULTS)
                done = runner.round(fault)
                checked = runner.check()
                results.append({"round": number, "fault": fault, **checked})
                print(f"round {number}: {done}; checked {checked['height'] + 1} blocks on every node, "
                      f"{checked['receipted']} receipted transfers, value conserved, no evidence", flush=True)
        except HistoryError as err:
            print(f"BROKEN: {err}", flush=True)
            return 1
        finally:
            runner.network.stop()
    print(f"{len(results)} rounds, every history checked, in {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
