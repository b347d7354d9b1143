"""Bounded worker pools ("lanes") for the JSON-RPC methods whose cost grows with their input.

The event loop answers cheap methods itself and hands the rest to a lane: a few threads,
a bounded number of requests waiting for them, a bound per client address, and a time
limit from submission to answer. A request that finds its lane full is refused at once
(-32005) instead of queueing without end, so a client that floods one lane cannot delay
the loop or the other lanes.

A thread cannot be stopped from outside. A request that runs past its time limit is
answered with a timeout while its worker finishes the call, which its gas bounds; the
lane keeps counting it until then, so overload is refused rather than queued behind it.
Iterative methods (eth_estimateGas's search, eth_getLogs's scan) look at their deadline
and stop by themselves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from chain.rpc.codec import LIMIT_EXCEEDED, RpcError


@dataclass(frozen=True)
class LaneLimits:
    """The size of one lane."""

    workers: int = 2  # threads running requests
    queue: int = 32  # requests waiting for a thread, beyond those running
    per_client: int = 8  # requests of one client address in the lane (running or waiting)
    timeout: float = 5.0  # seconds from submission to answer

    def __post_init__(self) -> None:
        if self.workers < 1 or self.queue < 0 or self.per_client < 1:
            raise ValueError("a lane needs at least 1 worker, a queue of at least 0 and at least 1 request per client")
        if not self.timeout > 0:
            raise ValueError("a lane's timeout must be a positive number of seconds")


class WorkLane:
    """One bounded pool; `run` is called on the event loop, the work runs on a thread."""

    def __init__(self, name: str, limits: LaneLimits):
        self.name, self.limits = name, limits
        self._executor = concurrent.futures.ThreadPoolExecutor(limits.workers, thread_name_prefix=f"rpc-{name}")
        self._in_lane = 0  # submitted and not yet finished, timed-out ones included
        self._per_client: Counter[str] = Counter()

    @property
    def load(self) -> int:
        return self._in_lane

    async def run(self, client: str, work: Callable[[float], Any], *, what: str = "request",
                  timeout: float = math.inf) -> Any:
        """Run `work(deadline)` on a worker thread and return its result.

        Refuses with -32005 when the lane or the client's share of it is full, and answers
        -32005 at the time limit, the lane's or the shorter `timeout` (the worker then
        finishes on its own; see the module notes). `what` names the request in errors.
        """
        limits = self.limits
        if self._in_lane >= limits.workers + limits.queue:
            raise RpcError(LIMIT_EXCEEDED, f"{what}: server busy, {self._in_lane} {self.name} requests are in "
                                           f"progress (the limit); try again shortly")
        if self._per_client[client] >= limits.per_client:
            raise RpcError(LIMIT_EXCEEDED, f"{what}: too many concurrent {self.name} requests from this client "
                                           f"(at most {limits.per_client})")
        loop = asyncio.get_running_loop()
        timeout = min(timeout, limits.timeout)
        deadline = time.monotonic() + timeout
        self._enter(client)
        try:
            future = self._executor.submit(work, deadline)
        except RuntimeError:  # the executor is shut down: the server is stopping
            self._leave(client)
            raise RpcError(LIMIT_EXCEEDED, f"{what}: the server is shutting down") from None
        future.add_done_callback(lambda _: self._leave_soon(loop, client))
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except asyncio.TimeoutError:
            future.cancel()  # only stops it if no worker has taken it yet
            raise RpcError(LIMIT_EXCEEDED, f"{what}: timed out after {timeout:.3g} s") from None
        except asyncio.CancelledError:  # the client went away
            future.cancel()
            raise

    def _enter(self, client: str) -> None:
        self._in_lane += 1
        self._per_client[client] += 1

    def _leave_soon(self, loop: asyncio.AbstractEventLoop, client: str) -> None:
        """From the worker thread: the count is the loop's, so the loop updates it."""
        try:
            loop.call_soon_threadsafe(self._leave, client)
        except RuntimeError:  # the loop is closed: the server has stopped
            pass

    def _leave(self, client: str) -> None:
        self._in_lane -= 1
        self._per_client[client] -= 1
        if not self._per_client[client]:
            del self._per_client[client]

    def close(self) -> None:
        """Drop waiting requests and wait for running ones (their gas bounds them): the
        store they read must not close under them."""
        self._executor.shutdown(wait=True, cancel_futures=True)
