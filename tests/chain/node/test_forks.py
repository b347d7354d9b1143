"""Switching forks: validators that did not see each other's blocks build two branches;
a node takes the better one, reverting to the common ancestor, and gives back to its
pool what the left branch had included."""

from __future__ import annotations

import pytest
from eth_account import Account

from chain.consensus.poa.steps import encode_step, step_timestamp
from chain.core.blocks import Block, InvalidBlock
from chain.core.keys import PrivateKey
from chain.core.spec import parse_spec
from chain.ledger.blockchain import Blockchain
from chain.node.config import NodeConfig
from chain.node.forks import Branch, SideBlocks
from chain.node.node import Node
from chain.tx.codec import decode_transaction

from chain_fixtures import CHAIN_ID

KEYS = [PrivateKey.from_hex(f"{0x90 + i:064x}") for i in range(4)]
SENDER = Account.from_key("0x" + "5e" * 32)
STEP = 1.0


def spec() -> dict:
    return {"name": "forks", "engine": {"poa": {"validators": ["0x" + k.address.hex() for k in KEYS],
                                                "stepDuration": STEP}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": {SENDER.address: {"balance": str(10**24)}}}


@pytest.fixture
def nodes(tmp_path):
    made = []

    def node(index: int) -> Node:
        datadir = str(tmp_path / f"v{index}")
        Blockchain.initialize(datadir, parse_spec(spec())).close()
        made.append(Node(NodeConfig(datadir=datadir, rpc_port=0, key=KEYS[index])))
        return made[-1]

    yield node
    for n in made:
        n.chain.close()


def seal_step(node: Node, step: int) -> Block:
    """Have `node` (the validator of `step`) seal its block of that step on its head."""
    block = node.produce_block(node.engine, timestamp=step_timestamp(step, STEP), extra_data=encode_step(step),
                               allow_empty=True)
    assert block is not None
    return block


def transfer(nonce: int) -> bytes:
    tx = SENDER.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 21_000, "maxFeePerGas": 10,
                                  "maxPriorityFeePerGas": 1, "to": "0x" + "77" * 20, "value": 5, "accessList": []})
    return bytes(tx.raw_transaction)


def branch_of(node: Node, side: list[Block]) -> Branch:
    blocks = SideBlocks()
    for block in side[:-1]:
        blocks.add(block)
    branch = blocks.branch(side[-1], node.chain.store.block_number_of)
    assert isinstance(branch, Branch)
    return branch


def test_a_node_switches_to_the_longer_fork_and_its_left_transactions_go_back_to_the_pool(nodes):
    v1, v2, v3 = nodes(1), nodes(2), nodes(3)
    v1.admit(decode_transaction(transfer(0)))
    left = seal_step(v1, 1)  # v1 saw nobody: block 1 at step 1, with the transfer
    mine = seal_step(v2, 2)  # v2 did not see it: its own block 1 at step 2, empty
    v3.import_block(mine)
    theirs = seal_step(v3, 3)  # v3 builds on v2's: block 2 at step 3
    assert left.transactions and not mine.transactions

    branch = branch_of(v1, [mine, theirs])
    assert branch.ancestor == 0 and [b.number for b in branch.blocks] == [1, 2]
    assert v1.engine.prefers(theirs.header, v1.head())
    v1.switch_to(branch.ancestor, branch.blocks)
    assert v1.head().hash == theirs.hash and v1.chain.tree.root == v3.chain.tree.root
    assert v1.chain.store.transaction(decode_transaction(left.transactions[0]).hash) is None
    assert v1.pending_raws() == [transfer(0)]  # the left block's transfer waits to be included again


def test_after_a_switch_the_senders_later_transactions_stay_pending_behind_the_ones_given_back(nodes):
    v1, v2, v3 = nodes(1), nodes(2), nodes(3)
    for nonce in range(10):
        v1.admit(decode_transaction(transfer(nonce)))
    left = seal_step(v1, 1)
    for nonce in range(10, 100):  # more than a sender may queue behind a gap
        v1.admit(decode_transaction(transfer(nonce)))
    mine = seal_step(v2, 2)
    v3.import_block(mine)
    branch = branch_of(v1, [mine, seal_step(v3, 3)])
    v1.switch_to(branch.ancestor, branch.blocks)
    assert len(left.transactions) == 10 and v1.pool_status() == (100, 0)
    assert v1.pending_raws() == [transfer(nonce) for nonce in range(100)]


def test_between_forks_of_equal_length_the_lower_step_stays(nodes):
    v1, v2 = nodes(1), nodes(2)
    seal_step(v1, 1)
    later = seal_step(v2, 2)
    assert not v1.engine.prefers(later.header, v1.head())


def test_a_fork_below_the_final_block_is_refused(nodes):
    v1, v2 = nodes(1), nodes(2)
    seal_step(v1, 1)
    v1.chain.finalize(1)
    other = [seal_step(v2, 2), seal_step(v2, 6)]  # v2's steps 2 and 6: a longer branch from genesis
    with pytest.raises(InvalidBlock, match="final block 1"):
        v1.switch_to(0, other)
    assert v1.head().number == 1


def test_a_fork_with_an_invalid_block_leaves_the_node_on_its_own_chain(nodes):
    v1, v2, v3 = nodes(1), nodes(2), nodes(3)
    own = seal_step(v1, 1)
    before = (v1.head().hash, v1.chain.tree.root)
    good = seal_step(v2, 2)
    v3.import_block(good)
    bad = seal_step(v3, 3)
    forged = Block(bad.header.with_seal(b"\x01" * 65), bad.transactions)
    with pytest.raises(InvalidBlock, match="seal"):
        v1.switch_to(0, [good, forged])
    assert (v1.head().hash, v1.chain.tree.root) == before and v1.chain.store.block(1) == own
