from __future__ import annotations

import pytest
from eth_account import Account

from chain.pool import DuplicateTransaction, TransactionPool
from chain.transactions import InvalidTransaction, NonceTooLow, decode_transaction

from chain_fixtures import sign


class Nonces:
    def __init__(self, **nonces):
        self.nonces = nonces

    def get_nonce(self, address):
        return self.nonces.get(address.hex(), 0)

    def get_balance(self, address):
        return 10**18


def test_ready_orders_each_senders_transactions_by_nonce(params, account):
    pool, state = TransactionPool(params), Nonces()
    for nonce in (2, 0, 1):
        pool.add(decode_transaction(sign(account, nonce=nonce)), state)
    assert [tx.nonce for tx in pool.ready(state, params.block_gas_limit)] == [0, 1, 2]


def test_a_nonce_gap_holds_back_later_transactions(params, account):
    pool, state = TransactionPool(params), Nonces()
    pool.add(decode_transaction(sign(account, nonce=0)), state)
    pool.add(decode_transaction(sign(account, nonce=2)), state)
    assert [tx.nonce for tx in pool.ready(state, params.block_gas_limit)] == [0]


def test_senders_are_served_in_arrival_order(params):
    a, b = Account.create(), Account.create()
    pool, state = TransactionPool(params), Nonces()
    txs = [decode_transaction(sign(b, nonce=0)), decode_transaction(sign(a, nonce=0)),
           decode_transaction(sign(b, nonce=1))]
    for tx in txs:
        pool.add(tx, state)
    assert pool.ready(state, params.block_gas_limit) == [txs[0], txs[2], txs[1]]


def test_duplicates_and_same_nonce_twice_are_rejected(params, account):
    pool, state = TransactionPool(params), Nonces()
    pool.add(decode_transaction(sign(account, nonce=0)), state)
    with pytest.raises(DuplicateTransaction, match="already pending"):
        pool.add(decode_transaction(sign(account, nonce=0)), state)
    with pytest.raises(DuplicateTransaction, match="nonce 0"):
        pool.add(decode_transaction(sign(account, nonce=0, value=1)), state)


def test_replays_of_used_nonces_are_rejected(params, account):
    pool = TransactionPool(params)
    with pytest.raises(NonceTooLow):
        pool.add(decode_transaction(sign(account, nonce=4)), Nonces(**{account.address[2:].lower(): 5}))


def test_nonces_far_in_the_future_are_rejected(params, account):
    pool = TransactionPool(params, max_future_per_sender=4)
    with pytest.raises(InvalidTransaction, match="too far ahead"):
        pool.add(decode_transaction(sign(account, nonce=4)), Nonces())


def test_block_gas_limit_bounds_what_is_ready(params):
    pool, state = TransactionPool(params), Nonces()
    for _ in range(5):
        pool.add(decode_transaction(sign(Account.create(), gas=40_000)), state)
    assert len(pool.ready(state, 100_000)) == 2


def test_included_and_stale_transactions_leave_the_pool(params, account):
    pool, state = TransactionPool(params), Nonces()
    txs = [decode_transaction(sign(account, nonce=n)) for n in range(3)]
    for tx in txs:
        pool.add(tx, state)
    pool.remove(txs[:1])
    assert len(pool) == 2 and txs[0].hash not in pool
    pool.prune(Nonces(**{account.address[2:].lower(): 2}))
    assert list(pool) == [txs[2]]
