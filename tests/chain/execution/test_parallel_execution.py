"""The parallel executor gives exactly the serial executor's result."""

from __future__ import annotations

import random

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.core.keys import PrivateKey, to_checksum_address
from chain.core.spec import parse_spec
from chain.execution.conflicts import conflict_components
from chain.execution.parallel import ParallelExecutor
from chain.execution.serial import execute_serial
from chain.ledger.blockchain import Blockchain
from chain.tx.codec import decode_transaction
from chain.tx.signing import sign_scoped_transaction
from contracts.token import balance_slot, transfer_data

from chain_fixtures import CHAIN_ID, FORWARDER_COUNT_SLOT, forward_data, token_spec

KEYS = [PrivateKey((i + 1).to_bytes(32, "big")) for i in range(6)]
TOKENS = [bytes([0x70 + i]) * 20 for i in range(3)]
RECIPIENTS = [bytes([0x90 + i]) * 20 for i in range(4)]
FORWARDERS = [bytes([0xf0 + i]) * 20 for i in range(3)]
PROPOSER = b"\x0c" * 20


def scoped(key, nonce, to, data=b"", value=0, scope=None, gas=200_000):
    return decode_transaction(sign_scoped_transaction(
        key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=gas, to=to, data=data, value=value,
        scope=scope if scope is not None else [key.address, to], max_fee_per_gas=1, max_priority_fee_per_gas=1))


def unscoped(key, nonce, to, data=b"", value=0, *, legacy: bool):
    """An Ethereum transaction that declares no scope: a legacy EIP-155 one, or an
    EIP-1559 one with an empty access list. It may touch its sender's whole shard, so
    the parallel executor runs it serially, in block order."""
    fields = {"chainId": CHAIN_ID, "nonce": nonce, "gas": 200_000, "to": to_checksum_address(to), "value": value,
              "data": data}
    fields |= {"gasPrice": 1} if legacy else {"type": 2, "maxFeePerGas": 1, "maxPriorityFeePerGas": 1, "accessList": []}
    return decode_transaction(bytes(Account.from_key(key.secret).sign_transaction(fields).raw_transaction))


def test_components_join_transactions_whose_prefixes_overlap():
    a, b = KEYS[0], KEYS[1]
    txs = [scoped(a, 0, TOKENS[0]), scoped(b, 0, TOKENS[1]), scoped(b, 1, TOKENS[2]),
           scoped(a, 1, TOKENS[0], scope=[a.address, TOKENS[0][:1]])]
    assert conflict_components(txs) == [[0, 3], [1, 2]]
    txs.append(scoped(KEYS[2], 0, TOKENS[0], scope=[b""]))  # the whole address space
    assert conflict_components(txs) == [[0, 1, 2, 3, 4]]


def forward(draw, key, nonce):
    """A transaction to a forwarder whose call chain (through up to two more forwarders)
    ends at a token transfer or a plain account, with a scope that covers the chain or
    stops short of it. Stopping short must end the transaction OUT_OF_RANGE with none of
    its writes, or the parallel executor could meet state another component writes."""
    path = [draw(st.sampled_from(FORWARDERS)), *draw(st.lists(st.sampled_from(FORWARDERS), max_size=2))]
    end = draw(st.sampled_from(["token", "token", "recipient", "overdraw"]))
    if end == "recipient":
        path.append(draw(st.sampled_from(RECIPIENTS)))
        data = b""
    else:  # forwarders hold 10**6 of each token: the overdraw reverts the whole chain
        path.append(draw(st.sampled_from(TOKENS)))
        data = transfer_data(draw(st.sampled_from(RECIPIENTS)), 10**7 if end == "overdraw" else draw(st.integers(0, 1000)))
    for target in reversed(path[1:]):
        data = forward_data(target, data)
    scope_kind = draw(st.sampled_from(["covering", "short", "short", "prefix", "everything"]))
    scope = {"covering": [key.address, *path],
             "short": [key.address, *path[:draw(st.integers(1, len(path) - 1))]],
             "prefix": [key.address[:1], *(a[:1] for a in path)],
             "everything": [b""]}[scope_kind]
    if draw(st.booleans()):  # reach into (or join) another component's addresses
        scope.append(draw(st.sampled_from(TOKENS + RECIPIENTS + FORWARDERS)))
    return scoped(key, nonce, path[0], data=data, value=draw(st.sampled_from([0, 0, 3])), scope=scope,
                  gas=300_000)


@st.composite
def blocks(draw):
    """Random blocks: token transfers, value transfers and calls through forwarders with
    random scopes, wrong nonces, overspending and calls outside the scope included, and
    unscoped legacy and EIP-1559 transactions among the scoped ones."""
    nonces = {k.address: 0 for k in KEYS}
    result = []
    for _ in range(draw(st.integers(1, 3))):
        txs = []
        for _ in range(draw(st.integers(1, 14))):
            key = draw(st.sampled_from(KEYS))
            kind = draw(st.sampled_from(["token", "token", "value", "bad-nonce", "overdraw", "forward", "forward"]))
            if kind == "forward":
                txs.append(forward(draw, key, nonces[key.address]))
                nonces[key.address] += 1
                continue
            token = draw(st.sampled_from(TOKENS))
            recipient = draw(st.sampled_from(RECIPIENTS))
            scope_kind = draw(st.sampled_from(["exact", "exact", "prefix", "everything", "extra"]))
            nonce = nonces[key.address] + (draw(st.integers(1, 3)) if kind == "bad-nonce" else 0)
            to = recipient if kind == "value" else token
            scope = {"exact": [key.address, to], "prefix": [key.address[:1], to[:1]], "everything": [b""],
                     "extra": [key.address, to, draw(st.sampled_from(TOKENS + RECIPIENTS))]}[scope_kind]
            amount = 10**7 if kind == "overdraw" else draw(st.integers(0, 1000))
            envelope = draw(st.sampled_from(["scoped", "scoped", "scoped", "legacy", "unscoped"]))
            if envelope != "scoped":
                data = b"" if kind == "value" else transfer_data(recipient, amount)
                tx = unscoped(key, nonce, to, data, amount if kind == "value" else 0, legacy=envelope == "legacy")
            elif kind == "value":
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
    chain = Blockchain.initialize(str(path / "db"), parse_spec(token_spec([k.address for k in KEYS], TOKENS,
                                                                          forwarders=FORWARDERS)))
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


# -- calls that reach outside the declared scope ---------------------------------------

def forwarder_chain(path) -> Blockchain:
    return Blockchain.initialize(str(path), parse_spec(token_spec([k.address for k in KEYS], TOKENS,
                                                                  forwarders=FORWARDERS)))


def test_a_call_outside_the_declared_scope_ends_out_of_range_and_writes_nothing(tmp_path):
    """The forwarder counts the call, then calls a token its transaction left out of the
    scope: the VM ends the whole transaction there, so neither the count nor the transfer
    lands, while the sender pays all its gas and uses up its nonce."""
    key, forwarder, token = KEYS[0], FORWARDERS[0], TOKENS[0]
    chain = forwarder_chain(tmp_path / "db")
    try:
        with chain.snapshot() as snap:
            before = snap.get_account(key.address)
            holding = snap.get_storage(token, balance_slot(forwarder))
        call = forward_data(token, transfer_data(RECIPIENTS[0], 5))
        tx = scoped(key, 0, forwarder, data=call, scope=[key.address, forwarder], gas=150_000)
        _, execution = chain.build_block([tx], PROPOSER, timestamp=1)
        (receipt,) = execution.receipts
        assert receipt.status == 0 and receipt.error.startswith("OUT_OF_RANGE")
        assert f"0x{token.hex()} is outside the transaction's scope" in receipt.error
        assert receipt.gas_used == 150_000 and receipt.fee == 150_000
        with chain.snapshot() as snap:
            assert int.from_bytes(snap.get_storage(forwarder, FORWARDER_COUNT_SLOT), "big") == 0
            assert snap.get_storage(token, balance_slot(forwarder)) == holding
            assert int.from_bytes(snap.get_storage(token, balance_slot(RECIPIENTS[0])), "big") == 0
            after = snap.get_account(key.address)
        assert after.nonce == before.nonce + 1 and after.balance == before.balance - 150_000
    finally:
        chain.close()


def test_the_same_call_with_the_target_in_scope_counts_and_transfers(tmp_path):
    key, forwarder, token = KEYS[0], FORWARDERS[0], TOKENS[0]
    chain = forwarder_chain(tmp_path / "db")
    try:
        call = forward_data(token, transfer_data(RECIPIENTS[0], 5))
        tx = scoped(key, 0, forwarder, data=call, scope=[key.address, forwarder, token], gas=150_000)
        _, execution = chain.build_block([tx], PROPOSER, timestamp=1)
        (receipt,) = execution.receipts
        assert receipt.status == 1 and receipt.error == "" and receipt.gas_used < 150_000
        assert int.from_bytes(receipt.output, "big") == 1  # the token's `true`, passed back
        with chain.snapshot() as snap:
            assert int.from_bytes(snap.get_storage(forwarder, FORWARDER_COUNT_SLOT), "big") == 1
            assert int.from_bytes(snap.get_storage(token, balance_slot(RECIPIENTS[0])), "big") == 5
    finally:
        chain.close()


def out_of_range_block() -> list:
    """One block where forwarders reach into each other's components: out-of-range calls
    whose targets other transactions write in the same block, in-scope forwards, chains
    of forwarders cut short, and plain transfers of the same tokens."""
    k0, k1, k2, k3, k4, k5 = KEYS
    f0, f1, f2 = FORWARDERS
    t0, t1, t2 = TOKENS
    r0, r1 = RECIPIENTS[:2]
    nonces = {k.address: 0 for k in KEYS}

    def tx(key, to, data, scope, value=0):
        nonce = nonces[key.address]
        nonces[key.address] += 1
        return scoped(key, nonce, to, data=data, value=value, scope=scope, gas=300_000)

    return [
        tx(k0, f0, forward_data(t0, transfer_data(r0, 7)), [k0.address, f0]),              # out of range: t0
        tx(k1, t0, transfer_data(r0, 3), [k1.address, t0]),                                 # writes t0
        tx(k2, f1, forward_data(t1, transfer_data(r1, 9)), [k2.address, f1, t1]),           # succeeds
        tx(k3, f2, forward_data(f1, forward_data(t2, transfer_data(r0, 1))), [k3.address, f2, f1]),  # cut short
        tx(k4, t2, transfer_data(r1, 4), [k4.address, t2]),                                 # writes t2
        tx(k0, f0, forward_data(r1), [k0.address, f0], value=3),                            # out of range: r1
        tx(k5, f2, forward_data(f2, forward_data(t1, transfer_data(r1, 10**7))), [k5.address, f2, t1]),  # reverts
        tx(k1, t0, transfer_data(r1, 2), [k1.address, t0]),
        tx(k2, f1, forward_data(r0), [k2.address, f1, r0], value=3),                        # succeeds, keeps 3
    ]


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_parallel_executor_equals_serial_when_calls_leave_their_scope(tmp_path, mode):
    txs = out_of_range_block()
    chain = forwarder_chain(tmp_path / "db")
    executor = ParallelExecutor(chain.store, workers=3, mode=mode)
    try:
        assert len(conflict_components(txs)) >= 3
        context = chain.context(PROPOSER, timestamp=1)
        with chain.snapshot() as snap:
            serial = execute_serial(snap, txs, context, chain.params)
            parallel = executor.execute(snap, txs, context, chain.params)
        errors = [r.error.split(":")[0] for r in serial.receipts]
        assert errors == ["OUT_OF_RANGE", "", "", "OUT_OF_RANGE", "", "OUT_OF_RANGE", "REVERT", "", ""]
        _same(serial, parallel)
    finally:
        executor.close()
        chain.close()


def test_a_scope_violation_two_calls_deep_names_the_account_outside_the_scope(tmp_path):
    key, (outer, inner, _), token = KEYS[0], FORWARDERS, TOKENS[2]
    chain = forwarder_chain(tmp_path / "db")
    try:
        call = forward_data(inner, forward_data(token, transfer_data(RECIPIENTS[0], 1)))
        tx = scoped(key, 0, outer, data=call, scope=[key.address, outer, inner], gas=300_000)
        _, execution = chain.build_block([tx], PROPOSER, timestamp=1)
        (receipt,) = execution.receipts
        assert receipt.error.startswith("OUT_OF_RANGE")
        assert f"0x{token.hex()} is outside" in receipt.error  # not the in-scope forwarder
    finally:
        chain.close()
