"""The wire format: every message round-trips; any other bytes are a WireError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.net import wire

MESSAGES = [wire.Status(7, b"\x11" * 32), wire.Transactions((b"\x02abc", b"")), wire.NewBlock(b"block"),
            wire.GetBlocks(5, 64), wire.Blocks((b"a", b"b")), wire.Consensus(b"\x00" * 10), wire.Disconnect("bye")]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_kind_of_message_round_trips(message):
    assert wire.decode(wire.encode(message)) == message


@pytest.mark.parametrize("items, reason", [
    ([], "array"),
    ([99], "unknown message kind"),
    ([1, 7], "STATUS has 2 fields"),
    ([1, -1, b"\x11" * 32], "unsigned"),
    ([1, 1.5, b"\x11" * 32], "unsigned"),
    ([1, 7, b"\x11" * 31], "32 bytes"),
    ([1, True, b"\x11" * 32], "unsigned"),
    ([2, [b"a", "text"]], r"raws\[1\]"),
    ([2, [b""] * (wire.MAX_TRANSACTIONS + 1)], "at most 1024"),
    ([4, 0, 0], "1 to 64"),
    ([4, 0, 65], "1 to 64"),
    ([7, "x" * 201], "at most 200"),
    ([6, {"a": 1}], "bytes"),
])
def test_malformed_messages_say_what_is_wrong(items, reason):
    with pytest.raises(wire.WireError, match=reason):
        wire.decode(msgpack.packb(items, use_bin_type=True))


def test_a_message_above_its_kinds_cap_is_refused_both_ways():
    with pytest.raises(wire.WireError, match="exceeds its cap"):
        wire.encode(wire.Status(1, b"\x00" * 32)) and wire.encode(wire.Consensus(b"\x00" * (1 << 20)))
    big = msgpack.packb([1, 1, b"\x00" * 200], use_bin_type=True)
    with pytest.raises(wire.WireError, match="exceeds its cap"):
        wire.decode(big)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_to_a_message_or_a_wire_error(data):
    try:
        wire.decode(data)
    except wire.WireError:
        pass


json_like = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.binary(max_size=40)
                         | st.text(max_size=10) | st.floats(),
                         lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=15)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 9), st.lists(json_like, max_size=4))
def test_well_formed_msgpack_of_any_shape_decodes_to_a_message_or_a_wire_error(kind, fields):
    try:
        data = msgpack.packb([kind, *fields], use_bin_type=True)
    except (OverflowError, ValueError):  # integers msgpack cannot hold
        return
    try:
        wire.decode(data)
    except wire.WireError:
        pass
