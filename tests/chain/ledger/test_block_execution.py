"""Blocks through the serial executor: real VM, real lmdb, real signatures."""

from __future__ import annotations

from eth_account import Account

from chain.core.keys import PrivateKey
from chain.core.spec import parse_spec
from chain.ledger.blockchain import Blockchain
from chain.state.commitment import MerkleTree
from chain.state.overlay import FEE_POT
from chain.tx.codec import decode_transaction
from chain.tx.errors import NonceTooHigh
from chain.tx.signing import sign_scoped_transaction
from contracts.token import balance_of_data, balance_slot, transfer_data
from ewasm_runtime.hashing import create_address

from chain_fixtures import CHAIN_ID, TOKEN_DEPLOYER, token_spec

PROPOSER = b"\x0c" * 20
TOKEN = b"\x70" * 20


def make_chain(tmp_path, senders):
    return Blockchain.initialize(str(tmp_path / "db"), parse_spec(token_spec(senders, [TOKEN])))


def transfer(key, nonce, to=b"\x99" * 20, amount=5, scope=None, price=2):
    return decode_transaction(sign_scoped_transaction(
        key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=200_000, to=TOKEN, data=transfer_data(to, amount),
        scope=scope or [key.address, TOKEN], max_fee_per_gas=price, max_priority_fee_per_gas=price))


def test_token_transfers_update_balances_receipts_logs_and_fees(tmp_path):
    key = PrivateKey.generate()
    chain = make_chain(tmp_path, [key.address])
    before = chain.snapshot().get_account(key.address).balance
    block, execution = chain.build_block([transfer(key, 0), transfer(key, 1)], PROPOSER)
    assert [r.status for r in execution.receipts] == [1, 1]
    assert execution.receipts[1].cumulative_gas_used == sum(r.gas_used for r in execution.receipts)
    assert execution.receipts[0].logs[0].address == TOKEN
    with chain.snapshot() as snap:
        assert int.from_bytes(snap.get_storage(TOKEN, balance_slot(b"\x99" * 20)), "big") == 10
        assert snap.get_account(key.address).nonce == 2
        fees = sum(r.fee for r in execution.receipts)
        assert fees == 2 * execution.gas_used
        assert snap.get_account(PROPOSER).balance == fees
        assert snap.get_account(key.address).balance == before - fees
        assert snap.get_account(FEE_POT).balance == 0
    assert block.header.gas_used == execution.gas_used and block.header.parent_hash == chain.store.header(0).hash
    chain.close()


def test_the_state_root_in_the_header_matches_a_tree_rebuilt_from_lmdb(tmp_path):
    key = PrivateKey.generate()
    chain = make_chain(tmp_path, [key.address])
    for nonce in range(3):
        block, _ = chain.build_block([transfer(key, nonce, to=bytes([nonce]) * 20)], PROPOSER)
    with chain.snapshot() as snap:
        assert MerkleTree.from_entries(snap.commitment_entries()).root == block.header.state_root
    chain.close()
    reopened = Blockchain.open(str(tmp_path / "db"))
    assert reopened.head() == block.header
    reopened.close()


def test_transactions_invalid_against_the_state_are_left_out_with_the_reason(tmp_path):
    key = PrivateKey.generate()
    chain = make_chain(tmp_path, [key.address])
    _, execution = chain.build_block([transfer(key, 0), transfer(key, 5), transfer(key, 1)], PROPOSER)
    assert [tx.nonce for tx in execution.included] == [0, 1]
    (excluded, error), = execution.excluded
    assert excluded.nonce == 5 and isinstance(error, NonceTooHigh)
    chain.close()


def test_a_reverted_transfer_is_included_uses_its_nonce_and_pays_for_gas(tmp_path):
    key = PrivateKey.generate()
    chain = make_chain(tmp_path, [key.address])
    raw = sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=0, gas_limit=3_000_000, to=TOKEN,
                                  data=transfer_data(b"\x01" * 20, 10**9), scope=[key.address, TOKEN],
                                  max_fee_per_gas=1, max_priority_fee_per_gas=1)
    _, execution = chain.build_block([decode_transaction(raw)], PROPOSER)
    assert execution.receipts[0].status == 0  # balance too small: the token reverts
    assert execution.receipts[0].error.startswith("REVERT")
    with chain.snapshot() as snap:
        assert snap.get_account(key.address).nonce == 1
        assert snap.get_account(PROPOSER).balance == execution.receipts[0].fee > 0
    chain.close()


def test_eth_account_signed_deployment_creates_the_token_at_the_ethereum_address(tmp_path):
    account = Account.create()
    sender = bytes.fromhex(account.address[2:])
    chain = make_chain(tmp_path, [sender])
    raw = account.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": 0, "maxFeePerGas": 1,
                                    "maxPriorityFeePerGas": 1, "gas": 5_000_000, "data": TOKEN_DEPLOYER,
                                    "value": 0, "accessList": []}).raw_transaction
    _, execution = chain.build_block([decode_transaction(bytes(raw))], PROPOSER)
    created = execution.receipts[0].contract_address
    assert execution.receipts[0].status == 1 and created == create_address(sender, 0)
    result = chain.call(sender=sender, to=created, data=balance_of_data(sender))
    assert result.status == "SUCCESS" and int.from_bytes(result.output, "big") == 10**24
    chain.close()


def test_the_block_context_holds_the_hashes_of_the_last_256_blocks_as_the_store_has_them(tmp_path):
    key = PrivateKey.generate()
    chain = make_chain(tmp_path, [key.address])
    for nonce in range(3):
        chain.build_block([transfer(key, nonce)], PROPOSER)
    hashes = chain.context(PROPOSER).block_hashes
    assert hashes == {n: chain.store.header(n).hash for n in range(4)}
    chain.close()
    reopened = Blockchain.open(str(tmp_path / "db"))
    assert reopened.context(PROPOSER).block_hashes == hashes
    reopened.close()


def test_the_hash_window_slides_past_256_blocks():
    from chain.core.blocks import Header

    chain = Blockchain.__new__(Blockchain)
    chain._recent_hashes = {n: bytes([n % 256]) * 32 for n in range(44, 300)}
    header = Header(shard_id=0, number=300, parent_hash=bytes(32), timestamp=0, proposer=bytes(20),
                    state_root=bytes(32), transactions_root=bytes(32), receipts_root=bytes(32),
                    outgoing_receipts_root=bytes(32),
                    deliveries_root=bytes(32), validator_set_hash=bytes(32), gas_limit=1, gas_used=0)
    window = chain._advance_recent_hashes(header)
    assert sorted(window) == list(range(45, 301)) and window[300] == header.hash
