"""The parallel executor: a block's conflict-free shares on several cores.

The block is split into conflict components (conflicts.py) and the components into one
share per worker. The calling thread runs one share itself; the others go to helpers,
all against the same committed snapshot, and the shares' writes merge without conflict.
The result is the serial executor's: same receipts, same state root.

Helpers are processes by default. wasmtime releases the GIL while wasm runs, but every
host call (storage, balance, logs) takes it back, so threads serialise on it; the
benchmark (tools/bench_chain.py parallel) measures both. A helper process opens the
store read-only itself (an lmdb environment must not cross fork), keeps its module
cache warm across blocks, and talks to the caller over a pipe: one pickled task out,
one pickled result back, and no threads in the caller.

A helper that dies or fails never changes a block: the caller runs that share itself
and a fresh helper replaces the lost one at the next block.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import wait
from dataclasses import dataclass

import ewasm_runtime

from .conflicts import Share, chunk, conflict_components
from .executor import BlockContext, BlockExecution, execute_serial, finish_block, run_share
from .params import ChainParams
from .state import ConflictingWrites
from .transactions import Transaction

log = logging.getLogger("ewasm.executor")

MODES = ("process", "thread")
# Shares a helper holds at once: one running, one waiting, so it never idles while
# the caller is busy with a share of its own.
PIPELINE_DEPTH = 2


class HelperFailed(RuntimeError):
    """A helper process could not run its share (it died, or answered with an error)."""


@dataclass
class _Task:
    """What a helper process needs for one share: the share's own transactions,
    renumbered from 0, and the block they belong to."""

    head: int  # the block number the snapshot must be at
    txs: list[Transaction]
    components: Share
    context: BlockContext
    params: ChainParams


def _helper_main(conn, store_path: str) -> None:
    """A helper process: open the store, then run tasks until the pipe closes."""
    # Ctrl-C reaches the whole process group; the node shuts its helpers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .store import Store
    store = Store(store_path, readonly=True)
    ewasm_runtime.default_runtime()  # engine and linker before the first block
    for message in _incoming(conn):
        task: _Task | None = pickle.loads(message)
        if task is None:  # a ping: the caller waits until the helper is ready
            conn.send_bytes(pickle.dumps(("ok", None)))
            continue
        try:
            with store.snapshot() as snapshot:
                if snapshot.number == task.head:
                    reply = ("ok", run_share(snapshot, task.txs, task.components, task.context, task.params))
                else:
                    reply = ("error", f"its store is at block {snapshot.number}, the block builds on {task.head}")
        except Exception as err:  # reported to the caller, which runs the share itself
            reply = ("error", f"{type(err).__name__}: {err}")
        conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


def _incoming(conn):
    """The caller's messages, read by a thread as they arrive.

    The caller sends a helper its next share while the helper is still busy with one,
    and reads answers only between shares of its own. If the helper read only between
    shares too, a large task and a large answer could fill the pipe both ways with
    each side blocked in send: a deadlock. Reading at once rules that out.
    """
    inbox: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                inbox.put(conn.recv_bytes())
        except (EOFError, OSError):
            inbox.put(None)

    threading.Thread(target=read, name="helper-inbox", daemon=True).start()
    while (message := inbox.get()) is not None:
        yield message


class _HelperProcess:
    """One helper process and the caller's end of its pipe."""

    def __init__(self, context, store_path: str):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_helper_main, args=(child, store_path), daemon=True,
                                       name="ewasm-executor")
        self.process.start()
        child.close()

    def send(self, task: _Task | None) -> None:
        try:
            self.conn.send_bytes(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            raise HelperFailed(self._gone()) from None

    def receive(self):
        try:
            status, payload = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            raise HelperFailed(self._gone()) from None
        if status != "ok":
            raise HelperFailed(f"helper process {self.process.pid} failed: {payload}")
        return payload

    def _gone(self) -> str:
        """Why the pipe broke, in words."""
        self.process.join(timeout=1)
        code = self.process.exitcode
        if code is None:
            how = "closed its pipe"
        elif code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        return f"helper process {self.process.pid} {how}"

    def discard(self) -> None:
        """Stop at once (its reply, if any, would arrive out of step)."""
        self.process.kill()
        self.close()

    def close(self) -> None:
        self.conn.close()  # the helper sees EOF and returns
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class ParallelExecutor:
    """Runs a block's conflict-free shares on the calling thread and `workers - 1`
    helpers (processes or threads), created once and kept across blocks."""

    def __init__(self, store, workers: int = 2, mode: str = "process"):
        if mode not in MODES:
            raise ValueError(f"worker mode is one of {', '.join(MODES)}, not {mode!r}")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.store, self.workers, self.mode = store, workers, mode
        self._helpers: list[_HelperProcess] = []
        self._threads: ThreadPoolExecutor | None = None

    # -- helpers ------------------------------------------------------------------
    def _helper_processes(self) -> list[_HelperProcess]:
        """The helper processes, replacing any that died since the last block."""
        alive = []
        for helper in self._helpers:
            if helper.process.is_alive():
                alive.append(helper)
            else:
                helper.close()
        # forkserver: helpers start from a clean interpreter, not a copy of a node
        # holding lmdb handles and threads.
        context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        while len(alive) < self.workers - 1:
            alive.append(_HelperProcess(context, self.store.path))
        self._helpers = alive
        return alive

    def warm_up(self) -> None:
        """Start the helpers now rather than inside the first block."""
        if self.mode == "process":
            helpers = self._helper_processes()
            for helper in helpers:
                helper.send(None)
            for helper in helpers:
                helper.receive()
        elif self._threads is None and self.workers > 1:
            self._threads = ThreadPoolExecutor(self.workers - 1)

    def close(self) -> None:
        for helper in self._helpers:
            helper.close()
        self._helpers = []
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None

    # -- execution ----------------------------------------------------------------
    def execute(self, base, txs: list[Transaction], context: BlockContext, params: ChainParams) -> BlockExecution:
        """Same result as execute_serial(base, ...), computed on the caller and the helpers."""
        components = conflict_components(txs)
        if len(components) <= 1 or self.workers <= 1:
            return execute_serial(base, txs, context, params)
        shares = chunk(components, self.workers)
        if self.mode == "thread":
            results = self._run_on_threads(base, txs, shares, context, params)
        else:
            results = self._run_on_processes(base, txs, shares, context, params)
        outcomes, excluded, changes, fees = results[0]
        try:
            for o, e, c, f in results[1:]:
                outcomes += o
                excluded += e
                changes.merge(c)
                fees += f
        except ConflictingWrites as err:
            log.error("%s: a scope rule has a hole; this block runs serially", err)
            return execute_serial(base, txs, context, params)
        return finish_block(base, txs, outcomes, excluded, changes, fees, context)

    def _run_on_threads(self, base, txs, shares: list[Share], context, params):
        """Every thread, the caller's included, takes the next share until none is left."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.workers - 1)
        queue = iter(shares)
        lock = threading.Lock()

        def take() -> Share | None:
            with lock:
                return next(queue, None)

        def work(snapshot) -> list:
            done = []
            while (share := take()) is not None:
                done.append(run_share(snapshot, txs, share, context, params))
            return done

        def helper() -> list:
            with self.store.snapshot() as snapshot:  # an lmdb read transaction per thread
                return work(snapshot)

        futures = [self._threads.submit(helper) for _ in range(self.workers - 1)]
        results = work(base)
        for future in futures:
            results += future.result()
        return results

    def _run_on_processes(self, base, txs, shares: list[Share], context, params):
        """Hand shares to the helpers on demand and run the rest here.

        Each helper holds up to PIPELINE_DEPTH shares, so it starts the next one while
        the caller is still busy with its own; whenever the caller finishes a share it
        collects answers and tops the helpers up. A helper that fails puts its shares
        back in the waiting list.
        """
        for tx in txs:
            tx.sender  # recovered here once, it travels with the pickled transaction
        waiting = deque(shares)
        helpers = self._helper_processes()
        in_flight: dict[_HelperProcess, deque] = {helper: deque() for helper in helpers}
        results: list = []

        def top_up(helper: _HelperProcess, depth: int = PIPELINE_DEPTH) -> None:
            while waiting and helper in in_flight and len(in_flight[helper]) < depth:
                share = waiting.popleft()
                indices = sorted(i for component in share for i in component)
                renumber = {i: k for k, i in enumerate(indices)}
                task = _Task(base.number, [txs[i] for i in indices],
                             [[renumber[i] for i in component] for component in share], context, params)
                try:
                    helper.send(task)
                except HelperFailed as err:
                    waiting.appendleft(share)
                    give_back(helper, err)
                    return
                in_flight[helper].append((share, indices))

        def give_back(helper: _HelperProcess, err: HelperFailed) -> None:
            log.warning("%s; the caller runs its shares", err)
            for share, _ in reversed(in_flight.pop(helper)):
                waiting.appendleft(share)
            helper.discard()

        def collect(helper: _HelperProcess) -> None:
            try:
                outcomes, excluded, changes, fees = helper.receive()
            except HelperFailed as err:
                give_back(helper, err)
                return
            _, indices = in_flight[helper].popleft()
            for outcome in outcomes:  # back to block positions
                outcome.index = indices[outcome.index]
            results.append((outcomes, [(indices[i], e) for i, e in excluded], changes, fees))
            top_up(helper)

        try:
            for helper in helpers:
                top_up(helper, depth=1)  # the caller's first share comes before second ones
            while waiting or any(in_flight.values()):
                for helper in [h for h, pending in in_flight.items() if pending and h.conn.poll()]:
                    collect(helper)
                if waiting:
                    own = waiting.popleft()
                    for helper in list(in_flight):
                        top_up(helper)
                    results.append(run_share(base, txs, own, context, params))
                elif any(in_flight.values()):
                    busy = {helper.conn: helper for helper, pending in in_flight.items() if pending}
                    for conn in wait(list(busy)):
                        collect(busy[conn])
        except BaseException:
            for helper, pending in in_flight.items():
                if pending:  # their answers would meet the next block's tasks
                    helper.discard()
            raise
        return results
