"""Cutting a block's conflict components into shares for the parallel executor."""

from __future__ import annotations

from hypothesis import given, strategies as st

from chain.conflicts import chunk, schedule


def test_schedule_balances_components_over_workers():
    shares = schedule([[0, 1, 2], [3], [4, 5], [6]], 2)
    assert sorted(sum(len(c) for c in share) for share in shares) == [3, 4]


def test_chunk_cuts_many_small_components_into_about_the_asked_number_of_shares():
    shares = chunk([[i] for i in range(100)], 8)
    assert len(shares) == 8
    assert {sum(map(len, share)) for share in shares} == {13, 9}


def test_chunk_never_cuts_a_component_and_hands_out_the_largest_first():
    shares = chunk([[0, 1], list(range(2, 52)), [52], [53]], 8)
    assert shares[0] == [list(range(2, 52))]
    assert [c for share in shares for c in share] == [list(range(2, 52)), [0, 1], [52], [53]]


@given(st.lists(st.integers(1, 30), min_size=1, max_size=60), st.integers(1, 64))
def test_chunk_covers_every_component_exactly_once(sizes, count):
    components, start = [], 0
    for size in sizes:
        components.append(list(range(start, start + size)))
        start += size
    shares = chunk(components, count)
    assert sorted(map(tuple, (c for share in shares for c in share))) == sorted(map(tuple, components))
    assert all(share for share in shares)
    # a share closes only when the next component would overfill it, so two neighbours
    # together hold more than a target's worth
    assert len(shares) <= min(len(components), 2 * count + 1)
