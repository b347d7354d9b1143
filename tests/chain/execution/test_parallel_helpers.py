"""Helper processes of the parallel executor: a helper that dies or fails never changes a block."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from chain.core.keys import PrivateKey
from chain.core.spec import parse_spec
from chain.execution import parallel as parallel_module
from chain.execution.helpers import HelperProcess
from chain.execution.parallel import ParallelExecutor
from chain.execution.serial import execute_serial
from chain.ledger.blockchain import Blockchain
from chain.tx.codec import decode_transaction
from chain.tx.signing import sign_scoped_transaction

from contracts.token import transfer_data

from chain_fixtures import CHAIN_ID, token_spec

KEYS = [PrivateKey((i + 50).to_bytes(32, "big")) for i in range(4)]
TOKENS = [bytes([0xa0 + i]) * 20 for i in range(4)]
PROPOSER = b"\x0c" * 20


def transfers(round_: int) -> list:
    """One transfer per sender, each on its own token: four disjoint components."""
    return [decode_transaction(sign_scoped_transaction(
        key, chain_id=CHAIN_ID, nonce=round_, gas_limit=200_000, to=token,
        data=transfer_data(bytes([0x90 + round_]) * 20, 5 + i), scope=[key.address, token],
        max_fee_per_gas=1, max_priority_fee_per_gas=1)) for i, (key, token) in enumerate(zip(KEYS, TOKENS))]


@pytest.fixture
def chain(tmp_path):
    chain = Blockchain.initialize(str(tmp_path / "db"), parse_spec(token_spec([k.address for k in KEYS], TOKENS)))
    yield chain
    chain.close()


@pytest.fixture
def executor(chain):
    executor = ParallelExecutor(chain.store, workers=2, mode="process")
    executor.warm_up()
    yield executor
    executor.close()


def run_both(chain, executor, txs):
    context = chain.context(PROPOSER, timestamp=1)
    with chain.snapshot() as snap:
        return execute_serial(snap, txs, context, chain.params), executor.execute(snap, txs, context, chain.params)


def assert_same(serial, parallel):
    assert parallel.receipts == serial.receipts
    assert parallel.changes == serial.changes and parallel.fees == serial.fees
    assert [tx.hash for tx in parallel.included] == [tx.hash for tx in serial.included]


def helper_pids(executor) -> list[int]:
    return [helper.process.pid for helper in executor._helpers]


def test_a_helper_killed_between_blocks_is_replaced_and_the_block_is_unchanged(chain, executor):
    [pid] = helper_pids(executor)
    os.kill(pid, signal.SIGKILL)
    executor._helpers[0].process.join(5)
    serial, parallel = run_both(chain, executor, transfers(0))
    assert_same(serial, parallel)
    assert helper_pids(executor) != [pid]


def test_a_helper_killed_during_a_block_leaves_its_share_to_the_caller(chain, executor, monkeypatch, caplog):
    send = HelperProcess.send

    def send_then_die(self, task):
        send(self, task)
        if task is not None:
            os.kill(self.process.pid, signal.SIGKILL)

    monkeypatch.setattr(HelperProcess, "send", send_then_die)
    serial, parallel = run_both(chain, executor, transfers(0))
    assert_same(serial, parallel)
    assert "was killed by SIGKILL; the caller runs its shares" in caplog.text
    monkeypatch.undo()
    chain.build_block(transfers(0), PROPOSER, timestamp=1)
    serial, parallel = run_both(chain, executor, transfers(1))  # its replacement is starting: not waited for
    assert_same(serial, parallel)
    executor.warm_up()
    chain.build_block(transfers(1), PROPOSER, timestamp=1)
    serial, parallel = run_both(chain, executor, transfers(2))  # and now takes shares
    assert_same(serial, parallel)


def test_a_helper_whose_store_moved_on_refuses_and_the_caller_runs_its_share(chain, executor, caplog):
    context = chain.context(PROPOSER, timestamp=1)
    with chain.snapshot() as old:
        chain.build_block(transfers(0), PROPOSER, timestamp=1)  # the helper's store moves on
        serial = execute_serial(old, transfers(0), context, chain.params)
        parallel = executor.execute(old, transfers(0), context, chain.params)
    assert_same(serial, parallel)
    assert "failed: its store is at block 1, the block builds on 0" in caplog.text


def test_helpers_ignore_ctrl_c_and_exit_when_the_executor_closes(chain, executor):
    [pid] = helper_pids(executor)
    os.kill(pid, signal.SIGINT)
    serial, parallel = run_both(chain, executor, transfers(0))
    assert_same(serial, parallel)
    assert helper_pids(executor) == [pid]
    process = executor._helpers[0].process
    executor.close()
    assert not process.is_alive() and process.exitcode == 0


def test_worker_counts_and_modes_are_checked(chain):
    with pytest.raises(ValueError, match="worker mode"):
        ParallelExecutor(chain.store, workers=2, mode="fibers")
    with pytest.raises(ValueError, match="at least 1"):
        ParallelExecutor(chain.store, workers=0)


def test_tasks_and_answers_larger_than_the_pipe_buffers_do_not_deadlock(chain, monkeypatch):
    """A helper holds two shares at once, so the caller may send while the helper sends
    its answer. With pipe buffers at the kernel's minimum every message overfills
    them; the block must still finish, equal to serial."""
    import multiprocessing.connection
    import socket
    import threading

    real_pipe = multiprocessing.connection.Pipe

    def small_pipe(duplex=True):
        ends = real_pipe(duplex)
        for end in ends:
            sock = socket.socket(fileno=os.dup(end.fileno()))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.close()
        return ends

    monkeypatch.setattr(multiprocessing.connection, "Pipe", small_pipe)
    executor = ParallelExecutor(chain.store, workers=2, mode="process")
    try:
        txs = [tx for round_ in range(20) for tx in transfers(round_)]  # 4 components of 20
        result = {}
        context = chain.context(PROPOSER, timestamp=1)
        with chain.snapshot() as snap:
            serial = execute_serial(snap, txs, context, chain.params)
            runner = threading.Thread(target=lambda: result.setdefault(
                "parallel", executor.execute(snap, txs, context, chain.params)), daemon=True)
            runner.start()
            runner.join(timeout=30)
            if runner.is_alive():
                for helper in executor._helpers:
                    helper.process.kill()  # unblocks the caller so the test can end
                runner.join(timeout=10)
                pytest.fail("the caller and its helper deadlocked on full pipes")
        assert_same(serial, result["parallel"])
    finally:
        executor.close()


def test_a_block_that_is_all_conflicts_runs_serially_without_shipping_anything(chain, executor, monkeypatch):
    sent = []
    send = HelperProcess.send
    monkeypatch.setattr(HelperProcess, "send", lambda self, task: (sent.append(task), send(self, task)))
    same_token = [decode_transaction(sign_scoped_transaction(
        key, chain_id=CHAIN_ID, nonce=0, gas_limit=200_000, to=TOKENS[0], data=transfer_data(b"\x91" * 20, 1),
        scope=[key.address, TOKENS[0]], max_fee_per_gas=1, max_priority_fee_per_gas=1)) for key in KEYS]
    serial, parallel = run_both(chain, executor, same_token)
    assert_same(serial, parallel)
    assert sent == []
    serial, parallel = run_both(chain, executor, transfers(0))  # disjoint: the helper takes part
    assert_same(serial, parallel)
    assert sent


def test_shares_that_write_the_same_entry_fall_back_to_serial_instead_of_merging(chain, executor, monkeypatch,
                                                                                  caplog):
    """A safety net under the scope rules: if conflict analysis ever split transactions
    that write one entry, merging would silently keep one write. Here the analysis is
    made wrong on purpose (every transaction its own component, two senders on one
    token); the executor notices the clash and runs the block serially."""
    monkeypatch.setattr(parallel_module, "conflict_components", lambda txs: [[i] for i in range(len(txs))])
    same_token = [decode_transaction(sign_scoped_transaction(
        key, chain_id=CHAIN_ID, nonce=0, gas_limit=200_000, to=TOKENS[0], data=transfer_data(b"\x91" * 20, 1),
        scope=[key.address, TOKENS[0]], max_fee_per_gas=1, max_priority_fee_per_gas=1)) for key in KEYS]
    serial, parallel = run_both(chain, executor, same_token)
    assert_same(serial, parallel)
    assert "a scope rule has a hole; this block runs serially" in caplog.text


def test_merging_refuses_writes_to_the_same_entry():
    from chain.state.account import Account
    from chain.state.overlay import ConflictingWrites, StateChanges
    a = StateChanges(accounts={b"\x01" * 20: Account(nonce=1)})
    a.merge(StateChanges(accounts={b"\x02" * 20: Account(nonce=1)}, storage={(b"\x02" * 20, bytes(32)): b"\x01"}))
    with pytest.raises(ConflictingWrites):
        a.merge(StateChanges(storage={(b"\x02" * 20, bytes(32)): b"\x02"}))


def test_a_helper_that_stops_answering_is_given_up_after_the_timeout(chain, executor, monkeypatch, caplog):
    monkeypatch.setattr(parallel_module, "HELPER_TIMEOUT", 1.0)
    [pid] = helper_pids(executor)
    os.kill(pid, signal.SIGSTOP)  # alive, holding its pipe, never answering
    try:
        serial, parallel = run_both(chain, executor, transfers(0))
    finally:
        with contextlib.suppress(ProcessLookupError):  # given up on: killed
            os.kill(pid, signal.SIGCONT)
    assert_same(serial, parallel)
    assert f"helper process {pid} gave no answer in 1 s" in caplog.text


def test_a_killed_helper_leaves_no_stale_lmdb_reader_behind(chain, executor):
    [pid] = helper_pids(executor)
    run_both(chain, executor, transfers(0))  # the helper now holds a reader slot
    os.kill(pid, signal.SIGKILL)
    executor._helpers[0].process.join(5)
    run_both(chain, executor, transfers(0))  # replaces the helper, clearing its slot
    assert f" {pid} " not in chain.store.env.readers()


def test_helper_threads_leave_the_block_to_the_caller_when_the_store_moved_on(chain):
    executor = ParallelExecutor(chain.store, workers=3, mode="thread")
    try:
        context = chain.context(PROPOSER, timestamp=1)
        with chain.snapshot() as old:
            chain.build_block(transfers(0), PROPOSER, timestamp=1)
            assert_same(execute_serial(old, transfers(0), context, chain.params),
                        executor.execute(old, transfers(0), context, chain.params))
    finally:
        executor.close()


def test_a_helper_that_cannot_open_the_store_says_why_without_a_traceback(tmp_path, capfd):
    from types import SimpleNamespace
    missing = SimpleNamespace(path=str(tmp_path / "no-such-store"))
    executor = ParallelExecutor(missing, workers=2, mode="process")
    try:
        with pytest.raises(parallel_module.HelperFailed, match="failed: cannot start: "):
            executor.warm_up()
    finally:
        executor.close()
    assert "Traceback" not in capfd.readouterr().err
