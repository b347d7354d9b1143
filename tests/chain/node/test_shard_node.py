"""A sharded node, as real processes: `node init` of a two-shard spec writes a datadir per
shard, and `node run` runs each shard in a process of its own behind one JSON-RPC port,
where web3.py talks to /shard/1 and to / (shard 0) as two chains; a path that names no
shard gets a JSON-RPC error, and SIGTERM stops the shards with the node."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from eth_account import Account
from web3 import Web3

from chain.core.params import DEFAULT_MAX_FEE
from ewasm_cli.main import main

from chain_fixtures import CHAIN_ID
from local_network import REPO, free_ports, wait_for

pytestmark = pytest.mark.xdist_group("network")


def key_on(shard: int) -> Account:
    return next(a for a in (Account.from_key(f"{0x7000 + i:064x}") for i in range(1000))
                if int(a.address[2:4], 16) * 2 // 256 == shard)


ALICE, BOB = key_on(0), key_on(1)


def send(w3: Web3, sender: Account, chain_id: int) -> int:
    signed = sender.sign_transaction({"type": 2, "chainId": chain_id, "nonce": 0, "gas": 21_000, "value": 3,
                                      "maxFeePerGas": DEFAULT_MAX_FEE, "maxPriorityFeePerGas": 1, "to": sender.address,
                                      "accessList": []})
    return w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), 30).status


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def init_node(tmp_path, capsys) -> str:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "sharded", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID},
                                "shards": {"count": 2},
                                "accounts": {a.address: {"balance": str(10**21)} for a in (ALICE, BOB)}}))
    assert main(["node", "init", "--spec", str(spec), "--datadir", str(tmp_path / "node"), "--json"]) == 0
    assert [info["chainId"] for info in json.loads(capsys.readouterr().out)] == [CHAIN_ID, CHAIN_ID + 1]
    return str(tmp_path / "node")


def run_node(datadir: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", datadir, "--rpc-port",
                             str(port)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def shard_processes(process: subprocess.Popen) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                           text=True).stdout.split()]


def test_one_port_serves_each_shard_as_its_own_chain_and_sigterm_stops_them_all(tmp_path, capsys):
    port = free_ports(1)[0]
    process = run_node(init_node(tmp_path, capsys), port)
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        assert re.search(rf"JSON-RPC on http://127.0.0.1:{port}/ ", lines[2]), lines
        base = f"http://127.0.0.1:{port}"
        zero, one = (Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
                     for url in (f"{base}/", f"{base}/shard/1"))
        assert (zero.eth.chain_id, one.eth.chain_id) == (CHAIN_ID, CHAIN_ID + 1)
        assert one.eth.get_balance(BOB.address) == 10**21 and one.eth.get_balance(ALICE.address) == 0
        assert send(zero, ALICE, CHAIN_ID) == 1 and send(one, BOB, CHAIN_ID + 1) == 1
        assert Web3(Web3.HTTPProvider(f"{base}/shard/0")).eth.get_transaction_count(ALICE.address) == 1
        status, answer = post(f"{base}/shard/2", {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        assert status == 404 and "no shard at /shard/2" in answer["error"]["message"]
        _, answer = post(f"{base}/shard/1", {"jsonrpc": "2.0", "id": 1, "method": "ewasm_consensusStatus",
                                             "params": []})
        shards = answer["result"]["shards"]
        assert [s["shard"] for s in shards] == [0, 1] and all(s["head"] >= 1 for s in shards)
        children = shard_processes(process)
        assert len(children) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    wait_for(lambda: not any(subprocess.run(["kill", "-0", str(c)], capture_output=True).returncode == 0
                             for c in children), 30, "the shards to stop")


def test_a_shard_that_dies_stops_the_node_naming_the_shard(tmp_path, capsys):
    process = run_node(init_node(tmp_path, capsys), free_ports(1)[0])
    try:
        assert "JSON-RPC on" in [process.stdout.readline() for _ in range(3)][2]
        subprocess.run(["kill", "-KILL", str(shard_processes(process)[-1])], check=True)
        assert process.wait(timeout=60) == 1
        assert re.search(r"shard \d exited with status -9; see .*shard\d\.log", process.stdout.read())
    finally:
        if process.poll() is None:
            process.kill()


def test_a_sharded_node_takes_its_p2p_addresses_from_each_shards_config_not_from_flags(tmp_path, capsys):
    datadir = init_node(tmp_path, capsys)
    assert main(["node", "run", "--datadir", datadir, "--p2p-port", "0"]) == 2
    assert "take their p2p addresses and peers from DIR/shardK/node.json" in capsys.readouterr().err


def test_devnet_with_shards_funds_the_dev_key_on_its_own_shard_and_serves_every_shard(tmp_path):
    port = free_ports(1)[0]
    process = subprocess.Popen([sys.executable, "-m", "ewasm_cli", "devnet", "--shards", "2", "--dev-key",
                                ALICE.key.hex(), "--rpc-port", str(port), "--datadir", str(tmp_path / "dev")],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(5)]
        assert "funded on shard 0 of 2" in lines[1] and lines[4].startswith(f"JSON-RPC on http://127.0.0.1:{port}/")
        zero, one = (Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}/shard/{k}")) for k in range(2))
        assert (zero.eth.chain_id, one.eth.chain_id) == (CHAIN_ID, CHAIN_ID + 1)
        assert zero.eth.get_balance(ALICE.address) > 0 and one.eth.get_balance(ALICE.address) == 0
        assert send(zero, ALICE, CHAIN_ID) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
