"""`ewasm node init|run`, `ewasm devnet`, `ewasm demo-chain`, and the consensus engines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from chain.consensus.engine import ConfirmationLevel, ConsensusError
from chain.consensus.poa.seal import seal_signer
from chain.core.keys import PrivateKey
from chain.core.params import DEFAULT_MAX_FEE
from chain.core.spec import dev_spec, parse_spec
from chain.ledger.blockchain import Blockchain
from chain.node.config import NodeConfig
from chain.node.node import Node
from chain.tx.codec import decode_transaction
from chain.tx.signing import sign_scoped_transaction
from ewasm_cli.main import main
from tests.clients.devnet import start_devnet

from chain_fixtures import CHAIN_ID, REPO
from local_network import free_port_block, rpc, wait_for


def test_node_init_writes_genesis_and_refuses_a_different_spec(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(dev_spec(b"\x01" * 20)))
    assert main(["node", "init", "--spec", str(spec), "--datadir", str(tmp_path / "db"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chainId"] == 1337 and info["genesis"].startswith("0x")
    assert main(["node", "init", "--spec", str(spec), "--datadir", str(tmp_path / "db")]) == 0  # idempotent
    spec.write_text(json.dumps(dev_spec(b"\x02" * 20)))
    assert main(["node", "init", "--spec", str(spec), "--datadir", str(tmp_path / "db")]) == 2
    assert "different spec" in capsys.readouterr().err


def test_node_init_of_a_sharded_spec_writes_the_shard_asked_for_with_its_own_chain_id(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**dev_spec(b"\x01" * 20), "shards": {"count": 2}}))
    assert main(["node", "init", "--spec", str(spec), "--datadir", str(tmp_path / "s1"), "--shard", "1",
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["shard"], info["chainId"]) == (1, 1338)
    assert main(["node", "init", "--spec", str(spec), "--datadir", str(tmp_path / "s2"), "--shard", "2"]) == 2
    assert "this chain has shards 0 to 1" in capsys.readouterr().err


def test_node_init_rejects_a_malformed_spec_with_exit_2(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "x", "engine": {"instant": {}}, "params": {}}))
    assert main(["node", "init", "--spec", str(spec), "--datadir", str(tmp_path / "db")]) == 2
    assert "params.chainId" in capsys.readouterr().err


def test_node_run_on_an_empty_directory_says_to_init_first(tmp_path, capsys):
    assert main(["node", "run", "--datadir", str(tmp_path / "none"), "--rpc-port", "0"]) == 1
    assert "node init" in capsys.readouterr().err


def test_devnet_serves_json_rpc_with_the_dev_key_funded_and_stops_on_sigterm(tmp_path):
    key = PrivateKey.generate()
    process, output, port = start_devnet(tmp_path / "dev", "--dev-key", key.secret.hex())
    try:
        assert key.address.hex() in output.lower()
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance",
                           "params": ["0x" + key.address.hex(), "latest"]}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/", data=body), timeout=10) as r:
            assert int(json.loads(r.read())["result"], 16) == 10**24
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


@pytest.mark.xdist_group("network")
@pytest.mark.parametrize("engine, nodes, crash", [("pbft", 4, True), ("poa", 3, False)])
def test_demo_chain_runs_a_consortium_streams_transfers_through_every_node_and_checks_the_balances(
        capsys, engine, nodes, crash):
    assert main(["demo-chain", "--engine", engine, "--nodes", str(nodes), "--transfers", "200", "--recipients", "7",
                 "--step-duration", "0.5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["balances_ok"] and summary["nodes"] == nodes and summary["transfers"] == 200
    assert summary["crash"] is crash  # PBFT: a validator killed halfway, restarted, caught up
    assert summary["tx_per_s"] > 0 and summary["finality_seconds"] >= 0


def test_poa_engine_seals_blocks_with_the_authority_key_at_its_period(tmp_path):
    authority = PrivateKey.generate()
    datadir = str(tmp_path / "poa")
    spec = dev_spec(authority.address, engine="poa", block_period=0.3)
    Blockchain.initialize(datadir, parse_spec(spec)).close()
    with pytest.raises(ConsensusError, match="authority"):
        Node(NodeConfig(datadir=datadir, rpc_port=0, key=PrivateKey.generate()))
    node = Node(NodeConfig(datadir=datadir, rpc_port=0, key=authority))
    node.start()
    try:
        for nonce in range(2):
            raw = sign_scoped_transaction(authority, chain_id=1337, nonce=nonce, gas_limit=21_000,
                                          to=b"\x05" * 20, value=1, max_fee_per_gas=DEFAULT_MAX_FEE,
                                          max_priority_fee_per_gas=1)
            node.engine.submit_transaction(decode_transaction(raw))
            deadline = time.time() + 10
            while node.chain.head().number < nonce + 1 and time.time() < deadline:
                time.sleep(0.05)
        first, second = node.chain.store.header(1), node.chain.store.header(2)
        assert seal_signer(first) == seal_signer(second) == authority.address
        assert node.engine.get_most_recent(ConfirmationLevel.FINALIZED) == second
        assert node.engine.broadcast_message(b"hello") == 0
        with pytest.raises(ConsensusError):
            node.engine.send_message(b"\x01" * 20, b"hello")
    finally:
        node.stop()


def _rpc(port: int, method: str, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/", data=body,
                                                       headers={"Content-Type": "application/json"}), timeout=10) as r:
        reply = json.loads(r.read())
    assert "error" not in reply, reply
    return reply["result"]


def _wait_for_receipts(port: int, hashes: list[str]) -> list[dict]:
    deadline, receipts = time.time() + 30, {}
    while len(receipts) < len(hashes) and time.time() < deadline:
        for h in hashes:
            if h not in receipts and (receipt := _rpc(port, "eth_getTransactionReceipt", h)):
                receipts[h] = receipt
        time.sleep(0.05)
    return [receipts[h] for h in hashes]


def test_a_poa_devnet_with_parallel_workers_runs_disjoint_transfers_from_many_senders(tmp_path):
    """Real node process with `--workers 2`: the dev key funds four senders, whose
    transfers (each scoped by its access list to sender and recipient) then share
    blocks as disjoint components; every balance comes out as the serial rules say."""
    from eth_account import Account

    dev = Account.create()
    senders = [Account.create() for _ in range(4)]
    recipients = ["0x" + bytes([0x40 + i]).hex() * 20 for i in range(4)]
    process, output, port = start_devnet(tmp_path / "dev", "--dev-key", bytes(dev.key).hex(), "--engine", "poa",
                                         "--block-period", "0.5", "--workers", "2")
    try:
        assert "parallel execution on 2 workers: this process and 1 helper processes" in output

        def send(account, nonce, to, value):
            tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "maxFeePerGas": 10, "maxPriorityFeePerGas": 1,
                  "gas": 21_000, "to": to, "value": value,
                  "accessList": [{"address": account.address, "storageKeys": []},
                                 {"address": to, "storageKeys": []}]}
            raw = account.sign_transaction(tx).raw_transaction
            return _rpc(port, "eth_sendRawTransaction", "0x" + bytes(raw).hex())

        funding = [send(dev, i, s.address, 10**18) for i, s in enumerate(senders)]
        assert all(r["status"] == "0x1" for r in _wait_for_receipts(port, funding))
        transfers = [send(s, n, recipients[i], 1000 * (i + 1) + n) for n in range(3) for i, s in enumerate(senders)]
        receipts = _wait_for_receipts(port, transfers)
        assert all(r["status"] == "0x1" for r in receipts)
        senders_per_block: dict[str, set] = {}
        for receipt in receipts:
            senders_per_block.setdefault(receipt["blockNumber"], set()).add(receipt["from"])
        assert max(map(len, senders_per_block.values())) >= 2  # components ran side by side
        for i, recipient in enumerate(recipients):
            expected = sum(1000 * (i + 1) + n for n in range(3))
            assert int(_rpc(port, "eth_getBalance", recipient, "latest"), 16) == expected
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_workers_take_a_count_or_auto_and_refuse_anything_else(capsys):
    from ewasm_cli.chain_commands import _workers
    assert _workers("3") == 3 and _workers("auto") == len(os.sched_getaffinity(0))
    for bad, message in (("0", "at least 1"), ("many", "expected a number or 'auto'")):
        assert main(["devnet", "--workers", bad]) == 2
        assert message in capsys.readouterr().err


def _descendants(pid: int) -> set[int]:
    """Live processes below `pid` (from /proc: parent links)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_helper_processes_do_not_outlive_a_node_killed_with_sigkill(tmp_path):
    process, _, _ = start_devnet(tmp_path / "dev", "--workers", "3")
    try:
        helpers = _descendants(process.pid)
        assert len(helpers) >= 3  # the forkserver and two helper processes
    finally:
        process.kill()
        process.wait(timeout=30)
    deadline = time.time() + 15
    while any(map(_alive, helpers)) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, helpers)), "helper processes outlived their node"


def test_a_second_node_on_a_datadir_exits_at_once_with_status_1_naming_the_first(tmp_path):
    datadir, key = tmp_path / "dev", PrivateKey.generate().secret.hex()
    first, _, port = start_devnet(datadir, "--dev-key", key)
    try:
        started = time.time()
        second = subprocess.run([sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", str(datadir),
                                 "--rpc-port", "0"], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and time.time() - started < 30
        assert second.stderr.strip().splitlines()[-1] == f"error: datadir {datadir} is locked by process {first.pid}"
        assert _rpc(port, "eth_chainId") == hex(CHAIN_ID)  # the first one never noticed
    finally:
        first.kill()
        first.wait(timeout=30)
    # SIGKILL leaves no stale lock: the kernel drops a dead process's flock.
    again, _, port = start_devnet(datadir, "--dev-key", key)
    try:
        assert _rpc(port, "eth_chainId") == hex(CHAIN_ID)
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0


@pytest.mark.parametrize("argv, fragment", [
    (["devnet", "--rpc-port", "70000"], "--rpc-port: expected a TCP port from 0 to 65535, got 70000"),
    (["devnet", "--engine", "poa", "--block-period", "0"], "--block-period: expected seconds above 0"),
    (["devnet", "--chain-id", "-1"], "--chain-id: expected a whole number from 1"),
    (["devnet", "--txpool-max-queued", "0"], "--txpool-max-queued: expected a whole number of at least 1"),
    (["devnet", "--rpc-timeout", "inf"], "--rpc-timeout: expected seconds above 0"),
    (["demo", "--n", "-3"], "--n: expected a whole number from 0 to 100000000, got -3"),
    (["meter", "x.wat", "-o", "y.wasm", "--max-memory-pages", "-1"], "--max-memory-pages: expected a whole number"),
])
def test_out_of_range_flags_are_usage_errors_that_say_the_range_and_write_nothing(tmp_path, capsys, argv, fragment):
    datadir = tmp_path / "never"
    if argv[0] == "devnet":
        argv = [*argv, "--datadir", str(datadir)]
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err
    assert not datadir.exists()


def test_the_pool_and_rpc_flags_document_the_defaults_the_node_uses():
    from chain.rpc.server import RpcLimits
    from chain.txpool.policy import PoolLimits
    from ewasm_cli.chain_commands import _POOL_FLAGS

    for flag, (field, _, text) in _POOL_FLAGS.items():
        default = getattr(PoolLimits(), field)
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"(default {shown})" in text, flag
    limits, lane = RpcLimits(), RpcLimits().lanes["execution"]
    help_text = " ".join(subprocess.run([sys.executable, "-m", "ewasm_cli", "node", "run", "--help"], cwd=REPO,
                                        capture_output=True, text=True).stdout.split())
    for fragment in (f"eth_estimateGas (default {lane.workers})", f"may take (default {lane.timeout:g})",
                     f"together (default {limits.batch_gas})", f"batch (default {limits.max_batch})",
                     f"at once (default {limits.max_requests})"):
        assert fragment in help_text, fragment


def test_network_init_takes_keys_with_or_without_0x_and_refuses_a_used_directory_or_too_high_ports(tmp_path, capsys):
    key = PrivateKey.generate().secret.hex()
    assert main(["network", "init", "--dir", str(tmp_path / "n"), "--validators", "2", "--regular", "1",
                 "--dev-key", key, "--admin-key", "0x" + key, "--json", "--base-port", "9000"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dev_key"] == summary["admin_key"] == "0x" + key
    assert [n["rpc"] for n in summary["nodes"]] == ["http://127.0.0.1:9000/", "http://127.0.0.1:9002/",
                                                    "http://127.0.0.1:9004/"]
    assert summary["nodes"][2]["p2p"] == "127.0.0.1:9005" and not summary["nodes"][2]["validator"]
    config = json.loads((tmp_path / "n" / "node0" / "node.json").read_text())
    assert config["peers"] == ["127.0.0.1:9003", "127.0.0.1:9005"] and config["validator"]
    assert oct((tmp_path / "n" / "node0" / "node.json").stat().st_mode)[-3:] == "600"
    assert main(["network", "init", "--dir", str(tmp_path / "n"), "--validators", "1"]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["network", "init", "--dir", str(tmp_path / "m"), "--validators", "4", "--base-port", "65530"]) == 2
    assert "above 65535" in capsys.readouterr().err
    assert main(["network", "init", "--dir", str(tmp_path / "k"), "--validators", "1", "--dev-key", "zz"]) == 2


def test_network_init_with_the_pbft_engine_writes_its_timers_and_epoch_into_the_spec(tmp_path, capsys):
    assert main(["network", "init", "--dir", str(tmp_path / "n"), "--validators", "4", "--engine", "pbft",
                 "--block-period", "0.5", "--request-timeout", "1.5", "--epoch-length", "100", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    engine = json.loads((tmp_path / "n" / "spec.json").read_text())["engine"]["pbft"]
    assert engine["validators"] == [n["address"] for n in summary["nodes"]]
    assert (engine["blockPeriod"], engine["requestTimeout"], engine["epochLength"]) == (0.5, 1.5, 100)
    assert main(["network", "init", "--dir", str(tmp_path / "m"), "--validators", "4", "--engine", "pbft",
                 "--request-timeout", "0"]) == 2


@pytest.mark.xdist_group("network")
def test_devnet_with_several_nodes_runs_a_local_network_and_stops_it_on_sigterm(tmp_path):
    base = free_port_block(6)
    process = subprocess.Popen([sys.executable, "-m", "ewasm_cli", "devnet", "--nodes", "3", "--engine", "poa",
                                "--rpc-port", str(base), "--block-period", "0.5", "--datadir", str(tmp_path / "net")],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(6)]
        urls = [re.search(r"(http://\S+)", line).group(1) for line in lines if "JSON-RPC on" in line]
        assert len(urls) == 3 and "dev key" in "".join(lines)
        ports = [int(re.search(r":(\d+)/", u).group(1)) for u in urls]
        wait_for(lambda: all(int(rpc(p, "eth_blockNumber"), 16) >= 3 for p in ports), 30, "blocks on every node")
        wait_for(lambda: {int(rpc(p, "net_peerCount"), 16) for p in ports} == {2}, 30, "every node with two peers")
        children = _descendants(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    deadline = time.time() + 15
    while any(map(_alive, children)) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, children)), "node processes outlived the devnet"


def test_devnet_with_several_instant_nodes_is_a_usage_error(capsys):
    assert main(["devnet", "--nodes", "2"]) == 2
    assert "instant engine runs one node" in capsys.readouterr().err
