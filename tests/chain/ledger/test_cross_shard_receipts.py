"""Cross-shard receipts between two shard chains on real lmdb, through the real VM and the
system outbox: value leaves one shard in a block whose header commits the receipt, lands
on the other once that block is final, and comes back as a refund when the receiver
fails; a receipt is consumed once, and forged, unfinal or misdirected ones are refused.
Random transfers (hypothesis) conserve the supply after every block."""

from __future__ import annotations

import pytest
import wasmtime
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.consensus.instant.rules import InstantRules
from chain.core.blocks import InvalidBlock
from chain.core.cross_shard import Delivery, outgoing_root
from chain.core.keys import to_checksum_address
from chain.core.spec import parse_spec
from chain.core.system import OUTBOX
from chain.execution.deliveries import DELIVERED, REFUNDED
from chain.ledger.blockchain import Blockchain
from chain.ledger.receipt_sources import InvalidDelivery, check_delivery
from chain.tx.codec import decode_transaction
from contracts import load_system
from tests.chain.ledger.test_shard_chains import CHAIN_ID, key_on

ALICE, CAROL, BOB, DAVE = key_on(0), key_on(0, 1), key_on(1), key_on(1, 1)
REVERTER = bytes.fromhex("f5" + "00" * 18 + "01")  # on shard 1: a contract that always reverts
REVERT_CODE = wasmtime.wat2wasm('(module (import "ethereum" "revert" (func $revert (param i32 i32)))'
                               ' (memory (export "memory") 1)'
                               ' (func (export "main") (call $revert (i32.const 0) (i32.const 0))))')
PROPOSER = bytes(19) + b"\x77"  # a system address: on every shard, it collects each shard's fees
FUNDS = 10**21


def address(account: Account) -> bytes:
    return bytes.fromhex(account.address[2:])


def spec() -> dict:
    return {"name": "two-shards", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID},
            "shards": {"count": 2},
            "accounts": {**{a.address: {"balance": str(FUNDS)} for a in (ALICE, CAROL, BOB, DAVE)},
                         "0x" + OUTBOX.hex(): {"code": "0x" + load_system("outbox.wasm").hex(), "nonce": 1},
                         "0x" + REVERTER.hex(): {"code": "0x" + bytes(REVERT_CODE).hex(), "nonce": 1}}}


class Shards:
    """Both shards' chains; each learns the other's final headers from it directly (a
    node's shard processes ask each other over RPC instead)."""

    def __init__(self, tmp_path, name: str = "shard", raw: dict | None = None):
        parsed = parse_spec(raw or spec())
        self.chains = [Blockchain.initialize(str(tmp_path / f"{name}{k}"), parsed.for_shard(k)) for k in range(2)]
        for chain in self.chains:
            chain.sources = self

    def final_header(self, shard: int, number: int):
        return self.chains[shard].final_header(shard, number)

    def close(self) -> None:
        for chain in self.chains:
            chain.close()


@pytest.fixture
def shards(tmp_path):
    made = Shards(tmp_path)
    yield made
    made.close()


def send_across(sender: Account, to: bytes, value: int, *, nonce: int = 0, gas: int = 100_000):
    """A transfer through the outbox, from `sender`'s shard to `to`'s."""
    shard = int(sender.address[2:4], 16) * 2 // 256
    signed = sender.sign_transaction({"type": 2, "chainId": CHAIN_ID + shard, "nonce": nonce, "gas": gas,
                                      "value": value, "maxFeePerGas": 1, "maxPriorityFeePerGas": 1,
                                      "to": to_checksum_address(OUTBOX), "data": "0x" + to.hex(),
                                      "accessList": [{"address": sender.address, "storageKeys": []},
                                                     {"address": to_checksum_address(OUTBOX), "storageKeys": []}]})
    return decode_transaction(bytes(signed.raw_transaction))


def balance(chain: Blockchain, who: bytes) -> int:
    with chain.snapshot() as snap:
        return snap.get_balance(who)


def test_value_sent_through_the_outbox_leaves_at_once_and_lands_once_the_block_is_final(shards):
    zero, one = shards.chains
    block, execution = zero.build_block([send_across(ALICE, address(BOB), 1234)], PROPOSER)
    receipt = execution.receipts[0]
    assert receipt.status == 1, receipt.error
    fee = receipt.gas_used  # price 1
    assert balance(zero, address(ALICE)) == FUNDS - 1234 - fee
    assert balance(zero, OUTBOX) == 0
    [sent] = execution.outgoing
    assert (sent.source_shard, sent.dest_shard, sent.to, sent.value, sent.refund_to) == (0, 1, address(BOB), 1234,
                                                                                          address(ALICE))
    assert block.header.outgoing_receipts_root == outgoing_root([sent])
    deliveries = zero.outgoing_deliveries(block.number, dest_shard=1)
    assert [d.receipt for d in deliveries] == [sent]
    landed, done = one.build_block([], PROPOSER, deliveries=deliveries)
    assert [(d.outcome, d.error) for d in done.deliveries] == [(DELIVERED, "")]
    assert balance(one, address(BOB)) == FUNDS + 1234
    assert one.consumed(sent.id) == ("delivered", landed.number)
    assert zero.consumed(sent.id) is None


def test_a_receipt_is_consumed_once_a_second_delivery_is_left_out_and_a_block_carrying_it_is_invalid(shards, tmp_path):
    zero, one = shards.chains
    block, _ = zero.build_block([send_across(ALICE, address(BOB), 50)], PROPOSER)
    deliveries = zero.outgoing_deliveries(block.number, 1)
    replica = Blockchain.initialize(str(tmp_path / "replica1"), one.spec)
    replica.sources = shards
    try:
        first, _ = one.build_block([], PROPOSER, deliveries=deliveries)
        replica.import_block(first, InstantRules())
        again, execution = one.build_block([], PROPOSER, deliveries=deliveries + deliveries)
        assert execution.deliveries == []
        assert "was consumed in block 1 (delivered)" in execution.refused_deliveries[0][1]
        forged = type(again)(again.header, again.transactions, tuple(d.encode() for d in deliveries))
        with pytest.raises(InvalidBlock, match="delivery 0 is invalid where it stands: receipt .* was consumed"):
            replica.import_block(forged, InstantRules())
        assert balance(replica, address(BOB)) == FUNDS + 50
    finally:
        replica.close()


def test_a_forged_a_misdirected_and_an_unfinal_receipt_are_refused_with_the_reason(shards):
    zero, one = shards.chains
    block, _ = zero.build_block([send_across(ALICE, address(BOB), 50)], PROPOSER)
    [delivery] = zero.outgoing_deliveries(block.number, 1)
    receipt = delivery.receipt
    more = Delivery(type(receipt)(**{**receipt.__dict__, "value": 10**20}), delivery.source_hash, delivery.proof)
    with pytest.raises(InvalidDelivery, match="its proof does not verify"):
        check_delivery(more, one.params, one)
    with pytest.raises(InvalidDelivery, match="is for shard 1, this is shard 0"):
        check_delivery(delivery, zero.params, zero)
    elsewhere = Delivery(receipt, bytes(32), delivery.proof)
    with pytest.raises(InvalidDelivery, match="names block 0x0000"):
        check_delivery(elsewhere, one.params, one)
    zero.keep_undo = True  # blocks from now on stay revertible until finalized
    later, _ = zero.build_block([send_across(ALICE, address(BOB), 7, nonce=1)], PROPOSER)
    [unfinal] = zero.outgoing_deliveries(later.number, 1)
    with pytest.raises(InvalidDelivery, match=f"block {later.number} of shard 0 is not final here"):
        check_delivery(unfinal, one.params, one)
    zero.finalize(later.number)
    assert check_delivery(unfinal, one.params, one).hash == later.hash


def test_a_receiver_that_fails_sends_the_exact_value_back_to_the_sender(shards):
    zero, one = shards.chains
    block, execution = zero.build_block([send_across(ALICE, REVERTER, 999)], PROPOSER)
    after_send = balance(zero, address(ALICE))
    landed, done = one.build_block([], PROPOSER, deliveries=zero.outgoing_deliveries(block.number, 1))
    assert done.deliveries[0].outcome == REFUNDED and "REVERT" in done.deliveries[0].error
    assert balance(one, REVERTER) == 0 and balance(one, OUTBOX) == 0
    [refund] = done.outgoing
    assert (refund.dest_shard, refund.to, refund.value, refund.refund_of) == (0, address(ALICE), 999,
                                                                              execution.outgoing[0].id)
    back, finished = zero.build_block([], PROPOSER, deliveries=one.outgoing_deliveries(landed.number, 0))
    assert finished.deliveries[0].outcome == DELIVERED and finished.outgoing == []
    assert balance(zero, address(ALICE)) == after_send + 999
    assert one.consumed(execution.outgoing[0].id) == ("refunded", landed.number)


def test_the_outbox_refuses_calldata_that_is_not_one_address_and_a_transfer_of_nothing(shards):
    zero, _ = shards.chains
    txs = [send_across(ALICE, address(BOB)[:19], 5), send_across(ALICE, address(BOB), 0, nonce=1),
           send_across(ALICE, OUTBOX, 5, nonce=2)]
    _, execution = zero.build_block(txs, PROPOSER)
    assert [r.status for r in execution.receipts] == [0, 0, 0] and execution.outgoing == []


def total_supply(shards: Shards) -> int:
    """Every balance on every shard, plus the value in receipts sent and not yet consumed."""
    total = 0
    for chain in shards.chains:
        with chain.snapshot() as snap:
            total += sum(account.balance for _, account in snap.accounts())
    for chain in shards.chains:
        for number in range(1, chain.head().number + 1):
            for delivery in chain.outgoing_deliveries(number):
                if shards.chains[delivery.receipt.dest_shard].consumed(delivery.receipt.id) is None:
                    total += delivery.receipt.value
    return total


ACCOUNTS = [ALICE, CAROL, BOB, DAVE]
TARGETS = [address(a) for a in ACCOUNTS] + [REVERTER]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(1, 10**18), st.booleans()),
                min_size=1, max_size=12))
def test_random_transfers_across_shards_conserve_the_supply_after_every_block(tmp_path_factory, plan):
    shards = Shards(tmp_path_factory.mktemp("supply"))
    try:
        supply = total_supply(shards)
        nonces = [0] * len(ACCOUNTS)
        delivered = [0, 0]  # per shard: the source blocks whose receipts it has taken
        for sender, target, value, deliver_now in plan:
            shard = sender // 2
            tx = send_across(ACCOUNTS[sender], TARGETS[target], value, nonce=nonces[sender])
            nonces[sender] += 1
            shards.chains[shard].build_block([tx], PROPOSER)
            assert total_supply(shards) == supply
            if deliver_now:
                for dest in (0, 1):
                    _deliver_all(shards, dest, delivered)
                    assert total_supply(shards) == supply
        for _ in range(3):  # deliveries, refunds, refunds' deliveries
            for dest in (0, 1):
                _deliver_all(shards, dest, delivered)
        assert total_supply(shards) == supply
        for chain in shards.chains:
            for number in range(1, chain.head().number + 1):
                for d in chain.outgoing_deliveries(number):  # every receipt consumed, exactly once
                    assert shards.chains[d.receipt.dest_shard].consumed(d.receipt.id) is not None
    finally:
        shards.close()


def _deliver_all(shards: Shards, dest: int, delivered: list[int]) -> None:
    """One block on `dest` with every receipt for it from the other shard's blocks so far."""
    source = shards.chains[1 - dest]
    pending = [d for n in range(delivered[dest] + 1, source.head().number + 1)
               for d in source.outgoing_deliveries(n, dest)]
    same = shards.chains[dest]
    pending += [d for n in range(1, same.head().number + 1) for d in same.outgoing_deliveries(n, dest)
                if same.consumed(d.receipt.id) is None]
    delivered[dest] = source.head().number
    if pending:
        _, execution = same.build_block([], PROPOSER, deliveries=pending)
        assert not execution.refused_deliveries


def test_a_held_block_is_committed_only_with_the_body_it_was_executed_with(shards):
    """A decided PBFT block is committed as executed when held; a body that lost its
    deliveries on the way is not (its import then finds the state root wrong)."""
    zero, one = shards.chains
    block, _ = zero.build_block([send_across(ALICE, address(BOB), 50)], PROPOSER)
    with one.lock:
        candidate = one.build([], PROPOSER, deliveries=zero.outgoing_deliveries(block.number, 1))
        one.hold(candidate)
    stripped = type(candidate.block)(candidate.block.header, candidate.block.transactions, ())
    assert one.commit_held(stripped, InstantRules()) is None
    assert one.commit_held(candidate.block, InstantRules()) is not None
    assert balance(one, address(BOB)) == FUNDS + 50


def test_value_delivered_to_the_fee_pot_goes_to_the_proposer_and_none_is_lost(shards):
    from chain.state.overlay import FEE_POT
    zero, one = shards.chains
    supply = total_supply(shards)
    block, _ = zero.build_block([send_across(ALICE, FEE_POT, 10**18)], PROPOSER)
    one.build_block([], PROPOSER, deliveries=zero.outgoing_deliveries(block.number, 1))
    assert total_supply(shards) == supply


def test_a_block_whose_source_is_not_final_here_is_not_yet_verifiable_rather_than_invalid(shards, tmp_path):
    from chain.core.blocks import NotYetVerifiable
    zero, one = shards.chains
    block, _ = zero.build_block([send_across(ALICE, address(BOB), 9)], PROPOSER)
    built, _ = one.build_block([], PROPOSER, deliveries=zero.outgoing_deliveries(block.number, 1))
    replica = Blockchain.initialize(str(tmp_path / "behind1"), one.spec)
    try:
        with pytest.raises(NotYetVerifiable, match="cannot be checked yet"):
            replica.import_block(built, InstantRules())  # it knows no other shard
        replica.sources = shards
        replica.import_block(built, InstantRules())
        assert balance(replica, address(BOB)) == FUNDS + 9
    finally:
        replica.close()
