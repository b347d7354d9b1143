"""Work lanes: bounded pools that refuse at once when full and answer at their time limit."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from chain.rpc.codec import LIMIT_EXCEEDED, RpcError
from chain.rpc.lanes import LaneLimits, WorkLane


def blocking(release: threading.Event, ran: list | None = None):
    def work(deadline):
        if ran is not None:
            ran.append(deadline)
        release.wait(10)
        return "done"
    return work


def test_a_lane_runs_work_on_a_thread_and_hands_it_its_deadline():
    lane = WorkLane("test", LaneLimits(workers=1, timeout=3))

    async def main():
        before = time.monotonic()
        deadline, thread = await lane.run("a", lambda d: (d, threading.current_thread().name))
        assert before + 3 <= deadline <= time.monotonic() + 3 and thread.startswith("rpc-test")

    asyncio.run(main())
    lane.close()


def test_a_full_lane_refuses_at_once_instead_of_queueing_without_end():
    lane, release = WorkLane("execution", LaneLimits(workers=1, queue=1, per_client=10)), threading.Event()

    async def main():
        running = [asyncio.ensure_future(lane.run(f"c{i}", blocking(release))) for i in range(2)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(RpcError, match="server busy, 2 execution requests") as caught:
            await lane.run("c3", blocking(release))
        assert caught.value.code == LIMIT_EXCEEDED and time.monotonic() - started < 0.05
        release.set()
        assert await asyncio.gather(*running) == ["done", "done"]
        assert lane.load == 0

    asyncio.run(main())
    lane.close()


def test_one_client_cannot_take_more_than_its_share_of_a_lane():
    lane, release = WorkLane("scan", LaneLimits(workers=2, queue=4, per_client=1)), threading.Event()

    async def main():
        first = asyncio.ensure_future(lane.run("10.0.0.1", blocking(release)))
        await asyncio.sleep(0.05)
        with pytest.raises(RpcError, match="too many concurrent scan requests from this client"):
            await lane.run("10.0.0.1", blocking(release))
        other = asyncio.ensure_future(lane.run("10.0.0.2", blocking(release)))
        release.set()
        assert await asyncio.gather(first, other) == ["done", "done"]

    asyncio.run(main())
    lane.close()


def test_a_request_past_its_time_limit_is_answered_and_its_worker_still_counted_until_it_finishes():
    lane, release = WorkLane("execution", LaneLimits(workers=1, queue=0, timeout=0.2)), threading.Event()

    async def main():
        started = time.monotonic()
        with pytest.raises(RpcError, match="eth_call: timed out after 0.2 s"):
            await lane.run("a", blocking(release), what="eth_call")
        assert 0.2 <= time.monotonic() - started < 0.5
        assert lane.load == 1  # the worker is still busy: the next request is refused, not queued behind it
        with pytest.raises(RpcError, match="server busy"):
            await lane.run("b", blocking(release))
        release.set()
        await asyncio.sleep(0.1)
        assert lane.load == 0

    asyncio.run(main())
    lane.close()


def test_a_waiting_request_that_runs_out_of_time_never_runs():
    lane, release, ran = WorkLane("read", LaneLimits(workers=1, queue=1)), threading.Event(), []

    async def main():
        busy = asyncio.ensure_future(lane.run("a", blocking(release)))
        await asyncio.sleep(0.05)
        with pytest.raises(RpcError, match="timed out"):
            await lane.run("b", blocking(release, ran), timeout=0.1)
        release.set()
        await busy
        await asyncio.sleep(0.05)
        assert ran == [] and lane.load == 0

    asyncio.run(main())
    lane.close()


@pytest.mark.parametrize("limits", [dict(workers=0), dict(queue=-1), dict(per_client=0), dict(timeout=0),
                                    dict(timeout=float("nan"))])
def test_lane_limits_out_of_range_are_refused(limits):
    with pytest.raises(ValueError):
        LaneLimits(**limits)
