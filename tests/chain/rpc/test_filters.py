"""The filter registry: a client holds a bounded number of filters, the node a bounded
total, and a filter nobody polls for its lifetime is gone."""

from __future__ import annotations

import pytest

from chain.core.receipts import Log
from chain.rpc.codec import RpcError
from chain.rpc.filters import BLOCKS, FILTER_LIFETIME, MAX_PER_CLIENT, FilterRegistry, log_criteria, log_matches


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


T1, T2 = "0x" + "11" * 32, "0x" + "22" * 32
ONE_TOPIC = Log(b"\xaa" * 20, (bytes.fromhex("11" * 32),), b"")


@pytest.mark.parametrize("query, matches", [
    ({"topics": [T1]}, True),
    ({"topics": [T1, None]}, False),  # more positions than the log has topics: geth says no
    ({"topics": [[]]}, True),  # an empty list at a position is any topic
    ({"topics": [[T2, T1]]}, True),
    ({"topics": [T2]}, False),
    ({"address": []}, True),  # an empty address list is any address
    ({"address": ["0x" + "bb" * 20]}, False),
])
def test_log_criteria_match_as_geths_filter_logs_does(query, matches):
    assert log_matches(log_criteria(query), ONE_TOPIC) is matches
