"""Cutting a block's conflict components into shares for the parallel executor."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chain.execution.conflicts import chunk, schedule


def test_schedule_balances_components_over_workers():
    shares = schedule([[0, 1, 2], [3], [4, 5], [6]], 2)
    assert sorted(sum(len(c) for c in share) for share in shares) == [3, 4]


def test_chunk_hands_out_shrinking_shares_with_a_floor():
    sizes = [sum(map(len, share)) for share in chunk([[i] for i in range(1000)], 2)]
    assert sizes[0] == 250  # a quarter of the block: 1/(2·workers)
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 1000
    assert min(sizes[:-1]) >= 31  # 1/(16·workers): smaller shares cost more than they balance


def test_chunk_never_cuts_a_component_and_hands_out_the_largest_first():
    shares = chunk([[0, 1], list(range(2, 52)), [52], [53]], 4)
    assert shares[0] == [list(range(2, 52))]
    assert [c for share in shares for c in share] == [list(range(2, 52)), [0, 1], [52], [53]]


@given(st.lists(st.integers(1, 30), min_size=1, max_size=60), st.integers(1, 16))
def test_chunk_covers_every_component_exactly_once(sizes, workers):
    components, start = [], 0
    for size in sizes:
        components.append(list(range(start, start + size)))
        start += size
    shares = chunk(components, workers)
    assert sorted(map(tuple, (c for share in shares for c in share))) == sorted(map(tuple, components))
    assert all(share for share in shares)
    assert len(shares) <= len(components)
