from __future__ import annotations

from functools import lru_cache

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.core.keys import PrivateKey
from chain.core.params import ChainParams
from chain.tx.codec import decode_transaction
from chain.tx.errors import InsufficientFunds, NonceTooLow
from chain.tx.signing import sign_scoped_transaction
from chain.txpool.policy import (
    DuplicateTransaction,
    PoolFull,
    PoolLimits,
    QueueFull,
    ReplacementUnderpriced,
    SenderQueueFull,
    TipTooLow,
)
from chain.txpool.pool import TransactionPool

from chain_fixtures import CHAIN_ID, sign

RICH = 10**21


class Accounts:
    """Nonces and balances (every account funded unless listed in `poor`)."""

    def __init__(self, nonces: dict[bytes, int] | None = None, poor: dict[bytes, int] | None = None):
        self.nonces, self.poor = dict(nonces or {}), dict(poor or {})

    def get_nonce(self, address):
        return self.nonces.get(address, 0)

    def get_balance(self, address):
        return self.poor.get(address, RICH)


def address_of(account) -> bytes:
    return bytes.fromhex(account.address[2:])


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@lru_cache(maxsize=None)
def _key(index: int) -> PrivateKey:
    return PrivateKey.from_hex((index + 1).to_bytes(32, "big").hex())


@lru_cache(maxsize=None)
def scoped(key_index: int, nonce: int, tip: int = 0, fee: int | None = None, size: int = 0):
    """A signed transfer from test key `key_index`; zero fees unless given (cached: signing is the slow part)."""
    key = _key(key_index)
    to = b"\x22" * 20
    raw = sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=21_000 + 68 * size, to=to,
                                  data=b"\x01" * size, scope=[key.address, to],
                                  max_fee_per_gas=tip if fee is None else fee, max_priority_fee_per_gas=tip)
    return decode_transaction(raw)


def test_ready_orders_each_senders_transactions_by_nonce(params, account):
    pool, state = TransactionPool(params), Accounts()
    for nonce in (2, 0, 1):
        pool.add(decode_transaction(sign(account, nonce=nonce)), state)
    assert [tx.nonce for tx in pool.ready(state, params.block_gas_limit)] == [0, 1, 2]
    assert (pool.pending_count, pool.queued_count) == (3, 0)


def test_a_nonce_gap_holds_back_later_transactions(params, account):
    pool, state = TransactionPool(params), Accounts()
    pool.add(decode_transaction(sign(account, nonce=0)), state)
    pool.add(decode_transaction(sign(account, nonce=2)), state)
    assert [tx.nonce for tx in pool.ready(state, params.block_gas_limit)] == [0]
    assert (pool.pending_count, pool.queued_count) == (1, 1)
    assert pool.next_nonce(address_of(account), 0) == 1


def test_the_transaction_that_closes_a_gap_promotes_the_queued_ones_behind_it(params):
    pool, state = TransactionPool(params), Accounts()
    for nonce in (3, 1, 2):
        pool.add(scoped(0, nonce), state)
    assert (pool.pending_count, pool.queued_count) == (0, 3)
    pool.add(scoped(0, 0), state)
    assert (pool.pending_count, pool.queued_count) == (4, 0)
    assert [tx.nonce for tx in pool.ready(state, params.block_gas_limit)] == [0, 1, 2, 3]


def test_senders_are_served_in_arrival_order(params):
    a, b = Account.create(), Account.create()
    pool, state = TransactionPool(params), Accounts()
    txs = [decode_transaction(sign(b, nonce=0)), decode_transaction(sign(a, nonce=0)),
           decode_transaction(sign(b, nonce=1))]
    for tx in txs:
        pool.add(tx, state)
    assert pool.ready(state, params.block_gas_limit) == [txs[0], txs[2], txs[1]]


def test_a_known_transaction_is_refused_as_already_known(params, account):
    pool, state = TransactionPool(params), Accounts()
    pool.add(decode_transaction(sign(account, nonce=0)), state)
    with pytest.raises(DuplicateTransaction, match="already in the pool"):
        pool.add(decode_transaction(sign(account, nonce=0)), state)


def test_a_replacement_must_raise_fee_cap_and_tip_by_the_price_bump(params, account):
    pool, state = TransactionPool(params), Accounts()
    first = decode_transaction(sign(account, nonce=0, maxFeePerGas=100, maxPriorityFeePerGas=10))
    pool.add(first, state)
    for fee, tip in ((100, 20), (200, 10), (109, 11), (110, 10)):
        with pytest.raises(ReplacementUnderpriced, match="at least 110 and a tip of at least 11"):
            pool.add(decode_transaction(sign(account, nonce=0, maxFeePerGas=fee, maxPriorityFeePerGas=tip)), state)
    better = decode_transaction(sign(account, nonce=0, maxFeePerGas=110, maxPriorityFeePerGas=11))
    pool.add(better, state)
    assert list(pool) == [better] and first.hash not in pool and pool.size_bytes == len(better.raw)


def test_a_zero_fee_transaction_is_replaced_by_one_that_pays_something(params):
    pool, state = TransactionPool(params), Accounts()
    pool.add(scoped(0, 1), state)  # queued
    with pytest.raises(ReplacementUnderpriced):
        pool.add(scoped(0, 1, tip=0, fee=0, size=1), state)
    pool.add(scoped(0, 1, tip=1), state)
    assert [tx.max_priority_fee_per_gas for tx in pool] == [1] and pool.queued_count == 1


def test_a_tip_below_the_pools_minimum_is_refused(params):
    pool, state = TransactionPool(params, PoolLimits(min_tip=2)), Accounts()
    with pytest.raises(TipTooLow, match="below this pool's minimum of 2"):
        pool.add(scoped(0, 0, tip=1), state)
    pool.add(scoped(0, 0, tip=2), state)


def test_replays_of_used_nonces_are_rejected(params, account):
    pool = TransactionPool(params)
    with pytest.raises(NonceTooLow):
        pool.add(decode_transaction(sign(account, nonce=4)), Accounts({address_of(account): 5}))


def test_a_sender_queues_at_most_its_limit_of_future_nonces(params):
    pool, state = TransactionPool(params, PoolLimits(max_queued_per_sender=4)), Accounts()
    for nonce in range(1, 5):
        pool.add(scoped(0, nonce), state)
    with pytest.raises(SenderQueueFull, match="already has 4 queued transactions.*send nonce 0 first"):
        pool.add(scoped(0, 5), state)
    pool.add(scoped(0, 0), state)  # runnable: not subject to the queue limit, and it promotes the rest
    pool.add(scoped(0, 5), state)
    assert (pool.pending_count, pool.queued_count) == (6, 0)


def test_the_pools_queue_is_bounded_and_only_a_higher_tip_displaces_a_queued_transaction(params):
    pool, state = TransactionPool(params, PoolLimits(max_queued=3)), Accounts()
    for key in range(3):
        pool.add(scoped(key, 1), state)
    with pytest.raises(QueueFull, match="queue of future-nonce transactions is full"):
        pool.add(scoped(3, 1), state)
    evicted = pool.add(scoped(3, 1, tip=1), state)
    assert evicted == [scoped(2, 1)]  # the cheapest, and of equals the latest
    assert pool.queued_count == 3


def test_unfunded_keys_spamming_future_nonces_cannot_keep_a_funded_transfer_out(params, account):
    """The attack: zero-fee transactions with future nonces cost their senders nothing."""
    limits = PoolLimits(max_transactions=40, max_queued_per_sender=8, max_queued=32)
    pool = TransactionPool(params, limits)
    unfunded = {_key(k).address: 0 for k in range(10)}
    state = Accounts(poor=unfunded)
    refusals = []
    for key in range(10):
        for nonce in range(1, 11):
            try:
                pool.add(scoped(key, nonce), state)
            except (SenderQueueFull, QueueFull) as err:
                refusals.append(type(err))
    assert pool.queued_count == 32 and len(refusals) == 100 - 32
    assert set(refusals) == {SenderQueueFull, QueueFull}
    for nonce in range(0, 12):  # a funded sender streams runnable transfers into the full pool
        pool.add(decode_transaction(sign(account, nonce=nonce)), state)
    assert pool.pending_count == 12 and len(pool) <= limits.max_transactions
    assert len(pool.ready(state, params.block_gas_limit)) == 12


def test_a_full_pool_evicts_queued_transactions_first_then_the_cheapest_pending_tails(params):
    pool, state = TransactionPool(params, PoolLimits(max_transactions=5)), Accounts()
    pool.add(scoped(0, 0, tip=5), state)
    pool.add(scoped(0, 1, tip=1), state)  # key 0's tail: cheap, behind a dear one
    pool.add(scoped(1, 0, tip=3), state)
    pool.add(scoped(2, 0, tip=4), state)
    pool.add(scoped(3, 7, tip=9), state)  # queued, however much it pays
    assert pool.add(scoped(4, 0, tip=2), state) == [scoped(3, 7, tip=9)]
    assert pool.add(scoped(5, 0, tip=2), state) == [scoped(0, 1, tip=1)]
    # Now every tail pays at least 2: key 0's is the dear one; nothing pays less than 3.
    assert pool.add(scoped(6, 0, tip=3), state) in ([scoped(4, 0, tip=2)], [scoped(5, 0, tip=2)])
    with pytest.raises(PoolFull, match="nothing in it pays a tip below 2"):
        pool.add(scoped(7, 0, tip=2), state)
    assert len(pool) == 5


def test_eviction_takes_a_whole_cheap_run_from_its_end_when_it_must(params):
    pool, state = TransactionPool(params, PoolLimits(max_transactions=4)), Accounts()
    for nonce in range(3):
        pool.add(scoped(0, nonce, tip=1), state)
    pool.add(scoped(1, 0, tip=2), state)
    big = scoped(2, 0, tip=3, size=600)
    small = len(scoped(0, 0, tip=1).raw)
    pool.limits = PoolLimits(max_transactions=4, max_bytes=pool.size_bytes - small + len(big.raw) - 2 * small)
    evicted = pool.add(big, state)
    assert [tx.nonce for tx in evicted] == [2, 1, 0] and [tx.nonce for tx in pool.ready(state, 10**9)] == [0, 0]


def test_the_byte_limit_bounds_the_pool_like_the_count(params):
    pool, state = TransactionPool(params), Accounts()
    one = len(scoped(0, 0, size=1000).raw)
    pool.limits = PoolLimits(max_bytes=3 * one)
    for key in range(3):
        pool.add(scoped(key, 0, size=1000), state)
    with pytest.raises(PoolFull, match="bytes"):
        pool.add(scoped(3, 0, size=1000), state)
    assert pool.size_bytes == 3 * one


def test_one_sender_may_stream_thousands_of_pending_transactions(params):
    pool, state = TransactionPool(params), Accounts()
    for nonce in range(3000):
        pool.add(scoped(9, nonce), state)
    assert pool.pending_count == 3000 and pool.next_nonce(_key(9).address, 0) == 3000


def test_queued_transactions_expire_after_their_lifetime(params):
    clock = Clock()
    pool, state = TransactionPool(params, PoolLimits(queued_lifetime=60), clock=clock), Accounts()
    pool.add(scoped(0, 0), state)
    pool.add(scoped(0, 5), state)
    clock.now += 30
    pool.add(scoped(1, 5), state)
    clock.now += 31
    assert pool.expire() == [scoped(0, 5)]
    assert scoped(0, 0).hash in pool and scoped(1, 5).hash in pool  # pending never expires
    clock.now += 30
    assert pool.prune(state) == [scoped(1, 5)]


def test_included_transactions_leave_and_the_run_continues(params):
    pool, state = TransactionPool(params), Accounts()
    txs = [scoped(0, n) for n in range(3)]
    for tx in txs:
        pool.add(tx, state)
    pool.remove(txs[:1])
    state.nonces[_key(0).address] = 1
    assert pool.prune(state, [_key(0).address]) == []
    assert list(pool) == txs[1:] and pool.ready(state, 10**9) == txs[1:]


def test_a_transaction_left_out_of_a_block_demotes_the_rest_of_its_run(params):
    pool, state = TransactionPool(params), Accounts()
    txs = [scoped(0, n) for n in range(4)]
    for tx in txs:
        pool.add(tx, state)
    pool.remove([txs[1]])  # excluded: the account nonce did not move past it
    assert (pool.pending_count, pool.queued_count) == (1, 2)
    assert pool.ready(state, 10**9) == [txs[0]]
    pool.add(txs[1], state)  # resent, it closes the gap again
    assert pool.ready(state, 10**9) == txs


def test_prune_drops_used_nonces_and_what_the_sender_can_no_longer_pay(params):
    pool, state = TransactionPool(params), Accounts()
    txs = [scoped(0, n, tip=1, fee=1) for n in range(4)]
    for tx in txs:
        pool.add(tx, state)
    sender = _key(0).address
    state.nonces[sender] = 2  # nonces 0 and 1 were used by a block this pool did not build
    state.poor[sender] = 21_000  # enough for one more transfer at fee 1, ...
    assert pool.prune(state, [sender]) == txs[:2]
    assert list(pool) == txs[2:]
    state.poor[sender] = 20_999  # ... and now for none
    assert pool.prune(state, [sender]) == txs[2:] and len(pool) == 0


def test_an_unfunded_sender_is_refused_at_admission(params):
    pool = TransactionPool(params)
    with pytest.raises(InsufficientFunds):
        pool.add(scoped(0, 0, tip=1), Accounts(poor={_key(0).address: 0}))


def test_block_gas_limit_bounds_what_is_ready(params):
    pool, state = TransactionPool(params), Accounts()
    for _ in range(5):
        pool.add(decode_transaction(sign(Account.create(), gas=40_000)), state)
    assert len(pool.ready(state, 100_000)) == 2


def test_a_reverted_blocks_transactions_go_back_ahead_of_their_senders_run_and_none_is_demoted(params):
    pool, state = TransactionPool(params), Accounts()
    txs = [scoped(0, n) for n in range(100)]
    for tx in txs:
        pool.add(tx, state)
    pool.remove(txs[:10])  # a block includes the first ten
    state.nonces[_key(0).address] = 10
    pool.prune(state, [_key(0).address])
    state.nonces[_key(0).address] = 0  # a fork switch reverts it: the account nonce is 0 again
    assert pool.restore(txs[:10], state) == []
    assert (pool.pending_count, pool.queued_count) == (100, 0)
    assert pool.ready(state, 10**9) == txs
    check_invariants(pool)


def test_restoring_into_a_full_pool_evicts_the_cheapest_tails_to_keep_its_limits(params):
    pool, state = TransactionPool(params, PoolLimits(max_transactions=6)), Accounts()
    mine, cheap = [scoped(0, n, tip=5) for n in range(4)], [scoped(1, n, tip=1) for n in range(2)]
    for tx in mine + cheap:
        pool.add(tx, state)
    pool.remove(mine[:2])
    state.nonces[_key(0).address] = 2
    pool.prune(state, [_key(0).address])
    for tx in [scoped(2, 0, tip=3), scoped(2, 1, tip=3)]:
        pool.add(tx, state)  # the pool is full again
    state.nonces[_key(0).address] = 0
    assert pool.restore(mine[:2], state) == cheap[::-1]  # sender 1's run, from its tail
    assert pool.ready(state, 10**9)[:4] == mine
    check_invariants(pool)


def check_invariants(pool: TransactionPool) -> None:
    """What every operation must preserve: runs contiguous from their base, queued
    entries behind a gap, indexes and counters in step, limits kept."""
    entries, queued, size, tails = {}, {}, 0, []
    for sender, queue in pool._senders.items():
        assert queue.sender == sender and len(queue) > 0
        assert sorted(queue.pending) == list(range(queue.base, queue.pending_end))
        assert all(n > queue.pending_end for n in queue.queued)
        assert len(queue.queued) <= pool.limits.max_queued_per_sender
        for entry in (*queue.pending.values(), *queue.queued.values()):
            assert entry.tx.sender == sender
            entries[entry.tx.hash] = entry
            size += len(entry.tx.raw)
        queued.update({e.tx.hash: e for e in queue.queued.values()})
        if queue.pending:
            tails.append((queue.tail.rank, sender))
    assert entries == pool._entries and queued == pool._queued and size == pool.size_bytes
    pool._refresh_tails()
    assert sorted(tails) == list(pool._tails)
    assert len(pool) <= pool.limits.max_transactions and pool.size_bytes <= pool.limits.max_bytes
    assert pool.queued_count <= pool.limits.max_queued


operation = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 3), st.integers(0, 7), st.integers(0, 3)),
    st.tuples(st.just("next"), st.integers(0, 3), st.just(0), st.integers(0, 3)),
    st.tuples(st.just("remove"), st.integers(0, 15), st.just(0), st.just(0)),
    st.tuples(st.just("block"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("revert"), st.just(0), st.just(0), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(operation, max_size=40))
def test_any_sequence_of_admissions_removals_and_blocks_keeps_the_pool_consistent(ops):
    limits = PoolLimits(max_transactions=8, max_queued_per_sender=3, max_queued=5)
    pool, state = TransactionPool(ChainParams(chain_id=CHAIN_ID), limits), Accounts()
    blocks: list[tuple[bytes, list, int]] = []  # sender, what came from this pool, nonces used
    for op, key, nonce, tip in ops:
        if op == "next":  # the sender's next runnable nonce: builds runs
            op, nonce = "add", pool.next_nonce(_key(key).address, state.get_nonce(_key(key).address))
        if op == "add":
            try:
                pool.add(scoped(key, nonce, tip=tip), state)
            except (DuplicateTransaction, NonceTooLow, ReplacementUnderpriced, SenderQueueFull, QueueFull,
                    PoolFull):
                pass
        elif op == "remove":  # the `key`-th transaction in the pool, left out of a block
            txs = list(pool)
            if txs:
                pool.remove([txs[key % len(txs)]])
        elif op == "revert":  # a fork switch takes the newest block back
            if blocks:
                sender, mine, used = blocks.pop()
                state.nonces[sender] = state.get_nonce(sender) - used
                pool.restore(mine, state)
        else:  # a block includes the sender's next `nonce` transactions, whatever pool they came from
            sender = _key(key).address
            mine = [tx for tx in pool.ready(state, 10**9) if tx.sender == sender][:nonce]
            pool.remove(mine)
            state.nonces[sender] = state.get_nonce(sender) + nonce
            pool.prune(state, [sender])
            blocks.append((sender, mine, nonce))
        check_invariants(pool)
        assert all(tx.nonce >= state.get_nonce(tx.sender) for tx in pool.ready(state, 10**9))
