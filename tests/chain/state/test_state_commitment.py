from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.core.merkle import EMPTY, list_root, tree_hash
from chain.state.commitment import MerkleTree, Proof, TreeUndo, key_path, leaf_hash, verify_proof


def reference_root(entries: dict[bytes, bytes]) -> bytes:
    """The root computed from scratch, by the definition, with no caching."""
    leaves = sorted((key_path(k), leaf_hash(key_path(k), v)) for k, v in entries.items())

    def node(depth, items):
        if not items:
            return EMPTY
        if len(items) == 1:
            return items[0][1]
        left = [i for i in items if not (i[0][depth >> 3] >> (7 - (depth & 7))) & 1]
        return tree_hash(b"\x01" + node(depth + 1, left) + node(depth + 1, items[len(left):]))

    return node(0, leaves)


keys = st.binary(min_size=1, max_size=6)
values = st.binary(min_size=1, max_size=8)
blocks = st.lists(st.dictionaries(keys, st.one_of(st.none(), values), max_size=12), max_size=8)


@settings(max_examples=150, deadline=None)
@given(blocks)
def test_incremental_root_equals_the_from_scratch_root_after_every_block(block_changes):
    tree, state = MerkleTree(), {}
    for changes in block_changes:
        tree.update(changes)
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        assert tree.root == reference_root(state)
        assert len(tree) == len(state)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(keys, values, max_size=40), keys)
def test_proofs_verify_for_present_and_absent_keys(state, probe):
    tree = MerkleTree.from_entries(state.items())
    for key, value in list(state.items())[:10] + [(probe, state.get(probe))]:
        proof = tree.prove(key)
        assert verify_proof(tree.root, key, value, proof)
        assert verify_proof(tree.root, key, value, Proof.decode(proof.encode()))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=40), st.data())
def test_tampered_proofs_and_wrong_values_fail(state, data):
    tree = MerkleTree.from_entries(state.items())
    key = data.draw(st.sampled_from(sorted(state)))
    proof = tree.prove(key)
    assert not verify_proof(tree.root, key, state[key] + b"x", proof)
    assert not verify_proof(tree.root, key, None, proof)
    if proof.siblings:
        i = data.draw(st.integers(0, len(proof.siblings) - 1))
        bad = list(proof.siblings)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not verify_proof(tree.root, key, state[key], Proof(proof.terminal, tuple(bad)))
        assert not verify_proof(tree.root, key, state[key], Proof(proof.terminal, proof.siblings[:-1]))
    assert not verify_proof(tree_hash(tree.root), key, state[key], proof)


def test_the_root_does_not_depend_on_update_order():
    a = MerkleTree()
    a.update({b"x": b"1"})
    a.update({b"y": b"2", b"z": b"3"})
    b = MerkleTree.from_entries([(b"z", b"3"), (b"y", b"2"), (b"x", b"1")])
    assert a.root == b.root != EMPTY


def test_deleting_everything_gives_the_empty_root():
    tree = MerkleTree.from_entries([(b"x", b"1"), (b"y", b"2")])
    assert tree.update({b"x": None, b"y": None}) == EMPTY


def test_list_root_commits_to_order():
    assert list_root([]) == EMPTY
    assert list_root([b"a", b"b"]) != list_root([b"b", b"a"])
    assert list_root([b"a", b"b", b"c"]) != list_root([b"a", b"b"])


def tree_state(tree: MerkleTree) -> tuple:
    return tree.root, list(tree._paths), dict(tree._leaves), dict(tree._inner)


@settings(max_examples=150, deadline=None)
@given(blocks, st.dictionaries(keys, st.one_of(st.none(), values), max_size=12))
def test_reverting_an_update_restores_the_tree_exactly_and_it_updates_on_as_before(block_changes, refused):
    tree = MerkleTree()
    for changes in block_changes:
        tree.update(changes)
    before = tree_state(tree)
    undo = TreeUndo(root=tree.root)
    tree.update(refused, undo)
    tree.revert(undo)
    assert tree_state(tree) == before
    fresh = MerkleTree()
    for changes in [*block_changes, refused]:
        fresh.update(changes)
    assert tree.update(refused) == fresh.root  # the reverted tree's caches are sound
