"""Four PBFT validators and a regular node, each a real process on loopback: transfers
sent to any node are committed, every block is final at once and the same on every
node, the chain goes on without one validator, stops (without a fork) without two, and
resumes when they come back, the restarted ones catching up."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from chain.core.keys import PrivateKey, to_checksum_address

from chain_fixtures import CHAIN_ID
from local_network import NodeProcess, free_ports, init_datadir, wait_for

pytestmark = pytest.mark.xdist_group("network")

VALIDATORS = [PrivateKey.from_hex(f"{0x60 + i:064x}") for i in range(4)]
REGULAR = PrivateKey.from_hex(f"{0x69:064x}")
SENDERS = [Account.from_key(f"{0xD0 + i:064x}") for i in range(4)]
NAMES = ["v0", "v1", "v2", "v3", "r"]


def spec() -> dict:
    return {"name": "pbft-test",
            "engine": {"pbft": {"validators": ["0x" + k.address.hex() for k in VALIDATORS], "blockPeriod": 0.3,
                                "requestTimeout": 1.0}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": {s.address: {"balance": str(10**24)} for s in SENDERS},
            "network": {"nodes": ["0x" + k.address.hex() for k in [*VALIDATORS, REGULAR]]}}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("pbft")
    ports = dict(zip(NAMES, free_ports(len(NAMES))))
    made: dict[str, NodeProcess] = {}
    try:
        for i, (name, key) in enumerate(zip(NAMES, [*VALIDATORS, REGULAR])):
            init_datadir(spec(), root / name)
            made[name] = NodeProcess(name, key, root / name, ports[name], [ports[n] for n in NAMES[:i]],
                                     root / f"{name}.log").start()
        for name in NAMES:
            wait_for(lambda: len(made[name].peer_ids()) == 4, 30, f"{name} connected to the other four")
        yield made
    finally:
        for node in made.values():
            node.stop()


def transfer(sender, nonce: int) -> str:
    tx = sender.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 21_000,
                                  "maxFeePerGas": 10, "maxPriorityFeePerGas": 1, "value": 1,
                                  "to": to_checksum_address((0xE00 + nonce).to_bytes(20, "big")), "accessList": []})
    return "0x" + bytes(tx.raw_transaction).hex()


def agree(nodes, names, up_to: int) -> None:
    for number in range(up_to + 1):
        hashes = {nodes[n].block_hash(number) for n in names}
        assert len(hashes) == 1, f"block {number} differs: {hashes}"


def test_transfers_to_any_node_commit_final_at_once_and_the_same_everywhere(nodes):
    hashes = [nodes[NAMES[i]].rpc("eth_sendRawTransaction", transfer(s, n))
              for n in range(3) for i, s in enumerate(SENDERS)]
    wait_for(lambda: all(nodes[name].rpc("eth_getTransactionReceipt", h) for name in NAMES for h in hashes), 60,
             "every transfer on every node")
    head = wait_for(lambda: min(nodes[n].head() for n in NAMES) >= 6 and min(nodes[n].head() for n in NAMES), 30,
                    "six blocks everywhere")
    agree(nodes, NAMES, head)
    for name in NAMES:
        latest = nodes[name].rpc("eth_getBlockByNumber", "latest", False)
        final = nodes[name].rpc("eth_getBlockByNumber", "finalized", False)
        assert latest["hash"] == final["hash"]
    proposers = {nodes["r"].rpc("eth_getBlockByNumber", hex(n), False)["miner"] for n in range(1, head + 1)}
    assert len(proposers) >= 3  # round-robin over heights
    status = nodes["r"].rpc("ewasm_consensusStatus")
    assert status["engine"] == "pbft" and status["finalized"] == status["head"]


def test_one_validator_down_the_chain_goes_on_two_down_it_stops_without_a_fork_and_resumes(nodes):
    nodes["v1"].kill()
    start = nodes["v0"].head()
    wait_for(lambda: nodes["v0"].head() >= start + 3, 30, "three blocks without v1")
    nodes["v2"].kill()
    time.sleep(2)  # a block already voted on may still land
    stalled = nodes["v0"].head()
    time.sleep(3)
    assert nodes["v0"].head() == stalled and nodes["v3"].head() == stalled and nodes["r"].head() == stalled
    agree(nodes, ["v0", "v3", "r"], stalled)
    nodes["v1"].start()
    nodes["v2"].start()
    back = time.monotonic()
    wait_for(lambda: nodes["v0"].head() >= stalled + 2, 60, "commits resuming with the quorum back")
    assert time.monotonic() - back < 45
    wait_for(lambda: min(nodes[n].head() for n in NAMES) >= stalled + 2, 60, "the restarted validators catching up")
    agree(nodes, NAMES, stalled + 2)
