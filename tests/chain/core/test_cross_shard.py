"""Cross-shard receipts as data: each encodes and decodes to itself, its id names where
it was made, and its Merkle proof verifies against its block's outgoing root and nothing
else: another index, another root, a changed receipt or a cut proof all fail."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.core.cross_shard import CrossShardReceipt, MalformedReceipt, outgoing_root, prove, receipt_id, verify
from chain.core.merkle import list_proof, list_root, verify_list_proof

addresses = st.binary(min_size=20, max_size=20)


@st.composite
def receipt_lists(draw):
    count = draw(st.integers(1, 9))
    block, source = draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 255))
    return [CrossShardReceipt(source, block, i, draw(st.integers(0, 255)), draw(addresses), draw(addresses),
                              draw(st.integers(0, 2**128 - 1)), draw(st.binary(max_size=40)), draw(addresses),
                              draw(st.sampled_from([b"", receipt_id(1, 2, 3)])))
            for i in range(count)]


@given(receipt_lists())
def test_a_receipt_encodes_to_itself_and_its_id_names_shard_block_and_index(receipts):
    for r in receipts:
        assert CrossShardReceipt.decode(r.encode()) == r
        assert r.id == receipt_id(r.source_shard, r.block, r.index) and len(r.id) == 14


@given(receipt_lists(), st.data())
def test_each_receipt_proves_itself_against_its_blocks_root_and_a_tampered_one_does_not(receipts, data):
    root = outgoing_root(receipts)
    k = data.draw(st.integers(0, len(receipts) - 1))
    proof = prove(receipts, k)
    assert verify(receipts[k], proof, root)
    assert not verify(receipts[k], proof, bytes(32) if root != bytes(32) else b"\x01" * 32)
    changed = CrossShardReceipt(**{**receipts[k].__dict__, "value": receipts[k].value + 1})
    assert not verify(changed, proof, root)
    if len(receipts) > 1:
        moved = CrossShardReceipt(**{**receipts[k].__dict__, "index": (k + 1) % len(receipts)})
        assert not verify(moved, proof, root)
        assert not verify(receipts[k], proof[:-1], root)


@given(st.lists(st.binary(max_size=30), min_size=1, max_size=20), st.data())
def test_list_proofs_check_every_position_of_list_root(items, data):
    k = data.draw(st.integers(0, len(items) - 1))
    assert verify_list_proof(list_root(items), items[k], k, list_proof(items, k))
    assert not verify_list_proof(list_root(items), items[k], k + (1 << len(list_proof(items, k))),
                                 list_proof(items, k))


SHORT_ADDRESS = CrossShardReceipt(0, 1, 2, 1, b"\x03" * 20, b"\x01" * 19, 5, b"", b"\x02" * 20)
TOO_MUCH = CrossShardReceipt(0, 1, 2, 1, b"\x03" * 20, b"\x01" * 20, 2**128, b"", b"\x02" * 20)


@pytest.mark.parametrize("data", [b"", b"\xc0", b"\x80", bytes.fromhex("c9") + b"\x80" * 9, SHORT_ADDRESS.encode(),
                                  TOO_MUCH.encode()])
def test_bytes_that_are_no_receipt_are_refused(data):
    with pytest.raises(MalformedReceipt):
        CrossShardReceipt.decode(data)


@given(st.lists(st.binary(max_size=30), min_size=1, max_size=40))
def test_all_proofs_at_once_are_each_items_own_proof(items):
    from chain.core.merkle import list_proofs
    assert list_proofs(items) == [list_proof(items, k) for k in range(len(items))]


def test_a_delivery_encodes_to_itself_and_bytes_that_are_none_are_refused():
    from chain.core.cross_shard import Delivery
    receipt = CrossShardReceipt(0, 1, 0, 1, b"\x03" * 20, b"\x01" * 20, 5, b"", b"\x02" * 20)
    delivery = Delivery(receipt, b"\x07" * 32, (b"\x08" * 32,))
    assert Delivery.decode(delivery.encode()) == delivery
    for bad in (b"", delivery.encode()[:-1], Delivery(receipt, b"\x07" * 31, ()).encode()):
        with pytest.raises(MalformedReceipt):
            Delivery.decode(bad)
