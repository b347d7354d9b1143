"""The filter registry: a client holds a bounded number of filters, the node a bounded
total, and a filter nobody polls for its lifetime is gone."""

from __future__ import annotations

import pytest

from chain.rpc.codec import RpcError
from chain.rpc.filters import BLOCKS, FILTER_LIFETIME, MAX_PER_CLIENT, FilterRegistry


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_client_holds_at_most_its_share_of_filters_and_others_still_install():
    registry = FilterRegistry()
    ids = [registry.install("10.0.0.1", BLOCKS, 1) for _ in range(MAX_PER_CLIENT)]
    with pytest.raises(RpcError, match=f"at most {MAX_PER_CLIENT} filters"):
        registry.install("10.0.0.1", BLOCKS, 1)
    registry.install("10.0.0.2", BLOCKS, 1)
    assert registry.uninstall(ids[0])
    registry.install("10.0.0.1", BLOCKS, 1)


def test_a_filter_polled_in_time_stays_and_one_left_alone_expires():
    clock = Clock()
    registry = FilterRegistry(clock)
    kept, left = registry.install("c", BLOCKS, 5), registry.install("c", BLOCKS, 5)
    clock.now = FILTER_LIFETIME * 0.9
    assert registry.poll(kept).cursor == 5
    clock.now = FILTER_LIFETIME * 1.5
    registry.poll(kept)
    with pytest.raises(RpcError, match="filter not found"):
        registry.poll(left)


@pytest.mark.parametrize("bad", [None, 5, "12", "0x" + "0" * 80])
def test_an_id_that_is_no_filter_id_is_the_callers_error(bad):
    with pytest.raises(RpcError) as err:
        FilterRegistry().poll(bad)
    assert err.value.code == -32602
