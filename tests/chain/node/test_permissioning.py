"""The permission list on chain, across real node processes made by `ewasm network init`:
an admin's transaction to the permission contract lets a node in or drops it everywhere
within a block, with no restart; anyone else's call reverts."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from eth_account import Account

from chain.core.keys import PrivateKey
from chain.core.system import ALLOW_NODE, PERMISSIONS, REMOVE_NODE, permission_call

from chain_fixtures import REPO
from local_network import NodeProcess, free_port_block, free_ports, init_datadir, wait_for

pytestmark = pytest.mark.xdist_group("network")

ADMIN = Account.from_key("0x" + "ad" * 32)
NEWCOMER = PrivateKey.from_hex("ee" * 32)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    root = tmp_path_factory.mktemp("permissioned")
    base = free_port_block(6)
    init = subprocess.run([sys.executable, "-m", "ewasm_cli", "network", "init", "--dir", str(root / "net"),
                           "--validators", "1", "--regular", "2", "--step-duration", "0.5", "--base-port", str(base),
                           "--admin-key", ADMIN.key.hex(), "--json"], cwd=REPO, capture_output=True, text=True,
                          check=True)
    summary = json.loads(init.stdout)
    nodes = []
    try:
        for k, entry in enumerate(summary["nodes"]):
            config = json.loads((root / "net" / f"node{k}" / "node.json").read_text())
            nodes.append(NodeProcess(f"node{k}", PrivateKey.from_hex(config["key"]), root / "net" / f"node{k}",
                                     base + 2 * k + 1, [], root / f"node{k}.log", from_config=True).start())
        for node in nodes:
            wait_for(lambda: len(node.peer_ids()) == 2, 30, f"{node.name} connected to the other two")
        yield summary, nodes, root
    finally:
        for node in nodes:
            node.stop()


def admin_call(node: NodeProcess, nonce: int, data: bytes, sender=ADMIN) -> dict:
    scope = [{"address": "0x" + PERMISSIONS.hex(), "storageKeys": []},
             {"address": sender.address, "storageKeys": []}]
    tx = sender.sign_transaction({"type": 2, "chainId": 1337, "nonce": nonce, "gas": 200_000, "maxFeePerGas": 10,
                                  "maxPriorityFeePerGas": 1, "to": "0x" + PERMISSIONS.hex(), "data": data,
                                  "value": 0, "accessList": scope})
    tx_hash = node.rpc("eth_sendRawTransaction", "0x" + bytes(tx.raw_transaction).hex())
    return wait_for(lambda: node.rpc("eth_getTransactionReceipt", tx_hash), 30, "the receipt")


def test_network_init_writes_a_spec_and_a_datadir_with_a_config_for_each_node(network):
    summary, nodes, root = network
    assert [n["validator"] for n in summary["nodes"]] == [True, False, False]
    assert summary["admin_key"] == "0x" + ADMIN.key.hex()
    spec = json.loads((root / "net" / "spec.json").read_text())
    assert spec["network"]["admins"] == [ADMIN.address.lower()]
    assert spec["accounts"]["0x" + PERMISSIONS.hex()]["code"].startswith("0x0061736d")
    assert {n.rpc("eth_chainId") for n in nodes} == {"0x539"}


def test_a_call_by_anyone_but_an_admin_reverts_and_changes_nothing(network):
    summary, nodes, _ = network
    stranger = Account.from_key(summary["dev_key"])  # funded, but not an admin
    receipt = admin_call(nodes[1], 0, permission_call(REMOVE_NODE, bytes.fromhex(summary["nodes"][2]["address"][2:])),
                         sender=stranger)
    assert receipt["status"] == "0x0"
    time.sleep(1)
    assert len(nodes[2].peer_ids()) == 2


def test_an_admin_lets_a_new_node_in_and_removes_another_everywhere_within_two_seconds(network, tmp_path):
    summary, nodes, root = network
    (p2p,) = free_ports(1)
    init_datadir(json.loads((root / "net" / "spec.json").read_text()), tmp_path / "newcomer")
    newcomer = NodeProcess("newcomer", NEWCOMER, tmp_path / "newcomer", p2p,
                           [int(n["p2p"].rsplit(":", 1)[1]) for n in summary["nodes"]], tmp_path / "newcomer.log")
    newcomer.start()
    try:
        time.sleep(1.5)
        assert newcomer.peer_ids() == set()  # not on the list yet
        admin_call(nodes[0], 0, permission_call(ALLOW_NODE, NEWCOMER.address))
        wait_for(lambda: len(newcomer.peer_ids()) == 3, 30, "the newcomer let in by every node")

        removed = bytes.fromhex(summary["nodes"][2]["address"][2:])
        receipt = admin_call(nodes[0], 1, permission_call(REMOVE_NODE, removed))
        assert receipt["status"] == "0x1"
        block = int(receipt["blockNumber"], 16)
        for node in (nodes[1], newcomer):  # each drops it within 2 s of importing the block
            wait_for(lambda: node.head() >= block, 30, f"{node.name} importing block {block}")
            started = time.monotonic()
            wait_for(lambda: "0x" + removed.hex() not in node.peer_ids(), 5, f"{node.name} dropping the node")
            assert time.monotonic() - started < 2
        time.sleep(1.5)  # it keeps dialing, and every node keeps refusing it
        assert all("0x" + removed.hex() not in n.peer_ids() for n in (nodes[0], nodes[1], newcomer))
        assert "no longer on the permission list" in nodes[1].log.read_text()
    finally:
        newcomer.stop()
