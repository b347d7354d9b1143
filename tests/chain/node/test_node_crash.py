"""Crash safety: a real node process killed with SIGKILL while it commits blocks."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from chain.core.keys import PrivateKey
from chain.core.spec import parse_spec
from chain.ledger.blockchain import Blockchain
from chain.tx.signing import sign_scoped_transaction
from contracts.token import balance_slot, transfer_data

from chain_fixtures import CHAIN_ID, REPO, token_spec

KEYS = [PrivateKey((i + 101).to_bytes(32, "big")) for i in range(8)]
TOKEN = b"\x70" * 20
RECIPIENTS = [bytes([0xA0 + i]) * 20 for i in range(5)]


def start_node(datadir: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", datadir,
                                "--rpc-port", "0", "--quiet"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    for line in process.stdout:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if match:
            return process, int(match.group(1))
        if time.time() > deadline:
            break
    process.kill()
    raise AssertionError(f"node did not start: {process.stdout.read()}")


def call(port: int, payload):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_sigkill_during_block_commits_leaves_a_consistent_chain_with_every_receipt(tmp_path):
    datadir = str(tmp_path / "node")
    Blockchain.initialize(datadir, parse_spec(token_spec([k.address for k in KEYS], [TOKEN]))).close()
    rng = random.Random(1)
    txs = []  # pre-signed: 8 senders x 150 nonces, interleaved
    for nonce in range(150):
        for key in KEYS:
            txs.append("0x" + sign_scoped_transaction(
                key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=100_000, to=TOKEN,
                data=transfer_data(rng.choice(RECIPIENTS), 1), scope=[key.address, TOKEN]).hex())
    seen: dict[str, dict] = {}  # tx hash -> receipt observed before the kill
    hashes: list[str] = []

    process, port = start_node(datadir)
    try:
        sent = 0
        deadline = time.time() + 90
        while sent < 600:
            batch = txs[sent:sent + 40]
            answers = call(port, [{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}
                                  for i, raw in enumerate(batch)])
            hashes += [a["result"] for a in answers if "result" in a]
            sent += len(batch)
        while len(seen) < 150 and time.time() < deadline:
            unseen = [h for h in hashes if h not in seen][:200]
            receipts = call(port, [{"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]}
                                   for i, h in enumerate(unseen)])
            for h, answer in zip(unseen, receipts):
                if answer.get("result"):
                    seen[h] = answer["result"]
            time.sleep(0.05)
        assert len(seen) >= 50, "the node included too few transactions to test a crash"
        # Keep it committing, then kill it in the middle of the work.
        threading.Timer(rng.uniform(0.05, 0.3), process.send_signal, [signal.SIGKILL]).start()
        try:
            while True:
                call(port, [{"jsonrpc": "2.0", "id": 0, "method": "eth_sendRawTransaction", "params": [raw]}
                            for raw in txs[sent:sent + 40]])
                sent += 40
        except Exception:
            pass
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()

    process, port = start_node(datadir)  # opening checks the state root against the flat state
    try:
        head = int(call(port, {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"})["result"], 16)
        assert head >= max(int(r["blockNumber"], 16) for r in seen.values())
        for tx_hash, before in seen.items():
            after = call(port, {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt",
                                "params": [tx_hash]})["result"]
            assert after is not None, f"{tx_hash} had a receipt before the crash and is gone"
            assert (after["blockHash"], after["status"], after["transactionIndex"]) == \
                (before["blockHash"], before["status"], before["transactionIndex"])
    finally:
        process.terminate()
        process.wait(timeout=20)

    chain = Blockchain.open(datadir)
    with chain.snapshot() as snap:
        included = sum(snap.get_account(k.address).nonce for k in KEYS)
        supply = sum(int.from_bytes(snap.get_storage(TOKEN, balance_slot(a)), "big")
                     for a in [k.address for k in KEYS] + RECIPIENTS)
        moved = sum(int.from_bytes(snap.get_storage(TOKEN, balance_slot(a)), "big") for a in RECIPIENTS)
    assert supply == len(KEYS) * 10**6  # tokens are conserved
    assert moved == included  # every included transfer moved exactly one token
    assert included >= len(seen)
    chain.close()
