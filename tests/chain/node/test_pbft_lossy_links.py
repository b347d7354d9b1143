"""Consensus messages lost, delayed and reordered at random (the test-only lossy links of
chain/net/faults.py, seeded): four PBFT validators keep one history while a fifth of
every validator's messages are lost, and once the faults stop (the same nodes restarted
without them) blocks commit again at once."""

from __future__ import annotations

import pytest
from eth_account import Account

from chain.core.keys import PrivateKey, to_checksum_address
from ewasm_cli.history import check_history

from chain_fixtures import CHAIN_ID
from local_network import NodeProcess, free_ports, init_datadir, wait_for

pytestmark = pytest.mark.xdist_group("consensus")  # one scenario at a time, beside the "network" group

VALIDATORS = [PrivateKey.from_hex(f"{0x20 + i:064x}") for i in range(4)]
SENDER = Account.from_key(f"{0x2F:064x}")
TO = to_checksum_address(bytes(19) + b"\x55")


def spec() -> dict:
    return {"name": "pbft-lossy",
            "engine": {"pbft": {"validators": ["0x" + k.address.hex() for k in VALIDATORS], "blockPeriod": 0.3,
                                "requestTimeout": 1.0}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": {SENDER.address: {"balance": str(10**24)}},
            "network": {"nodes": ["0x" + k.address.hex() for k in VALIDATORS]}}


def transfers(nodes, first: int, count: int) -> list[str]:
    hashes = []
    for nonce in range(first, first + count):
        tx = SENDER.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 21_000, "value": 3,
                                      "maxFeePerGas": 10, "maxPriorityFeePerGas": 1, "to": TO, "accessList": []})
        hashes.append(nodes[nonce % 4].rpc("eth_sendRawTransaction", "0x" + bytes(tx.raw_transaction).hex()))
    wait_for(lambda: all(nodes[0].rpc("eth_getTransactionReceipt", h) for h in hashes), 90, "the transfers")
    return hashes


def test_lost_and_delayed_consensus_messages_break_no_history_and_commits_resume_once_they_stop(tmp_path):
    ports = free_ports(4)
    nodes = []
    try:
        for i, key in enumerate(VALIDATORS):
            init_datadir(spec(), tmp_path / f"v{i}")
            nodes.append(NodeProcess(f"v{i}", key, tmp_path / f"v{i}", ports[i], ports[:i], tmp_path / f"v{i}.log",
                                     extra=("--test-fault", f"lossy:{i}")).start())
        wait_for(lambda: min(n.head() for n in nodes) >= 5, 120, "blocks over lossy links")
        hashes = transfers(nodes, 0, 4)
        wait_for(lambda: min(n.head() for n in nodes) >= max(n.head() for n in nodes) - 1, 60, "every node level")
        accounts = [SENDER.address, TO, *[to_checksum_address(k.address) for k in VALIDATORS]]
        check_history([n.rpc_url for n in nodes], hashes, accounts, 10**24)
        for node in nodes:  # the faults stop
            node.stop()
            node.extra = ()
        for node in nodes:
            node.start()
        head = max(n.head() for n in nodes)
        wait_for(lambda: min(n.head() for n in nodes) >= head + 3, 30, "commits once the faults stopped")
        hashes += transfers(nodes, 4, 4)
        wait_for(lambda: min(n.head() for n in nodes) >= max(n.head() for n in nodes) - 1, 60, "every node level")
        check_history([n.rpc_url for n in nodes], hashes, accounts, 10**24)
        assert all(n.rpc("ewasm_evidence") == [] for n in nodes)
    finally:
        for node in nodes:
            node.stop()
