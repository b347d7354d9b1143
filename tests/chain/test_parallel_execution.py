"""The parallel executor gives exactly the serial executor's result."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chain.blockchain import Blockchain
from chain.executor import ParallelExecutor, conflict_components, execute_serial, schedule
from chain.keys import PrivateKey
from chain.spec import parse_spec
from chain.transactions import decode_transaction, sign_scoped_transaction

from chain_fixtures import CHAIN_ID, token_spec, transfer_data

KEYS = [PrivateKey((i + 1).to_bytes(32, "big")) for i in range(6)]
TOKENS = [bytes([0x70 + i]) * 20 for i in range(3)]
RECIPIENTS = [bytes([0x90 + i]) * 20 for i in range(4)]
PROPOSER = b"\x0c" * 20


def scoped(key, nonce, to, data=b"", value=0, scope=None, gas=200_000):
    return decode_transaction(sign_scoped_transaction(
        key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=gas, to=to, data=data, value=value,
        scope=scope if scope is not None else [key.address, to], max_fee_per_gas=1, max_priority_fee_per_gas=1))


def test_components_join_transactions_whose_prefixes_overlap():
    a, b = KEYS[0], KEYS[1]
    txs = [scoped(a, 0, TOKENS[0]), scoped(b, 0, TOKENS[1]), scoped(b, 1, TOKENS[2]),
           scoped(a, 1, TOKENS[0], scope=[a.address, TOKENS[0][:1]])]
    assert conflict_components(txs) == [[0, 3], [1, 2]]
    txs.append(scoped(KEYS[2], 0, TOKENS[0], scope=[b""]))  # the whole address space
    assert conflict_components(txs) == [[0, 1, 2, 3, 4]]


def test_schedule_balances_components_over_workers():
    shares = schedule([[0, 1, 2], [3], [4, 5], [6]], 2)
    assert sorted(sum(len(c) for c in share) for share in shares) == [3, 4]


@st.composite
def blocks(draw):
    """Random blocks: token transfers and value transfers with random scopes, wrong nonces
    and overspending included."""
    nonces = {k.address: 0 for k in KEYS}
    result = []
    for _ in range(draw(st.integers(1, 3))):
        txs = []
        for _ in range(draw(st.integers(1, 14))):
            key = draw(st.sampled_from(KEYS))
            kind = draw(st.sampled_from(["token", "token", "value", "bad-nonce", "overdraw"]))
            token = draw(st.sampled_from(TOKENS))
            recipient = draw(st.sampled_from(RECIPIENTS))
            scope_kind = draw(st.sampled_from(["exact", "exact", "prefix", "everything", "extra"]))
            nonce = nonces[key.address] + (draw(st.integers(1, 3)) if kind == "bad-nonce" else 0)
            to = recipient if kind == "value" else token
            scope = {"exact": [key.address, to], "prefix": [key.address[:1], to[:1]], "everything": [b""],
                     "extra": [key.address, to, draw(st.sampled_from(TOKENS + RECIPIENTS))]}[scope_kind]
            amount = 10**7 if kind == "overdraw" else draw(st.integers(0, 1000))
            if kind == "value":
                tx = scoped(key, nonce, to, value=amount, scope=scope)
            else:
                tx = scoped(key, nonce, to, data=transfer_data(recipient, amount), scope=scope)
            if kind != "bad-nonce":
                nonces[key.address] += 1
            txs.append(tx)
        result.append(txs)
    return result


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("parallel")


def _same(serial, parallel):
    assert [tx.hash for tx in parallel.included] == [tx.hash for tx in serial.included]
    assert parallel.receipts == serial.receipts
    assert [(tx.hash, str(e)) for tx, e in parallel.excluded] == [(tx.hash, str(e)) for tx, e in serial.excluded]
    assert parallel.changes == serial.changes
    assert parallel.fees == serial.fees


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(blocks(), st.integers(2, 4))
def test_parallel_threads_equal_serial_on_random_blocks(tmp_path_factory, block_list, workers):
    path = tmp_path_factory.mktemp("p")
    chain = Blockchain.initialize(str(path / "db"), parse_spec(token_spec([k.address for k in KEYS], TOKENS)))
    executor = ParallelExecutor(chain.store, workers=workers, mode="thread")
    try:
        for txs in block_list:
            context = chain.context(PROPOSER, timestamp=1)
            with chain.snapshot() as snap:
                serial = execute_serial(snap, txs, context, chain.params)
                parallel = executor.execute(snap, txs, context, chain.params)
            _same(serial, parallel)
            block, committed = chain.build_block(txs, PROPOSER, timestamp=1)
            _same(serial, committed)
    finally:
        executor.close()
        chain.close()


def test_parallel_processes_give_the_serial_state_root(tmp_path):
    rng = random.Random(7)
    spec = parse_spec(token_spec([k.address for k in KEYS], TOKENS))
    serial_chain = Blockchain.initialize(str(tmp_path / "serial"), spec)
    parallel_chain = Blockchain.initialize(str(tmp_path / "parallel"), spec)
    parallel_chain.executor = ParallelExecutor(parallel_chain.store, workers=2, mode="process")
    nonces = [0] * len(KEYS)
    try:
        for _ in range(3):
            txs = []
            for _ in range(30):
                i = rng.randrange(len(KEYS))
                token = TOKENS[i % 3] if rng.random() < 0.8 else rng.choice(TOKENS)
                txs.append(scoped(KEYS[i], nonces[i], token, transfer_data(rng.choice(RECIPIENTS), rng.randrange(100))))
                nonces[i] += 1
            a, ea = serial_chain.build_block(txs, PROPOSER, timestamp=5)
            b, eb = parallel_chain.build_block(txs, PROPOSER, timestamp=5)
            assert eb.receipts == ea.receipts
            assert b.header.state_root == a.header.state_root and b.hash == a.hash
    finally:
        serial_chain.close()
        parallel_chain.close()


def test_process_workers_and_the_calling_thread_together_equal_serial(tmp_path):
    """With three workers the caller runs one share and two processes the others; excluded
    transactions (a nonce gap, an overdraw) come back to their block positions."""
    chain = Blockchain.initialize(str(tmp_path / "db"), parse_spec(token_spec([k.address for k in KEYS], TOKENS)))
    executor = ParallelExecutor(chain.store, workers=3, mode="process")
    try:
        txs = []
        for round_ in range(4):
            for i, key in enumerate(KEYS):
                token = TOKENS[i % len(TOKENS)]
                amount = 10**7 if (round_, i) == (2, 1) else round_ + i
                txs.append(scoped(key, round_, token, transfer_data(RECIPIENTS[i % len(RECIPIENTS)], amount),
                                  scope=[key.address, token]))
        txs.append(scoped(KEYS[0], 9, TOKENS[0], transfer_data(RECIPIENTS[0], 1), scope=[KEYS[0].address, TOKENS[0]]))
        context = chain.context(PROPOSER, timestamp=1)
        with chain.snapshot() as snap:
            serial = execute_serial(snap, txs, context, chain.params)
            assert len(conflict_components(txs)) >= 3 and serial.excluded
            _same(serial, executor.execute(snap, txs, context, chain.params))
    finally:
        executor.close()
        chain.close()
