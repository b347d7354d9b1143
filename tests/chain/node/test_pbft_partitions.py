"""Partitions, with network namespaces and veth pairs (root only; skipped with the reason
where they cannot be made): four PBFT validators split 2|2 commit nothing and do not
fork; split 3|1, the three go on and the one waits; healed, the one catches up, and the
history checker passes over every node."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from chain.core.keys import PrivateKey, to_checksum_address
from ewasm_cli.history import check_history

from chain_fixtures import CHAIN_ID
from local_network import NodeProcess, init_datadir, wait_for
from netns import Lab, NetnsUnavailable

pytestmark = pytest.mark.xdist_group("consensus")  # one scenario at a time, beside the "network" group

VALIDATORS = [PrivateKey.from_hex(f"{0x10 + i:064x}") for i in range(4)]
SENDER = Account.from_key(f"{0x1F:064x}")
TO = to_checksum_address(bytes(19) + b"\x44")
P2P_PORT = 30303


def spec() -> dict:
    return {"name": "pbft-partitions",
            "engine": {"pbft": {"validators": ["0x" + k.address.hex() for k in VALIDATORS], "blockPeriod": 0.3,
                                "requestTimeout": 1.0}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": {SENDER.address: {"balance": str(10**24)}},
            "network": {"nodes": ["0x" + k.address.hex() for k in VALIDATORS]}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    try:
        lab = Lab(4)
    except NetnsUnavailable as err:
        pytest.skip(f"no network namespaces here: {err}")
    root = tmp_path_factory.mktemp("partitions")
    nodes = []
    try:
        for k, key in enumerate(VALIDATORS):
            init_datadir(spec(), root / f"v{k}")
            nodes.append(NodeProcess(f"v{k}", key, root / f"v{k}", P2P_PORT, [], root / f"v{k}.log",
                                     host=lab.rpc_host(k), prefix=lab.prefix(k),
                                     peer_addresses=tuple(f"{lab.p2p_host(j)}:{P2P_PORT}" for j in range(k)),
                                     extra=("--p2p-host", lab.p2p_host(k))).start())
        wait_for(lambda: min(n.head() for n in nodes) >= 3, 60, "blocks in the namespaces")
        yield lab, nodes
    finally:
        for node in nodes:
            node.stop()
        lab.close()


def settled_head(nodes, group: list[int], seconds: float = 4.0) -> int:
    """The group's head once a block in flight had time to land; it must then stay."""
    time.sleep(2)
    before = max(nodes[k].head() for k in group)
    time.sleep(seconds)
    after = max(nodes[k].head() for k in group)
    assert after == before, f"nodes {group} committed without a quorum: {before} -> {after}"
    return after


def agree(nodes, up_to: int) -> None:
    for number in range(up_to + 1):
        assert len({n.block_hash(number) for n in nodes}) == 1, f"a fork at block {number}"


def test_split_two_and_two_nothing_commits_and_nothing_forks_then_the_heal_resumes(lab):
    lab, nodes = lab
    lab.partition([2, 3])
    try:
        left, right = settled_head(nodes, [0, 1]), settled_head(nodes, [2, 3], 0.5)
        agree(nodes, min(left, right))
    finally:
        lab.heal()
    head = max(n.head() for n in nodes)
    wait_for(lambda: min(n.head() for n in nodes) >= head + 2, 60, "commits after the heal")
    agree(nodes, head + 2)


def test_split_three_and_one_the_three_go_on_and_the_one_catches_up_after_the_heal(lab):
    lab, nodes = lab
    lab.partition([3])
    hashes = []
    try:
        start = nodes[0].head()
        for nonce in range(3):
            tx = SENDER.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 21_000, "value": 9,
                                          "maxFeePerGas": 10, "maxPriorityFeePerGas": 1, "to": TO, "accessList": []})
            hashes.append(nodes[nonce].rpc("eth_sendRawTransaction", "0x" + bytes(tx.raw_transaction).hex()))
        wait_for(lambda: nodes[0].head() >= start + 4 and all(nodes[0].rpc("eth_getTransactionReceipt", h)
                                                              for h in hashes), 60, "the majority going on")
        alone = settled_head(nodes, [3], 0.5)
        assert alone < nodes[0].head()
    finally:
        lab.heal()
    head = nodes[0].head()
    wait_for(lambda: nodes[3].head() >= head, 60, "the minority catching up")
    wait_for(lambda: min(n.head() for n in nodes) >= max(n.head() for n in nodes) - 1, 30, "every node level")
    accounts = [SENDER.address, TO, *[to_checksum_address(k.address) for k in VALIDATORS]]
    check_history([n.rpc_url for n in nodes], hashes, accounts, 10**24)
