"""The parallel executor's helper processes and the pipe protocol between them and the node.

A helper opens the store read-only itself (an lmdb environment must not cross fork),
announces that it is ready, then answers one pickled task with one pickled result
until its pipe closes. It never prints a traceback: a failure is an answer.
"""

from __future__ import annotations

import pickle
import queue
import signal
import threading
from dataclasses import dataclass

import ewasm_runtime
from chain.core.params import ChainParams
from chain.execution.conflicts import Share
from chain.execution.serial import BlockContext, run_share
from chain.tx.transaction import Transaction


class HelperFailed(RuntimeError):
    """A helper process could not run its share (it died, or answered with an error)."""


@dataclass
class Task:
    """What a helper process needs for one share: the share's own transactions,
    renumbered from 0, and the block they belong to."""

    head: int  # the block number the snapshot must be at
    txs: list[Transaction]
    components: Share
    context: BlockContext
    params: ChainParams


def helper_main(conn, store_path: str) -> None:
    """A helper process: open the store, then run tasks until the pipe closes.

    Nothing escapes as a traceback: a failure to start or to run a share is an answer
    the caller acts on, and a caller that has gone ends the helper quietly.
    """
    # Ctrl-C reaches the whole process group; the node shuts its helpers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from chain.state.store import Store
    try:
        store = Store(store_path, readonly=True)
        ewasm_runtime.default_runtime()  # engine and linker before the first block
    except Exception as err:
        _answer(conn, ("error", f"cannot start: {type(err).__name__}: {err}"))
        return
    if not _answer(conn, ("ok", "ready")):
        return
    for message in _incoming(conn):
        task: Task = pickle.loads(message)
        try:
            with store.snapshot() as snapshot:
                if snapshot.number == task.head:
                    reply = ("ok", run_share(snapshot, task.txs, task.components, task.context, task.params))
                else:
                    reply = ("error", f"its store is at block {snapshot.number}, the block builds on {task.head}")
        except Exception as err:  # reported to the caller, which runs the share itself
            reply = ("error", f"{type(err).__name__}: {err}")
        if not _answer(conn, reply):
            return


def _answer(conn, reply) -> bool:
    """Send a reply to the caller; False when the caller has closed the pipe."""
    try:
        conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:  # a broken pipe or a reset connection: the caller let go
        return False
    return True


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


class HelperProcess:
    """One helper process and the caller's end of its pipe."""

    def __init__(self, context, store_path: str):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=helper_main, args=(child, store_path), daemon=True,
                                       name="ewasm-executor")
        self.process.start()
        child.close()
        self.ready = False  # until it says so: opening the store and the VM takes ~0.5 s

    def check_ready(self, block: bool = False) -> bool:
        """Whether the helper has started, reading its announcement if it has arrived."""
        if not self.ready and (block or self.conn.poll()):
            self.receive()
            self.ready = True
        return self.ready

    def send(self, task: Task) -> None:
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
        self.conn.close()
        self.process.join()

    def close(self) -> None:
        """Let the helper finish: it sees its pipe close and returns (see ParallelExecutor.close)."""
        self.conn.close()

    def join(self, timeout: float) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
