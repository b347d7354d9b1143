"""A sharded consortium, as real processes: four PBFT validators, each running both
shards of a two-shard chain (`network init --shards 2`: eight shard processes behind
four routers). Random cross-shard transfers (hypothesis: amounts and directions), signed
with eth-account and sent through the outbox to any node, each land exactly once and
the same on every node; the supply over both shards is conserved; each shard's chain
is one history on every node; and a node SIGKILLed with receipts in flight comes back,
catches up and agrees."""

from __future__ import annotations

import json
import subprocess

import pytest
from eth_account import Account
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from web3 import Web3

from chain.core.keys import to_checksum_address
from chain.core.params import DEFAULT_MAX_FEE
from chain.core.system import OUTBOX
from ewasm_cli.history import check_history
from ewasm_cli.local_network import LocalNetwork, free_port_block
from ewasm_cli.main import main

from local_network import wait_for

pytestmark = pytest.mark.xdist_group("network")

CHAIN_ID = 1337
NODES = 4


def key_on(shard: int, skip: int = 0) -> Account:
    found = (Account.from_key(f"{0x7300 + i:064x}") for i in range(1000))
    return [a for a in found if int(a.address[2:4], 16) * 2 // 256 == shard][skip]


DEV, ADMIN = key_on(0), key_on(1)  # genesis funds both, each on its own shard
SENDERS = [DEV, ADMIN]
RECIPIENTS = [[key_on(0, 1 + i).address for i in range(2)], [key_on(1, 1 + i).address for i in range(2)]]


class Network:
    def __init__(self, root, base: int):
        assert main(["network", "init", "--dir", str(root), "--validators", str(NODES), "--engine", "pbft",
                     "--shards", "2", "--block-period", "0.3", "--request-timeout", "1", "--base-port", str(base),
                     "--dev-key", DEV.key.hex(), "--admin-key", ADMIN.key.hex(), "--json"]) == 0
        self.root, self.base = root, base
        self.nodes = json.loads((root / "network.json").read_text())["nodes"]
        self.local = LocalNetwork(root, NODES)
        self.local.start(120)
        self.nonces = [0, 0]
        self.sent: list[tuple[int, str, int, str]] = []  # (source shard, tx hash, value, recipient)

    def url(self, node: int, shard: int) -> str:
        return f"http://127.0.0.1:{self.base + 2 * node}/shard/{shard}"

    def w3(self, node: int, shard: int) -> Web3:
        return Web3(Web3.HTTPProvider(self.url(node, shard), request_kwargs={"timeout": 30}))

    def rpc(self, node: int, shard: int, method: str, *params):
        return self.w3(node, shard).provider.make_request(method, list(params))

    def send(self, shard: int, to: str, value: int, node: int) -> str:
        sender = SENDERS[shard]
        signed = sender.sign_transaction({
            "type": 2, "chainId": CHAIN_ID + shard, "nonce": self.nonces[shard], "gas": 100_000, "value": value,
            "maxFeePerGas": DEFAULT_MAX_FEE, "maxPriorityFeePerGas": 1, "to": to_checksum_address(OUTBOX),
            "data": "0x" + to[2:].lower(), "accessList": [{"address": sender.address, "storageKeys": []},
                                                         {"address": to_checksum_address(OUTBOX), "storageKeys": []}]})
        self.nonces[shard] += 1
        tx_hash = "0x" + self.w3(node, shard).eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")
        self.sent.append((shard, tx_hash, value, to))
        return tx_hash

    def settled_everywhere(self) -> bool:
        for shard, tx_hash, _, _ in self.sent:
            for node in range(NODES):
                entries = self.rpc(node, shard, "ewasm_getCrossShardReceipt", tx_hash).get("result")
                if not entries or entries[0]["status"] != "delivered":
                    return False
        return True

    def pids(self, node: int) -> list[int]:
        parent = self.local.children[node].pid
        children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
        return [parent, *map(int, children)]

    def stop(self) -> None:
        self.local.stop()


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    made = Network(tmp_path_factory.mktemp("sharded"), free_port_block(2 * NODES + 2 * NODES))
    yield made
    made.stop()


def accounts() -> list[list[str]]:
    """Every account value can be in, by shard: the senders, the recipients and the
    validators (each shard's fees go to its proposers there)."""
    return [[DEV.address, *RECIPIENTS[0]], [ADMIN.address, *RECIPIENTS[1]]]


def supply(network: Network, node: int) -> int:
    holders = [[*accounts()[s], *[Web3.to_checksum_address(n["address"]) for n in network.nodes]] for s in (0, 1)]
    return sum(network.w3(node, s).eth.get_balance(a) for s in (0, 1) for a in holders[s])


def check_everything(network: Network, genesis_supply: int) -> None:
    wait_for(network.settled_everywhere, 90, "every receipt to be delivered on every node")
    for node in range(NODES):
        assert supply(network, node) == genesis_supply
    for shard in (0, 1):
        urls = [network.url(node, shard) for node in range(NODES)]
        receipted = [h for s, h, _, _ in network.sent if s == shard]
        holders = [*accounts()[shard], *[Web3.to_checksum_address(n["address"]) for n in network.nodes]]
        moved_in = sum(v for s, _, v, _ in network.sent if s != shard)
        moved_out = sum(v for s, _, v, _ in network.sent if s == shard)
        # One history per shard: no fork, every transfer in the same block on every node,
        # and on every node the shard's accounts hold what genesis gave them plus what came
        # in and less what left (fees stay with the validators, who are among them).
        check_history(urls, receipted, holders, sum(GENESIS[shard].values()) + moved_in - moved_out)


GENESIS: list[dict[str, int]] = [{}, {}]  # each shard's holders' balances at the start (the first test reads them)


def test_the_network_serves_both_shards_on_every_node_with_each_key_funded_on_its_own_shard(network):
    for node in range(NODES):
        zero, one = network.w3(node, 0), network.w3(node, 1)
        assert (zero.eth.chain_id, one.eth.chain_id) == (CHAIN_ID, CHAIN_ID + 1)
        assert zero.eth.get_balance(DEV.address) > 0 and one.eth.get_balance(DEV.address) == 0
        assert one.eth.get_balance(ADMIN.address) > 0 and zero.eth.get_balance(ADMIN.address) == 0
        status = network.rpc(node, 1, "ewasm_consensusStatus")["result"]
        assert status["engine"] == "pbft" and [s["shard"] for s in status["shards"]] == [0, 1]
    for shard in (0, 1):
        holders = [*accounts()[shard], *[Web3.to_checksum_address(n["address"]) for n in network.nodes]]
        GENESIS[shard] = {a: network.w3(0, shard).eth.get_balance(a) for a in holders}


# Live nodes: a few examples, and no shrinking (each try would take the network's time).
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(1, 10**18), st.integers(0, NODES - 1)),
                min_size=1, max_size=4))
def test_random_cross_shard_transfers_land_once_everywhere_and_the_supply_holds(network, plan):
    genesis_supply = sum(GENESIS[0].values()) + sum(GENESIS[1].values())
    for shard, recipient, value, node in plan:
        network.send(shard, RECIPIENTS[1 - shard][recipient], value, node)
    check_everything(network, genesis_supply)


def test_a_node_killed_with_receipts_in_flight_comes_back_and_agrees(network):
    genesis_supply = sum(GENESIS[0].values()) + sum(GENESIS[1].values())
    for i in range(3):
        network.send(0, RECIPIENTS[1][0], 1000 + i, 0)
        network.send(1, RECIPIENTS[0][1], 2000 + i, 1)
    for pid in network.pids(3):
        subprocess.run(["kill", "-KILL", str(pid)], capture_output=True)
    network.local.children[3].wait()
    for i in range(3):
        network.send(0, RECIPIENTS[1][1], 3000 + i, 1)
    network.local.restart(3, 120)
    check_everything(network, genesis_supply)
    assert network.local.children[3].poll() is None
