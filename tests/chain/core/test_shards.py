"""The shard layout: every address on exactly one shard by its first byte, the system
addresses on all of them, and the scopes that keep a transaction inside its shard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.core.shards import SYSTEM_LIMIT, ShardLayout, is_system, is_system_prefix
from ewasm_runtime.scope import in_scope

addresses = st.binary(min_size=20, max_size=20)
layouts = st.integers(1, 256).map(ShardLayout)


@given(layouts, addresses)
def test_every_address_is_on_the_shard_of_its_first_byte_and_the_ranges_tile_the_bytes(layout, address):
    shard = layout.shard_of(address)
    assert 0 <= shard < layout.count and address[0] in layout.first_bytes(shard)
    assert sorted(b for k in range(layout.count) for b in layout.first_bytes(k)) == list(range(256))


@given(layouts, addresses, st.integers(0, 255))
def test_a_shards_home_scope_holds_exactly_its_own_and_the_system_addresses(layout, address, k):
    shard = k % layout.count
    assert in_scope(address, layout.home_scope(shard)) == layout.holds(shard, address)
    assert layout.holds(shard, address) == (layout.count == 1 or is_system(address)
                                            or layout.shard_of(address) == shard)


@given(layouts, st.binary(max_size=20), addresses, st.integers(0, 255))
def test_a_prefix_inside_a_shard_starts_only_addresses_that_shard_holds(layout, prefix, rest, k):
    shard = k % layout.count
    address = (prefix + rest)[:20]
    if layout.prefix_inside(prefix, shard):
        assert layout.holds(shard, address)


def test_the_system_range_is_every_address_below_two_to_the_twenty():
    assert is_system((SYSTEM_LIMIT - 1).to_bytes(20, "big")) and not is_system(SYSTEM_LIMIT.to_bytes(20, "big"))
    assert is_system_prefix(bytes(18)) and is_system_prefix(bytes(17) + b"\x0f")
    assert not is_system_prefix(bytes(17) + b"\x10") and not is_system_prefix(bytes(17))


def test_two_shards_split_the_first_byte_in_halves():
    layout = ShardLayout(2)
    assert layout.first_bytes(0) == range(0, 128) and layout.first_bytes(1) == range(128, 256)
    assert layout.execution_scope((b"",), 1) == layout.home_scope(1)
    assert ShardLayout(1).execution_scope((b"",), 0) is None


@pytest.mark.parametrize("count", [0, 257])
def test_a_layout_has_one_to_256_shards(count):
    with pytest.raises(ValueError):
        ShardLayout(count)
