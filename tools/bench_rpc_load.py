#!/usr/bin/env python3
"""A node under hostile load: how fast it still answers, and that honest users lose nothing.

    python tools/bench_rpc_load.py [--seconds S] [--min-seconds S] [--heavy-clients H] [--spam-keys K] [--spam-nonces N]
                                   [--funded-keys F] [--transfers T] [--host-spin] [--json OUT] [--quick]

It starts a real node process (`ewasm node run`, default limits) on loopback and puts
three loads through its JSON-RPC at once:

- heavy: H clients, each sending batches of 1,000 eth_call to a contract that loops
  until it runs out of gas (contracts/examples/spinner.wat; --host-spin makes the loop
  call a host function each round, which costs far more time per gas);
- spam: K unfunded keys, each sending zero-fee transactions with nonces 1..N, which
  can never run (nonce 0 is missing), to fill the pool;
- funded: F funded keys, each streaming T eth-account-signed transfers.

A separate probe process sends eth_chainId every 20 ms and times each answer; the
node's resident memory is sampled meanwhile. The run ends when every funded transfer
has a receipt (or --seconds have passed) and reports eth_chainId latency p50/p99/max,
the node's peak RSS, what the spam got, how the heavy batches were answered, and
whether every funded transfer was included. The goal is a p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from chain.core.keys import PrivateKey, to_checksum_address  # noqa: E402
from chain.tx.signing import sign_scoped_transaction  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPINNER_RUNTIME = (REPO / "contracts" / "examples" / "spinner.wasm").read_bytes()
SPINNER = bytes.fromhex("5917e4") + bytes(17)
CHAIN_ID = 1337
PROBE_PERIOD = 0.02
console = Console(stderr=True)


# -- the node -----------------------------------------------------------------------
def load_spec(funded: list[bytes]) -> dict:
    """Funded senders and the spinner contract in genesis."""
    accounts = {"0x" + a.hex(): {"balance": str(10**24)} for a in funded}
    accounts["0x" + SPINNER.hex()] = {"balance": "0", "nonce": 1, "code": "0x" + SPINNER_RUNTIME.hex()}
    return {"name": "rpc-load", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": accounts}


def start_node(datadir: str, funded: list[bytes]) -> tuple[subprocess.Popen, int]:
    """`ewasm node init` and `ewasm node run` as real processes; (process, RPC port)."""
    spec = Path(datadir).with_suffix(".json")
    spec.write_text(json.dumps(load_spec(funded)))
    subprocess.run([sys.executable, "-m", "ewasm_cli", "node", "init", "--spec", str(spec), "--datadir", datadir],
                   cwd=REPO, check=True, capture_output=True)
    node = subprocess.Popen([sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", datadir, "--rpc-port",
                             "0", "--quiet"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    for line in node.stdout:
        output += line
        match = re.search(r"JSON-RPC on http://[^:]+:(\d+)/", line)
        if match:
            threading.Thread(target=lambda: [None for _ in node.stdout], daemon=True).start()  # keep it drained
            return node, int(match.group(1))
    raise RuntimeError(f"the node did not start:\n{output}")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# -- clients ------------------------------------------------------------------------
class Client:
    """One keep-alive HTTP connection speaking JSON-RPC."""

    def __init__(self, port: int, timeout: float = 120):
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, payload):
        body = json.dumps(payload).encode()
        for attempt in range(2):  # a kept-alive connection the server closed: reconnect once
            try:
                self.conn.request("POST", "/", body, {"Content-Type": "application/json"})
                response = self.conn.getresponse()
                status, data = response.status, response.read()
                if status not in (200, 413):
                    raise RuntimeError(f"HTTP {status}: {data[:200]!r}")
                return json.loads(data)
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise

    def call(self, method, *params):
        return self.post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})


def probe(port: int, stop, out) -> None:
    """In its own process, so that the load generator's threads cannot delay it: times
    eth_chainId every PROBE_PERIOD until `stop` is set. Sends ("asking", wall time)
    before each request and ("answered", seconds, ok) after it to `out`, so that a
    request still unanswered at the end is seen too."""
    client = Client(port, timeout=600)
    while not stop.is_set():
        out.send(("asking", time.time()))
        started = time.perf_counter()
        try:
            ok = client.call("eth_chainId").get("result") == hex(CHAIN_ID)
        except Exception:
            ok = False
        elapsed = time.perf_counter() - started
        out.send(("answered", elapsed, ok))
        time.sleep(max(0.0, PROBE_PERIOD - elapsed))


class ProbeSamples:
    """Collects the probe's messages as they come (a full pipe would stall the probe)."""

    def __init__(self, conn):
        self.latencies: list[float] = []
        self.errors = 0
        self.asking: float | None = None
        self._conn = conn
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                return
            if message[0] == "asking":
                self.asking = message[1]
            else:
                self.latencies.append(message[1])
                self.errors += not message[2]
                self.asking = None

    def final(self) -> list[float]:
        """The latencies, counting a request still unanswered as what it has waited so far."""
        time.sleep(2 * PROBE_PERIOD)
        waited = [] if self.asking is None else [time.time() - self.asking]
        return self.latencies + waited


def quietly(target):
    """A client thread's body: a failure (the node gone at the end of the run) is counted
    in `client_failures`, not printed as a traceback."""
    def run(*args):
        try:
            target(*args)
        except Exception as err:
            client_failures[type(err).__name__] += 1
    return run


client_failures: Counter = Counter()


def heavy_client(port: int, stop: threading.Event, host_spin: bool, outcomes: Counter) -> None:
    """Batches of 1,000 eth_call to the spinner, one after the other, until stopped."""
    client = Client(port)
    call = {"to": "0x" + SPINNER.hex(), "data": "0x01" if host_spin else "0x00"}
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [call, "latest"]} for i in range(1000)]
    while not stop.is_set():
        for answer in client.post(batch):
            outcomes[answer["error"]["code"] if "error" in answer else "result"] += 1


def spam_raws(keys: int, nonces: int) -> list[bytes]:
    """Zero-fee transfers with nonces 1..nonces from unfunded keys: none of them can run."""
    raws = []
    for k in range(keys):
        key = PrivateKey.from_hex((0x5A5A0000 + k).to_bytes(32, "big").hex())
        for nonce in range(1, nonces + 1):
            raws.append(sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=21_000,
                                                to=b"\x22" * 20, scope=[key.address, b"\x22" * 20],
                                                max_fee_per_gas=0, max_priority_fee_per_gas=0))
    return raws


def spammer(port: int, raws: list[bytes], outcomes: Counter) -> None:
    client = Client(port)
    for first in range(0, len(raws), 100):
        batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": ["0x" + raw.hex()]}
                 for i, raw in enumerate(raws[first:first + 100])]
        for answer in client.post(batch):
            outcomes[answer["error"]["message"].split(":")[0] if "error" in answer else "accepted"] += 1


def transfer_raws(account, count: int) -> list[str]:
    """eth-account-signed EIP-1559 transfers, nonces 0..count-1."""
    return ["0x" + bytes(account.sign_transaction({
        "type": 2, "chainId": CHAIN_ID, "nonce": nonce, "maxFeePerGas": 10, "maxPriorityFeePerGas": 1,
        "gas": 21_000, "to": to_checksum_address((0xEE00 + nonce % 50).to_bytes(20, "big")), "value": 1,
        "accessList": []}).raw_transaction).hex() for nonce in range(count)]


def funded_sender(port: int, raws: list[str], sent: list, refused: list) -> None:
    """Streams its transfers in batches of 50, as a client does, and keeps the hashes."""
    client = Client(port)
    for first in range(0, len(raws), 50):
        batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}
                 for i, raw in enumerate(raws[first:first + 50])]
        for answer in client.post(batch):
            (refused.append(answer["error"]["message"]) if "error" in answer else sent.append(answer["result"]))


def count_included(port: int, hashes: list[str]) -> tuple[int, int]:
    """(receipts found, of those successful) for `hashes`, asked in batches."""
    client, found, ok = Client(port), 0, 0
    for first in range(0, len(hashes), 200):
        batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]}
                 for i, h in enumerate(hashes[first:first + 200])]
        for answer in client.post(batch):
            receipt = answer.get("result")
            if receipt:
                found += 1
                ok += receipt["status"] == "0x1"
    return found, ok


# -- the run ------------------------------------------------------------------------
def run(args) -> dict:
    funded = [Account.create() for _ in range(args.funded_keys)]
    console.print(f"signing {args.spam_keys * args.spam_nonces} spam and {args.funded_keys * args.transfers} "
                  f"funded transactions ...")
    spam = spam_raws(args.spam_keys, args.spam_nonces)
    transfers = [transfer_raws(a, args.transfers) for a in funded]
    with tempfile.TemporaryDirectory() as tmp:
        node, port = start_node(os.path.join(tmp, "db"), [bytes.fromhex(a.address[2:]) for a in funded])
        try:
            return load(args, node, port, spam, transfers)
        finally:
            node.terminate()
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()


def load(args, node: subprocess.Popen, port: int, spam: list[bytes], transfers: list[list[str]]) -> dict:
    context = multiprocessing.get_context("spawn")
    stop_probe, (probe_out, probe_in) = context.Event(), context.Pipe(duplex=False)
    prober = context.Process(target=probe, args=(port, stop_probe, probe_in), daemon=True)
    prober.start()
    samples = ProbeSamples(probe_out)
    rss_start, rss_peak, sampling = rss_bytes(node.pid), rss_bytes(node.pid), threading.Event()

    def sample_rss():
        nonlocal rss_peak
        while not sampling.wait(0.25):
            rss_peak = max(rss_peak, rss_bytes(node.pid))

    threading.Thread(target=sample_rss, daemon=True).start()
    time.sleep(0.5)  # the probe's first answers: an idle baseline
    stop_heavy, heavy_outcomes, spam_outcomes = threading.Event(), Counter(), Counter()
    sent: list[str] = []
    refused: list[str] = []
    started = time.perf_counter()
    heavy = [threading.Thread(target=quietly(heavy_client), args=(port, stop_heavy, args.host_spin, heavy_outcomes),
                              daemon=True) for _ in range(args.heavy_clients)]
    spammers = [threading.Thread(target=quietly(spammer), args=(port, spam[i::2], spam_outcomes), daemon=True)
                for i in range(2)]
    senders = [threading.Thread(target=quietly(funded_sender), args=(port, raws, sent, refused), daemon=True)
               for raws in transfers]
    for thread in (*heavy, *spammers, *senders):
        thread.start()
    for thread in (*spammers, *senders):
        thread.join(timeout=max(1.0, args.seconds - (time.perf_counter() - started)))
    expected = sum(len(raws) for raws in transfers)
    found = ok = 0
    while time.perf_counter() - started < args.seconds:
        found, ok = count_included(port, sent)
        if found >= len(sent) and time.perf_counter() - started >= args.min_seconds:
            break
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    stop_heavy.set()
    stop_probe.set()
    latencies, probe_errors = samples.final(), samples.errors
    prober.terminate()
    sampling.set()
    for thread in heavy:
        thread.join(timeout=5)
    ms = sorted(x * 1000 for x in latencies)
    return {
        "seconds": round(seconds, 2),
        "chain_id_latency_ms": {"p50": round(statistics.median(ms), 2), "p99": round(ms[int(len(ms) * 0.99) - 1], 2),
                                "max": round(ms[-1], 2), "samples": len(ms), "errors": probe_errors},
        "rss_mb": {"start": round(rss_start / 2**20, 1), "peak": round(rss_peak / 2**20, 1)},
        "funded": {"expected": expected, "accepted": len(sent), "refused": refused[:5], "included": found,
                   "succeeded": ok},
        "spam": dict(spam_outcomes),
        "heavy_answers": {str(k): v for k, v in heavy_outcomes.items()},
        "client_failures": dict(client_failures),
        "load": {"heavy_clients": args.heavy_clients, "host_spin": args.host_spin,
                 "spam_transactions": len(spam), "funded_keys": len(transfers)},
    }


def report(figures: dict) -> None:
    table = Table(title="node under load (eth_chainId from a separate probe process)")
    for column in ("figure", "value"):
        table.add_column(column)
    lat = figures["chain_id_latency_ms"]
    table.add_row("eth_chainId p50 / p99 / max", f"{lat['p50']} / {lat['p99']} / {lat['max']} ms "
                                                 f"({lat['samples']} samples, {lat['errors']} errors)")
    table.add_row("node RSS start / peak", f"{figures['rss_mb']['start']} / {figures['rss_mb']['peak']} MiB")
    funded = figures["funded"]
    table.add_row("funded transfers included", f"{funded['succeeded']} of {funded['expected']} "
                                               f"({len(funded['refused'])} refused)")
    table.add_row("spam answers", ", ".join(f"{k}: {v}" for k, v in sorted(figures["spam"].items())))
    table.add_row("heavy eth_call answers", ", ".join(f"{k}: {v}" for k, v in sorted(figures["heavy_answers"].items())))
    table.add_row("duration", f"{figures['seconds']} s")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="give up waiting for receipts after this long")
    parser.add_argument("--min-seconds", type=float, default=30, help="keep the heavy load up at least this long")
    parser.add_argument("--heavy-clients", type=int, default=2)
    parser.add_argument("--host-spin", action="store_true", help="the spinner calls a host function each round")
    parser.add_argument("--spam-keys", type=int, default=100)
    parser.add_argument("--spam-nonces", type=int, default=100)
    parser.add_argument("--funded-keys", type=int, default=4)
    parser.add_argument("--transfers", type=int, default=500, help="per funded key")
    parser.add_argument("--quick", action="store_true", help="the suite's short version")
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args(argv)
    if args.quick:
        args.spam_keys, args.spam_nonces, args.funded_keys, args.transfers = 20, 70, 2, 100
        args.heavy_clients, args.seconds, args.min_seconds = 1, min(args.seconds, 60), 6
    figures = run(args)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
