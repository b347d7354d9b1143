"""The receipt relay against real shard chains (lmdb, VM), with the node's other shard
read in process: receipts of final blocks reach the inbox once, consumed ones never,
and neither a full inbox nor a restart lets its cursor pass a receipt still waiting."""

from __future__ import annotations

import pytest

from chain.node.relay import ReceiptRelay
from chain.txpool.inbox import ReceiptInbox
from tests.chain.ledger.test_cross_shard_receipts import ALICE, BOB, PROPOSER, Shards, address, send_across


@pytest.fixture
def shards(tmp_path):
    made = Shards(tmp_path)
    yield made
    made.close()


class InProcess:
    """A ShardLink that asks another chain object directly, with the RPC's answer shape."""

    def __init__(self, chain):
        self.chain = chain

    def call(self, method: str, params: list, timeout: float | None = None):
        from chain.rpc.receipt_methods import receipt_methods
        fn, _ = receipt_methods(self.chain, None, self.chain.params.shards.count)[method]
        return fn(params)


def relay_for(shards, inbox: ReceiptInbox) -> ReceiptRelay:
    zero, one = shards.chains
    return ReceiptRelay(one, inbox, {0: InProcess(zero)}, lambda: None)


def test_receipts_of_final_blocks_reach_the_inbox_once_and_consumed_ones_never(shards):
    zero, one = shards.chains
    for nonce in range(3):
        zero.build_block([send_across(ALICE, address(BOB), 10 + nonce, nonce=nonce)], PROPOSER)
    inbox = ReceiptInbox()
    relay = relay_for(shards, inbox)
    assert relay.scan_once() == 3 and relay.scan_once() == 0 and len(inbox) == 3
    _, execution = one.build_block([], PROPOSER, deliveries=inbox.ready(2))
    inbox.remove([d.delivery.receipt.id for d in execution.deliveries])
    fresh = ReceiptInbox()
    assert relay_for(shards, fresh).scan_once() == 1  # a restart rescans from the oldest waiting: 2 are consumed


def test_a_full_inbox_holds_the_cursor_at_the_first_receipt_it_could_not_take(shards):
    zero, one = shards.chains
    for nonce in range(4):
        zero.build_block([send_across(ALICE, address(BOB), 1, nonce=nonce)], PROPOSER)
    inbox = ReceiptInbox(capacity=2)
    relay = relay_for(shards, inbox)
    assert relay.scan_once() == 2
    _, execution = one.build_block([], PROPOSER, deliveries=inbox.ready(2))
    inbox.remove([d.delivery.receipt.id for d in execution.deliveries])
    assert relay.scan_once() == 2  # the last two, not skipped while the inbox was full
    _, execution = one.build_block([], PROPOSER, deliveries=inbox.ready(2))
    assert len(execution.deliveries) == 2
    assert all(one.consumed(d.receipt.id) for n in range(1, 5) for d in zero.outgoing_deliveries(n, 1))


def test_a_rewound_cursor_scans_a_receipt_again_after_a_restart(shards):
    zero, one = shards.chains
    zero.build_block([send_across(ALICE, address(BOB), 5)], PROPOSER)
    zero.build_block([send_across(ALICE, address(BOB), 6, nonce=1)], PROPOSER)
    inbox = ReceiptInbox()
    relay = relay_for(shards, inbox)
    assert relay.scan_once() == 2
    one.build_block([], PROPOSER, deliveries=inbox.ready(2))
    inbox.remove([d.receipt.id for n in (1, 2) for d in zero.outgoing_deliveries(n, 1)])
    relay.scan_once()  # both consumed: the saved cursor moves past them
    assert relay_for(shards, ReceiptInbox()).scan_once() == 0
    relay.rewind(0, 1)  # as after a fork switch took back the block that consumed them
    restarted = relay_for(shards, ReceiptInbox())
    assert restarted._next[0] == 1  # it scans from block 1 again (the consumed set filters)
