"""Four PoA validators and a regular node, each a real process on loopback: the
validators take turns by step, every node agrees on every block, blocks become final,
a validator's block out of its turn is refused, and the chain goes on without a
validator that is killed, which catches up and seals again when it comes back."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from chain.consensus.poa.steps import step_at
from chain.core.keys import PrivateKey, to_checksum_address

from chain_fixtures import CHAIN_ID
from local_network import NodeProcess, forged_block, full_mesh, hostile_announcement, wait_for

pytestmark = pytest.mark.xdist_group("network")

VALIDATORS = [PrivateKey.from_hex(f"{0xA0 + i:064x}") for i in range(4)]
REGULAR = PrivateKey.from_hex(f"{0xA9:064x}")
HOSTILE = PrivateKey.from_hex(f"{0xAF:064x}")  # on the list, never run: it forges
SENDERS = [Account.from_key(f"{0xE0 + i:064x}") for i in range(4)]
STEP = 0.5
NAMES = ["v0", "v1", "v2", "v3", "r"]


def spec() -> dict:
    return {"name": "aura-test",
            "engine": {"poa": {"validators": ["0x" + k.address.hex() for k in VALIDATORS], "stepDuration": STEP}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": {s.address: {"balance": str(10**24)} for s in SENDERS},
            "network": {"nodes": ["0x" + k.address.hex() for k in [*VALIDATORS, REGULAR, HOSTILE]]}}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    with full_mesh(tmp_path_factory.mktemp("aura"), spec(), NAMES, [*VALIDATORS, REGULAR]) as made:
        yield made


def transfer(sender, nonce: int) -> str:
    tx = sender.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 21_000,
                                  "maxFeePerGas": 10, "maxPriorityFeePerGas": 1, "value": 1,
                                  "to": to_checksum_address((0xF00 + nonce).to_bytes(20, "big")), "accessList": []})
    return "0x" + bytes(tx.raw_transaction).hex()


def miner(node: NodeProcess, number: int) -> str:
    return node.rpc("eth_getBlockByNumber", hex(number), False)["miner"].lower()


def agree(nodes, names, up_to: int) -> None:
    for number in range(up_to + 1):
        hashes = {nodes[n].block_hash(number) for n in names}
        assert len(hashes) == 1, f"block {number} differs: {hashes}"


def test_validators_take_turns_every_node_agrees_and_blocks_become_final(nodes):
    hashes = []
    for nonce in range(3):
        for i, sender in enumerate(SENDERS):  # each sender through another node, the regular one included
            hashes.append(nodes[NAMES[(i + nonce) % 5]].rpc("eth_sendRawTransaction", transfer(sender, nonce)))
    wait_for(lambda: all(nodes[n].rpc("eth_getTransactionReceipt", h) for n in NAMES for h in hashes), 60,
             "every transfer on every node")
    head = wait_for(lambda: min(nodes[n].head() for n in NAMES) >= 8 and min(nodes[n].head() for n in NAMES),
                    30, "eight blocks everywhere")
    # Blocks are built on each step by its validator: give the last few a moment to settle everywhere.
    agree(nodes, NAMES, head - 2)
    miners = {miner(nodes["r"], n) for n in range(1, head + 1)}
    assert miners == {"0x" + k.address.hex() for k in VALIDATORS}, "all four validators sealed blocks"
    status = nodes["r"].rpc("ewasm_consensusStatus")
    assert status["engine"] == "poa" and status["peers"] == 4 and status["evidence"] == []
    assert 1 <= status["finalized"] <= status["head"]
    final = nodes["v0"].rpc("eth_getBlockByNumber", "finalized", False)
    assert int(final["number"], 16) >= 1
    assert final["hash"] == nodes["r"].block_hash(int(final["number"], 16))


def test_a_validators_block_in_another_validators_step_is_refused_and_its_sender_banned(nodes):
    regular = nodes["r"]
    for _ in range(10):  # a real block may take the head first: then the forgery is only a fork, so again
        seen = regular.head()  # forge just after a block lands, so that the next real one is a step away
        wait_for(lambda: regular.head() > seen, 30, "a new block")
        step = step_at(time.time(), STEP) + 1
        intruder = VALIDATORS[(step + 1) % len(VALIDATORS)]  # properly signed, but not this step's validator
        answer = hostile_announcement(HOSTILE, CHAIN_ID, regular, forged_block(regular, intruder, step, STEP), wait=5)
        if answer is not None:
            break
    assert answer is not None and "invalid block" in answer and "belongs to validator" in answer, answer
    start = nodes["v0"].head()
    wait_for(lambda: regular.head() >= start + 2, 30, "the chain going on")


def test_the_chain_goes_on_without_a_killed_validator_which_catches_up_and_seals_again(nodes):
    down = nodes["v2"]
    down.kill()
    start = nodes["v0"].head()
    wait_for(lambda: nodes["v0"].head() >= start + 6, 30, "six blocks without v2")
    others = ["v0", "v1", "v3", "r"]
    gone = "0x" + VALIDATORS[2].address.hex()
    assert gone not in {miner(nodes["v0"], n) for n in range(start + 1, nodes["v0"].head() + 1)}
    down.start()
    back_at = nodes["v0"].head()
    wait_for(lambda: down.head() >= back_at, 30, "v2 catching up")
    wait_for(lambda: any(miner(nodes["v0"], n) == gone for n in range(back_at, nodes["v0"].head() + 1)), 30,
             "a block sealed by v2 again")
    agree(nodes, [*others, "v2"], back_at)
