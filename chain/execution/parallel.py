"""The parallel executor: a block's conflict-free shares on several cores.

The block is split into conflict components (conflicts.py) and the components into
shares that shrink as the block runs out. The calling thread and its helpers take
shares on demand, all against the same committed snapshot, so a slow worker takes
fewer; the shares' writes merge without conflict, and merging refuses any entry two
shares both wrote. The result is the serial executor's: same receipts, same state root.

Helpers are processes by default. wasmtime releases the GIL while wasm runs, but every
host call (storage, balance, logs) takes it back, so threads serialise on it; the
benchmark (tools/bench_chain.py parallel) measures both. A helper process opens the
store read-only itself (an lmdb environment must not cross fork), keeps its module
cache warm across blocks, and talks to the caller over its own pipe: pickled tasks out,
pickled results back, and no extra threads in the caller.

A helper that dies, stalls or fails never changes a block: the caller runs its shares
itself, and a replacement takes shares once it has started.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import wait

from chain.core.params import ChainParams
from chain.execution.conflicts import Share, chunk, conflict_components
from chain.execution.helpers import HelperFailed, HelperProcess, Task
from chain.execution.serial import BlockContext, BlockExecution, execute_serial, finish_block, run_share
from chain.state.overlay import ConflictingWrites
from chain.tx.transaction import Transaction

log = logging.getLogger("ewasm.executor")


MODES = ("process", "thread")


# Shares a helper holds at once: one running, one waiting, so it never idles while
# the caller is busy with a share of its own.
PIPELINE_DEPTH = 2


# How long the caller waits for an answer when it has nothing else to do. A share is
# bounded by the block gas limit, so this only ever ends a helper that is stuck.
HELPER_TIMEOUT = 120.0


class ParallelExecutor:
    """Runs a block's conflict-free shares on the calling thread and `workers - 1`
    helpers (processes or threads), created once and kept across blocks."""

    def __init__(self, store, workers: int = 2, mode: str = "process"):
        if mode not in MODES:
            raise ValueError(f"worker mode is one of {', '.join(MODES)}, not {mode!r}")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.store, self.workers, self.mode = store, workers, mode
        self._helpers: list[HelperProcess] = []
        self._threads: ThreadPoolExecutor | None = None

    # -- helpers ------------------------------------------------------------------
    def _helper_processes(self) -> list[HelperProcess]:
        """The helpers ready to take shares. Dead ones are replaced now, but a
        replacement takes shares only once it has started, so no block waits for it."""
        alive = [helper for helper in self._helpers if helper.process.is_alive()]
        if len(alive) < len(self._helpers):
            for helper in self._helpers:
                if helper not in alive:
                    helper.discard()
            # A killed helper leaves its lmdb reader slot behind; free the stale ones.
            self.store.env.reader_check()
        # forkserver: helpers start from a clean interpreter, not a copy of a node
        # holding lmdb handles and threads.
        context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        while len(alive) < self.workers - 1:
            alive.append(HelperProcess(context, self.store.path))
        self._helpers = alive
        ready = []
        for helper in alive:
            try:
                if helper.check_ready():
                    ready.append(helper)
            except HelperFailed as err:
                log.warning("%s while starting", err)
                helper.discard()
        return ready

    def warm_up(self) -> None:
        """Start the helpers and wait until they are ready, rather than in a block;
        HelperFailed if one cannot start."""
        if self.mode == "process":
            self._helper_processes()
            for helper in self._helpers:
                try:
                    helper.check_ready(block=True)
                except HelperFailed:
                    helper.discard()
                    raise
        elif self._threads is None and self.workers > 1:
            self._threads = ThreadPoolExecutor(self.workers - 1)

    def close(self) -> None:
        """Stop the helpers: all pipes close first, so they wind down together."""
        for helper in self._helpers:
            helper.close()
        for helper in self._helpers:
            helper.join(timeout=5)
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
        remaining = iter(shares)
        lock = threading.Lock()

        def take() -> Share | None:
            with lock:
                return next(remaining, None)

        def work(snapshot) -> list:
            done = []
            while (share := take()) is not None:
                done.append(run_share(snapshot, txs, share, context, params))
            return done

        def helper() -> list:
            with self.store.snapshot() as snapshot:  # an lmdb read transaction per thread
                # A store that moved past the caller's snapshot is other state: leave
                # the shares to the caller.
                return work(snapshot) if snapshot.number == base.number else []

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
        in_flight: dict[HelperProcess, deque] = {helper: deque() for helper in helpers}
        results: list = []

        def top_up(helper: HelperProcess, depth: int = PIPELINE_DEPTH) -> None:
            while waiting and helper in in_flight and len(in_flight[helper]) < depth:
                share = waiting.popleft()
                indices = sorted(i for component in share for i in component)
                renumber = {i: k for k, i in enumerate(indices)}
                task = Task(base.number, [txs[i] for i in indices],
                             [[renumber[i] for i in component] for component in share], context, params)
                try:
                    helper.send(task)
                except HelperFailed as err:
                    waiting.appendleft(share)
                    give_back(helper, err)
                    return
                in_flight[helper].append((share, indices))

        def give_back(helper: HelperProcess, err: HelperFailed) -> None:
            log.warning("%s; the caller runs its shares", err)
            for share, _ in reversed(in_flight.pop(helper)):
                waiting.appendleft(share)
            helper.discard()

        def collect(helper: HelperProcess) -> None:
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
                    answered = wait(list(busy), timeout=HELPER_TIMEOUT)
                    for conn in answered:
                        collect(busy[conn])
                    if not answered:  # alive but silent (stopped, stuck): the caller takes over
                        for helper in busy.values():
                            give_back(helper, HelperFailed(
                                f"helper process {helper.process.pid} gave no answer in {HELPER_TIMEOUT:.0f} s"))
        except BaseException:
            for helper, pending in in_flight.items():
                if pending:  # their answers would meet the next block's tasks
                    helper.discard()
            raise
        return results
