"""An equivocating PBFT validator: one of four runs a test-only mode in which it sends a
second, conflicting PROPOSAL and COMMIT after each of its own. The others never fork,
keep committing, and record the pairs as evidence (ewasm_evidence), each with both
signed messages."""

from __future__ import annotations

import pytest
from eth_account import Account

from chain.consensus.pbft.messages import Kind, Signed
from chain.core.keys import PrivateKey, to_checksum_address
from ewasm_cli.history import check_history

from chain_fixtures import CHAIN_ID
from local_network import NodeProcess, free_ports, init_datadir, wait_for

pytestmark = pytest.mark.xdist_group("consensus")  # one scenario at a time, beside the "network" group

VALIDATORS = [PrivateKey.from_hex(f"{0x30 + i:064x}") for i in range(4)]
SENDER = Account.from_key(f"{0x3F:064x}")
BYZANTINE = 1


def spec() -> dict:
    return {"name": "pbft-equivocation",
            "engine": {"pbft": {"validators": ["0x" + k.address.hex() for k in VALIDATORS], "blockPeriod": 0.3,
                                "requestTimeout": 1.0}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": {SENDER.address: {"balance": str(10**24)}},
            "network": {"nodes": ["0x" + k.address.hex() for k in VALIDATORS]}}


def test_an_equivocating_validator_forks_nothing_and_is_caught(tmp_path):
    ports = free_ports(4)
    nodes = []
    try:
        for i, key in enumerate(VALIDATORS):
            init_datadir(spec(), tmp_path / f"v{i}")
            extra = ("--test-fault", "equivocate") if i == BYZANTINE else ()
            nodes.append(NodeProcess(f"v{i}", key, tmp_path / f"v{i}", ports[i], ports[:i], tmp_path / f"v{i}.log",
                                     extra=extra).start())
        wait_for(lambda: min(n.head() for n in nodes) >= 8, 90, "eight blocks with a Byzantine validator")
        hashes = []
        for nonce in range(4):
            tx = SENDER.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 21_000,
                                          "maxFeePerGas": 10, "maxPriorityFeePerGas": 1, "value": 5,
                                          "to": to_checksum_address(bytes(19) + b"\x77"), "accessList": []})
            hashes.append(nodes[nonce].rpc("eth_sendRawTransaction", "0x" + bytes(tx.raw_transaction).hex()))
        wait_for(lambda: all(nodes[0].rpc("eth_getTransactionReceipt", h) for h in hashes), 60, "the transfers")
        wait_for(lambda: min(n.head() for n in nodes) >= max(n.head() for n in nodes) - 1, 30, "every node level")
        accounts = [SENDER.address, to_checksum_address(bytes(19) + b"\x77"),
                    *[to_checksum_address(k.address) for k in VALIDATORS]]
        check_history([n.rpc_url for n in nodes], hashes, accounts, 10**24)
        honest = [n for i, n in enumerate(nodes) if i != BYZANTINE]
        evidence = [e for n in honest for e in n.rpc("ewasm_evidence")]
        byzantine = "0x" + VALIDATORS[BYZANTINE].address.hex()
        assert evidence and all(e["validator"] == byzantine for e in evidence)
        assert {e["kind"] for e in evidence} <= {"PROPOSAL", "COMMIT"} and "COMMIT" in {e["kind"] for e in evidence}
        first, second = (Signed.decode(bytes.fromhex(evidence[0][k][2:])) for k in ("first", "second"))
        assert first.sender == second.sender == VALIDATORS[BYZANTINE].address
        assert first.message.kind == second.message.kind in (Kind.PROPOSAL, Kind.COMMIT)
        assert (first.message.height, first.message.round) == (second.message.height, second.message.round)
        assert first.message.digest != second.message.digest
    finally:
        for node in nodes:
            node.stop()
