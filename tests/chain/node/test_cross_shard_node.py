"""Cross-shard receipts on a sharded node, as real processes: eth-account-signed
transfers through the outbox on /shard/0 land on /shard/1 by themselves (the relay),
a failing receiver refunds the exact value, `ewasm_getCrossShardReceipt` follows each
receipt, `ewasm_submitReceipt` refuses a consumed, misdirected or forged one, and a node
SIGKILLed with receipts in flight delivers each of them exactly once after a restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import wasmtime
from eth_account import Account
from web3 import Web3

from chain.core.keys import to_checksum_address
from chain.core.system import OUTBOX
from contracts import outbox_accounts
from ewasm_cli.main import main

from chain_fixtures import CHAIN_ID
from local_network import REPO, free_ports, wait_for

pytestmark = pytest.mark.xdist_group("network")


def key_on(shard: int, skip: int = 0) -> Account:
    found = (Account.from_key(f"{0x7100 + i:064x}") for i in range(1000))
    return [a for a in found if int(a.address[2:4], 16) * 2 // 256 == shard][skip]


ALICE, BOB = key_on(0), key_on(1)
REVERTER = Web3.to_checksum_address("0xf500000000000000000000000000000000000001")  # on shard 1: always reverts
REVERT_CODE = bytes(wasmtime.wat2wasm(
    '(module (import "ethereum" "revert" (func $revert (param i32 i32))) (memory (export "memory") 1)'
    ' (func (export "main") (call $revert (i32.const 0) (i32.const 0))))'))
FUNDS = 10**21
ZERO = Web3.to_checksum_address("0x" + "00" * 20)  # the instant engine's proposer: each shard's fees collect there


def init_node(tmp_path, capsys) -> str:
    spec = tmp_path / "spec.json"
    accounts = {**{a.address: {"balance": str(FUNDS)} for a in (ALICE, BOB)}, **outbox_accounts(),
                REVERTER: {"code": "0x" + REVERT_CODE.hex(), "nonce": 1}}
    spec.write_text(json.dumps({"name": "sharded", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID},
                                "shards": {"count": 2}, "accounts": accounts}))
    assert main(["node", "init", "--spec", str(spec), "--datadir", str(tmp_path / "node")]) == 0
    capsys.readouterr()
    return str(tmp_path / "node")


class ShardedNode:
    def __init__(self, datadir: str, port: int):
        self.port = port
        self.process = subprocess.Popen([sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", datadir,
                                         "--rpc-port", str(port)], cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        lines = [self.process.stdout.readline() for _ in range(3)]
        assert "JSON-RPC on" in lines[2], lines
        self.shards = [Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}/shard/{k}", request_kwargs={"timeout": 30}))
                       for k in range(2)]

    def rpc(self, shard: int, method: str, *params):
        return self.shards[shard].provider.make_request(method, list(params))

    def children(self) -> list[int]:
        return [int(p) for p in subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                                               text=True).stdout.split()]

    def shard_process(self, shard: int) -> int:
        listed = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(self.process.pid)], capture_output=True,
                                text=True).stdout.splitlines()
        return next(int(line.split()[0]) for line in listed if f"shard{shard} " in line + " ")

    def kill(self) -> None:
        """SIGKILL the node and its shard processes at once."""
        children = self.children()
        for pid in [self.process.pid, *children]:
            subprocess.run(["kill", "-KILL", str(pid)], capture_output=True)
        self.process.wait(timeout=30)
        wait_for(lambda: not any(subprocess.run(["kill", "-0", str(c)], capture_output=True).returncode == 0
                                 for c in children), 30, "the shards to die")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=60) == 0


def send_across(node: ShardedNode, sender: Account, to: str, value: int, nonce: int) -> str:
    shard = int(sender.address[2:4], 16) * 2 // 256
    signed = sender.sign_transaction({
        "type": 2, "chainId": CHAIN_ID + shard, "nonce": nonce, "gas": 100_000, "value": value,
        "maxFeePerGas": 1, "maxPriorityFeePerGas": 1, "to": to_checksum_address(OUTBOX),
        "data": "0x" + to[2:].lower(), "accessList": [{"address": sender.address, "storageKeys": []},
                                                     {"address": to_checksum_address(OUTBOX), "storageKeys": []}]})
    return "0x" + node.shards[shard].eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")


def settled(node: ShardedNode, shard: int, tx_hash: str) -> list[dict] | None:
    entries = node.rpc(shard, "ewasm_getCrossShardReceipt", tx_hash).get("result")
    return entries if entries and all(e["status"] != "pending" for e in entries) else None


@pytest.fixture
def node(tmp_path, capsys):
    running = ShardedNode(init_node(tmp_path, capsys), free_ports(1)[0])
    yield running
    running.stop()


def test_a_transfer_lands_on_the_other_shard_and_a_failed_one_comes_back_exactly(node):
    zero, one = node.shards
    sent = send_across(node, ALICE, BOB.address, 12_345, 0)
    failing = send_across(node, ALICE, REVERTER, 777, 1)
    [entry] = wait_for(lambda: settled(node, 0, sent), 30, "the transfer to land")
    assert (entry["status"], entry["sourceShard"], entry["destShard"], entry["value"]) == ("delivered", "0x0",
                                                                                          "0x1", hex(12_345))
    assert entry["to"] == BOB.address and entry["refundTo"] == ALICE.address
    assert one.eth.get_balance(BOB.address) == FUNDS + 12_345
    [refunded] = wait_for(lambda: settled(node, 0, failing), 30, "the failed transfer to settle")
    assert refunded["status"] == "refunded"
    fees = sum(zero.eth.get_transaction_receipt(h)["gasUsed"] for h in (sent, failing))  # price 1
    wait_for(lambda: zero.eth.get_balance(ALICE.address) == FUNDS - 12_345 - fees, 30, "the refund to land")
    assert one.eth.get_balance(REVERTER) == 0
    supply = sum(w3.eth.get_balance(a) for w3 in node.shards for a in (ALICE.address, BOB.address, ZERO))
    assert supply == 2 * FUNDS  # nothing in flight any more


def test_submitted_receipts_are_refused_when_consumed_misdirected_or_forged(node):
    sent = send_across(node, ALICE, BOB.address, 5, 0)
    [entry] = wait_for(lambda: settled(node, 0, sent), 30, "the transfer to land")
    delivery = entry["delivery"]
    again = node.rpc(1, "ewasm_submitReceipt", delivery)["error"]
    assert again["code"] == -32003 and "was consumed in block" in again["message"]
    wrong = node.rpc(0, "ewasm_submitReceipt", delivery)["error"]
    assert "is for shard 1, this is shard 0" in wrong["message"]
    raw = bytearray.fromhex(delivery[2:])
    raw[-40] ^= 1  # a byte of the proof
    forged = node.rpc(1, "ewasm_submitReceipt", "0x" + raw.hex())["error"]
    assert "proof does not verify" in forged["message"] or "names block" in forged["message"]
    garbage = node.rpc(1, "ewasm_submitReceipt", "0x1234")["error"]
    assert garbage["code"] == -32602
    status = node.rpc(1, "ewasm_getReceiptStatus", entry["id"])["result"]
    assert status == {"status": "delivered", "block": entry["deliveredIn"]}
    assert node.rpc(0, "ewasm_getCrossShardReceipt", "0x" + "ab" * 32)["result"] is None


def test_a_node_killed_with_receipts_in_flight_delivers_each_exactly_once_after_a_restart(tmp_path, capsys):
    datadir = init_node(tmp_path, capsys)
    node = ShardedNode(datadir, free_ports(1)[0])
    try:
        early = [(0, send_across(node, ALICE, BOB.address, 1000 + i, i)) for i in range(6)]
        # Shard 0 frozen: what shard 1 sends it now stays in flight until the restart.
        subprocess.run(["kill", "-STOP", str(node.shard_process(0))], check=True)
        late = [(1, send_across(node, BOB, ALICE.address, 2000 + i, i)) for i in range(6)]
        wait_for(lambda: all(node.rpc(s, "eth_getTransactionReceipt", h).get("result") for s, h in late), 30,
                 "shard 1 to include its transfers")
        node.kill()
    finally:
        if node.process.poll() is None:
            node.kill()
    node = ShardedNode(datadir, free_ports(1)[0])
    try:
        sends = early + late
        entries = [wait_for(lambda s=s, h=h: settled(node, s, h), 60, "every receipt to land")[0] for s, h in sends]
        assert {e["status"] for e in entries} == {"delivered"}
        fees = [sum(int(node.rpc(s, "eth_getTransactionReceipt", h)["result"]["gasUsed"], 16)
                    for s2, h in sends if s2 == s) for s in (0, 1)]
        zero, one = node.shards
        to_bob, to_alice = sum(1000 + i for i in range(6)), sum(2000 + i for i in range(6))
        assert zero.eth.get_balance(ALICE.address) == FUNDS - to_bob - fees[0] + to_alice
        assert one.eth.get_balance(BOB.address) == FUNDS - to_alice - fees[1] + to_bob
    finally:
        node.stop()
