"""Each shard a chain of its own, on real lmdb: a two-shard spec gives two genesis states
(each shard's accounts, the system ones on both) and two chain ids; a shard's chain takes
its own senders' transactions and refuses, with the reason, a sender, a scope or a
recipient of the other shard; a node serves a shard's chain to web3.py as its own chain."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from chain.core.spec import SpecError, parse_spec
from chain.ledger.blockchain import Blockchain
from chain.node.config import NodeConfig
from chain.node.node import Node
from chain.tx.codec import decode_transaction
from chain.tx.errors import OutOfScope, WrongShard
from chain.tx.validation import validate_stateless

CHAIN_ID = 1337


def key_on(shard: int, skip: int = 0) -> Account:
    """A deterministic key whose address is on `shard` of two."""
    found = (Account.from_key(f"{0x5000 + i:064x}") for i in range(1000))
    return [a for a in found if int(a.address[2:4], 16) * 2 // 256 == shard][skip]


ALICE, CAROL, BOB = key_on(0), key_on(0, 1), key_on(1)


def spec() -> dict:
    return {"name": "two-shards", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID},
            "shards": {"count": 2},
            "accounts": {a.address: {"balance": str(10**21)} for a in (ALICE, BOB)}}


@pytest.fixture
def shards(tmp_path):
    parsed = parse_spec(spec())
    chains = [Blockchain.initialize(str(tmp_path / f"shard{k}"), parsed.for_shard(k)) for k in range(2)]
    yield chains
    for chain in chains:
        chain.close()


def transfer(sender: Account, to: str, *, chain_id: int, nonce: int = 0, access: list[str] | None = None):
    access = [sender.address, to] if access is None else access
    signed = sender.sign_transaction({"type": 2, "chainId": chain_id, "nonce": nonce, "gas": 21_000, "value": 5,
                                      "maxFeePerGas": 1, "maxPriorityFeePerGas": 1, "to": to,
                                      "accessList": [{"address": a, "storageKeys": []} for a in access]})
    return decode_transaction(bytes(signed.raw_transaction))


def balance(chain: Blockchain, account: Account) -> int:
    with chain.snapshot() as snap:
        return snap.get_balance(bytes.fromhex(account.address[2:]))


def test_each_shard_has_its_own_accounts_chain_id_and_genesis(shards):
    zero, one = shards
    assert (zero.params.chain_id, one.params.chain_id) == (CHAIN_ID, CHAIN_ID + 1)
    assert (zero.head().shard_id, one.head().shard_id) == (0, 1)
    assert balance(zero, ALICE) == 10**21 and balance(zero, BOB) == 0
    assert balance(one, BOB) == 10**21 and balance(one, ALICE) == 0
    assert zero.head().hash != one.head().hash


def test_a_transfer_inside_a_shard_is_included_declared_or_not(shards):
    zero, _ = shards
    _, execution = zero.build_block([transfer(ALICE, CAROL.address, chain_id=CHAIN_ID),
                                     transfer(ALICE, CAROL.address, chain_id=CHAIN_ID, nonce=1, access=[])],
                                    bytes(20))
    assert [r.status for r in execution.receipts] == [1, 1] and balance(zero, CAROL) == 10


@pytest.mark.parametrize("case, error, fragment", [
    ("another shard's sender", WrongShard, "is on shard 0: send its transactions to shard 0"),
    ("a scope on another shard", OutOfScope, "reaches shard 0"),
    ("a recipient on another shard", OutOfScope, "is on shard 0, not on this transaction's shard 1"),
])
def test_what_reaches_another_shard_is_refused_with_the_reason(shards, case, error, fragment):
    _, one = shards
    tx = {"another shard's sender": lambda: transfer(ALICE, CAROL.address, chain_id=CHAIN_ID + 1),
          "a scope on another shard": lambda: transfer(BOB, BOB.address, chain_id=CHAIN_ID + 1,
                                                       access=[BOB.address, ALICE.address]),
          "a recipient on another shard": lambda: transfer(BOB, ALICE.address, chain_id=CHAIN_ID + 1,
                                                           access=[])}[case]()
    with pytest.raises(error, match=fragment):
        validate_stateless(tx, one.params)


def test_a_datadir_keeps_its_shard_and_refuses_another(tmp_path):
    datadir = str(tmp_path / "shard1")
    Blockchain.initialize(datadir, parse_spec(spec()).for_shard(1)).close()
    reopened = Blockchain.open(datadir)
    try:
        assert reopened.params.shard_id == 1 and reopened.params.chain_id == CHAIN_ID + 1
    finally:
        reopened.close()
    with pytest.raises(SpecError, match="holds shard 1 of this spec, not shard 0"):
        Blockchain.initialize(datadir, parse_spec(spec()).for_shard(0))


@pytest.mark.parametrize("shards, fragment", [({"count": 0}, "shards.count"), ({"count": 257}, "shards.count"),
                                              ({"count": 2, "size": 1}, "unknown field")])
def test_a_bad_shards_section_is_refused(shards, fragment):
    with pytest.raises(SpecError, match=fragment):
        parse_spec({**spec(), "shards": shards})


def test_a_system_account_cannot_hold_a_balance_on_every_shard():
    with pytest.raises(SpecError, match="system address exists on every shard"):
        parse_spec({**spec(), "accounts": {"0x" + "00" * 19 + "09": {"balance": "1"}}})


def test_a_node_serves_a_shard_to_web3_as_its_own_chain(tmp_path):
    datadir = str(tmp_path / "shard1")
    Blockchain.initialize(datadir, parse_spec(spec()).for_shard(1)).close()
    node = Node(NodeConfig(datadir=datadir, rpc_port=0))
    node.start()
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{node.rpc.port}/", request_kwargs={"timeout": 30}))
        assert w3.eth.chain_id == CHAIN_ID + 1 and w3.eth.get_balance(BOB.address) == 10**21
        signed = BOB.sign_transaction({"type": 2, "chainId": CHAIN_ID + 1, "nonce": 0, "gas": 21_000, "value": 7,
                                       "maxFeePerGas": 1, "maxPriorityFeePerGas": 1, "to": BOB.address,
                                       "accessList": []})
        receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), 30)
        assert receipt.status == 1
    finally:
        node.stop()
