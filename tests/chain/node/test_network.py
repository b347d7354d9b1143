"""Nodes that talk: one PoA authority and regular nodes, each a real process on loopback.
Transactions sent to any node are included, every node has the same blocks, a late or
restarted node catches up, outsiders cannot connect, and a peer that sends an invalid
block is banned."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from chain.consensus.poa.steps import step_at
from chain.core.keys import PrivateKey, to_checksum_address

from chain_fixtures import CHAIN_ID
from local_network import NodeProcess, forged_block, free_ports, hostile_announcement, init_datadir, wait_for

pytestmark = pytest.mark.xdist_group("network")

AUTHORITY, REGULAR_B, REGULAR_C, LATE = (PrivateKey.from_hex(f"{0xB0 + i:064x}") for i in range(4))
HOSTILE = [PrivateKey.from_hex(f"{0xB8 + i:064x}") for i in range(3)]  # allowed members that forge blocks
OUTSIDER = PrivateKey.from_hex("ee" * 32)
SENDERS = [Account.from_key(f"{0xC0 + i:064x}") for i in range(3)]
STEP = 0.4


def spec() -> dict:
    members = [AUTHORITY, REGULAR_B, REGULAR_C, LATE, *HOSTILE]
    return {"name": "network-test", "engine": {"poa": {"authority": "0x" + AUTHORITY.address.hex(),
                                                       "blockPeriod": STEP}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": {s.address: {"balance": str(10**24)} for s in SENDERS},
            "network": {"nodes": ["0x" + k.address.hex() for k in members]}}


class Network:
    def __init__(self, root):
        self.root = root
        self.ports = dict(zip(["a", "b", "c", "d", "e", "h"], free_ports(6)))
        self.nodes: dict[str, NodeProcess] = {}

    def node(self, name: str, key: PrivateKey, dial: list[str]) -> NodeProcess:
        datadir = self.root / name
        init_datadir(spec(), datadir)
        node = NodeProcess(name, key, datadir, self.ports[name], [self.ports[d] for d in dial],
                           self.root / f"{name}.log")
        self.nodes[name] = node
        return node.start()

    def stop(self):
        for node in self.nodes.values():
            node.stop()


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("network"))
    try:
        net.node("a", AUTHORITY, [])
        net.node("b", REGULAR_B, ["a"])
        net.node("c", REGULAR_C, ["a", "b"])
        for name in "abc":
            wait_for(lambda: len(net.nodes[name].peer_ids()) == 2, 30, f"{name} connected to the other two")
        yield net
    finally:
        net.stop()


def transfer(sender, nonce: int, to: int) -> str:
    tx = sender.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 21_000,
                                  "maxFeePerGas": 10, "maxPriorityFeePerGas": 1, "value": 1,
                                  "to": to_checksum_address((0xD00 + to).to_bytes(20, "big")), "accessList": []})
    return "0x" + bytes(tx.raw_transaction).hex()


def send_round(network: Network, first_nonce: int, count: int, via: list[str]) -> list[str]:
    """`count` transfers from each sender, spread over the nodes in `via`."""
    hashes = []
    for i in range(count):
        for s, sender in enumerate(SENDERS):
            node = network.nodes[via[(i + s) % len(via)]]
            hashes.append(node.rpc("eth_sendRawTransaction", transfer(sender, first_nonce + i, i)))
    return hashes


def included_everywhere(network: Network, hashes: list[str], names: str) -> bool:
    return all(network.nodes[n].rpc("eth_getTransactionReceipt", h) for n in names for h in hashes)


def same_blocks(network: Network, names: str) -> int:
    """The common height, after checking every node has the same hash at every height."""
    height = min(network.nodes[n].head() for n in names)
    for number in range(height + 1):
        hashes = {network.nodes[n].block_hash(number) for n in names}
        assert len(hashes) == 1, f"block {number} differs between nodes: {hashes}"
    return height


def test_transfers_sent_to_the_regular_nodes_are_included_and_every_node_has_the_same_blocks(network):
    hashes = send_round(network, 0, 5, via=["b", "c"])
    wait_for(lambda: included_everywhere(network, hashes, "abc"), 60, "every transfer on every node")
    assert same_blocks(network, "abc") >= 1
    for number in range(1, network.nodes["a"].head() + 1):
        block = network.nodes["b"].rpc("eth_getBlockByNumber", hex(number), False)
        assert block["miner"].lower() == "0x" + AUTHORITY.address.hex()
    status = network.nodes["b"].rpc("ewasm_consensusStatus")
    assert status["engine"] == "poa" and status["peers"] == 2 and status["head"] >= 1
    assert int(network.nodes["c"].rpc("net_peerCount"), 16) == 2


def test_a_node_not_on_the_list_cannot_connect(network):
    outsider = network.node("e", OUTSIDER, ["a", "b"])
    refusal = f"refused 0x{OUTSIDER.address.hex()}"
    for name in "ab":
        log = network.nodes[name].log
        wait_for(lambda: refusal in log.read_text(), 30, f"{name} refusing the outsider")
        assert "not on the permission list" in log.read_text().split(refusal, 1)[1].splitlines()[0]
    assert outsider.peer_ids() == set()
    assert "0x" + OUTSIDER.address.hex() not in network.nodes["a"].peer_ids() | network.nodes["b"].peer_ids()
    outsider.stop()


def test_a_node_that_joins_late_syncs_the_whole_chain_from_genesis(network):
    send_round(network, 5, 2, via=["a"])
    head = wait_for(lambda: network.nodes["a"].head() >= 2 and network.nodes["a"].head(), 30, "blocks to sync")
    late = network.node("d", LATE, ["b"])  # it knows only b, and must get every block through it
    wait_for(lambda: late.head() >= head, 30, "the late node catching up")
    assert same_blocks(network, "abd") >= head
    wait_for(lambda: late.rpc("eth_syncing") is False, 30, "eth_syncing to say the late node is level")


def test_a_regular_node_killed_and_restarted_catches_up(network):
    network.nodes["c"].kill()
    hashes = send_round(network, 7, 2, via=["a", "b"])
    wait_for(lambda: included_everywhere(network, hashes, "ab"), 60, "transfers while c is down")
    network.nodes["c"].start()
    wait_for(lambda: included_everywhere(network, hashes, "c"), 60, "c catching up after its restart")
    assert same_blocks(network, "abc") >= network.nodes["a"].head() - 1


FORGERIES = [("bad seal", "sealed by"), ("wrong state root", "state root"),
             ("proposer that is not the authority", "not to the proposer")]


@pytest.mark.parametrize("index", range(len(FORGERIES)), ids=[name for name, _ in FORGERIES])
def test_a_peer_that_announces_an_invalid_block_is_banned_and_the_node_carries_on(network, index):
    (forgery, reason), hostile, regular = FORGERIES[index], HOSTILE[index], network.nodes["b"]
    step = step_at(time.time(), STEP) + 1  # after the head's, whatever the authority sealed just now
    if forgery == "bad seal":
        block = forged_block(regular, AUTHORITY, step, STEP, seal=b"\x01" * 65)
    elif forgery == "wrong state root":  # sealed by the authority itself: only executing the block shows it
        block = forged_block(regular, AUTHORITY, step, STEP, state_root=b"\x01" * 32)
    else:  # a member's properly signed block, in a step that is the authority's
        block = forged_block(regular, hostile, step, STEP)
    answer = hostile_announcement(hostile, CHAIN_ID, regular, block)
    assert answer is not None and "invalid block" in answer and reason in answer, answer
    assert f"refused block {block.number}" in regular.log.read_text()
    hashes = send_round(network, 9 + index, 1, via=["b"])
    wait_for(lambda: included_everywhere(network, hashes, "ab"), 60, "the node still working")
