"""The state commitment: a sparse binary Merkle tree, updated incrementally per block.

Every state entry (an account, a storage slot) is a leaf at the path given by the bits of
SHA-256(key). A subtree holding no leaf is EMPTY (32 zero bytes); a subtree holding one
leaf is that leaf itself, so a leaf sits at the shallowest depth where it is alone and the
tree is about log2(n) deep. A subtree holding two or more leaves is an inner node:

    leaf  = H(0x00 || SHA-256(key) || H(value))
    inner = H(0x01 || left || right)

The root depends only on the set of entries, never on the order of updates. After each
block, `update` recomputes just the nodes on the paths of the changed keys: untouched
subtrees keep their cached hashes. A proof is the terminal node on the key's path plus
the siblings from the root down; `verify_proof` needs nothing but hashlib.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from sortedcontainers import SortedList

from chain.core.merkle import EMPTY, INNER, LEAF, tree_hash


def key_path(key: bytes) -> bytes:
    """The 256-bit path of a state key in the tree."""
    return tree_hash(key)


def leaf_hash(path: bytes, value: bytes) -> bytes:
    """The hash of the leaf holding `value` at `path`."""
    return tree_hash(LEAF + path + tree_hash(value))


def _bit(path: bytes, depth: int) -> int:
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


def _boundary(depth: int, prefix: int) -> bytes:
    """The smallest path whose first depth+1 bits are `prefix` followed by a 1."""
    return (((prefix << 1) | 1) << (255 - depth)).to_bytes(32, "big")


@dataclass(frozen=True)
class Proof:
    """A Merkle proof for one key.

    `terminal` is what the key's path ends at: the key's own leaf (inclusion), another
    key's leaf (path, value hash) sharing the path so far, or None for an empty subtree.
    `siblings` are the sibling hashes from the root downwards.
    """

    terminal: tuple[bytes, bytes] | None  # (path, value hash) of the leaf reached
    siblings: tuple[bytes, ...]

    def encode(self) -> list[bytes]:
        """As a list of byte strings: terminal (b"" or path||value hash), then siblings."""
        head = b"" if self.terminal is None else self.terminal[0] + self.terminal[1]
        return [head, *self.siblings]

    @classmethod
    def decode(cls, nodes: list[bytes]) -> "Proof":
        """Inverse of encode; ValueError on a malformed list."""
        if not nodes:
            raise ValueError("a proof has at least its terminal node")
        head, siblings = nodes[0], tuple(nodes[1:])
        if len(head) not in (0, 64) or any(len(s) != 32 for s in siblings) or len(siblings) > 256:
            raise ValueError("malformed proof: terminal is 0 or 64 bytes, siblings 32 bytes, at most 256")
        return cls(None if not head else (head[:32], head[32:]), siblings)


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> bool:
    """Whether `proof` shows that `key` holds `value` (None: is absent) under `root`.

    Standalone on purpose: a light client checks eth_getProof answers with this function
    and a header's state root, nothing else.
    """
    path = key_path(key)
    depth = len(proof.siblings)
    if proof.terminal is None:
        if value is not None:
            return False
        node = EMPTY
    else:
        terminal_path, value_hash = proof.terminal
        if terminal_path == path:
            if value is None or tree_hash(value) != value_hash:
                return False
        else:
            # Absence shown by another leaf that sits where `key` would be.
            if value is not None or not all(_bit(terminal_path, d) == _bit(path, d) for d in range(depth)):
                return False
        node = tree_hash(LEAF + terminal_path + value_hash)
    for d in range(depth - 1, -1, -1):
        sibling = proof.siblings[d]
        node = tree_hash(INNER + sibling + node) if _bit(path, d) else tree_hash(INNER + node + sibling)
    return node == root


@dataclass
class TreeUndo:
    """What one `update` replaced: enough to put the tree back as it was (a block that
    turned out invalid, or a candidate that was not committed)."""

    root: bytes
    leaves: dict[bytes, tuple[bytes, bytes] | None] = field(default_factory=dict)  # path -> old leaf, None: absent
    inner: dict[tuple[int, int], bytes | None] = field(default_factory=dict)  # node -> old hash, None: absent


class MerkleTree:
    """The in-memory tree of the latest state: leaves plus cached inner-node hashes."""

    def __init__(self) -> None:
        self._paths = SortedList()  # every leaf path
        self._leaves: dict[bytes, tuple[bytes, bytes]] = {}  # path -> (leaf hash, value hash)
        self._inner: dict[tuple[int, int], bytes] = {}  # (depth, prefix) -> hash, subtrees of >= 2 leaves
        self._root = EMPTY
        self._undo: TreeUndo | None = None  # being recorded by the update in progress

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[bytes, bytes]]) -> "MerkleTree":
        """Build the tree of a whole state (startup, tests)."""
        tree = cls()
        tree.update(dict(entries))
        return tree

    @property
    def root(self) -> bytes:
        return self._root

    def __len__(self) -> int:
        return len(self._paths)

    def update(self, changes: Mapping[bytes, bytes | None], undo: TreeUndo | None = None) -> bytes:
        """Apply one block's changed keys (value None = deleted) and return the new root.

        With `undo` (a fresh TreeUndo(root=tree.root)), everything replaced is recorded
        there, and `revert(undo)` restores the tree exactly.
        """
        self._undo = undo
        try:
            return self._update(changes)
        finally:
            self._undo = None

    def _update(self, changes: Mapping[bytes, bytes | None]) -> bytes:
        changed: list[bytes] = []
        undo = self._undo
        for key, value in changes.items():
            path = key_path(key)
            present = path in self._leaves
            if undo is not None and path not in undo.leaves:
                undo.leaves[path] = self._leaves.get(path)
            if value is None:
                if present:
                    del self._leaves[path]
                    self._paths.remove(path)
                    changed.append(path)
                continue
            value_hash = tree_hash(value)
            self._leaves[path] = (tree_hash(LEAF + path + value_hash), value_hash)
            if not present:
                self._paths.add(path)
            changed.append(path)
        if changed:
            changed.sort()
            self._root = self._rebuild(0, 0, 0, len(self._paths), changed, 0, len(changed))
        return self._root

    def _rebuild(self, depth: int, prefix: int, lo: int, hi: int,
                 changed: list[bytes], clo: int, chi: int) -> bytes:
        """The hash of the subtree (depth, prefix) holding paths[lo:hi], recomputing only
        what lies on the paths changed[clo:chi]."""
        count = hi - lo
        if count == 0:
            if clo < chi:
                self._set_inner((depth, prefix), None)
            return EMPTY
        if count == 1:
            if clo < chi:
                self._set_inner((depth, prefix), None)
            return self._leaves[self._paths[lo]][0]
        if clo == chi:
            return self._inner[(depth, prefix)]
        boundary = _boundary(depth, prefix)
        mid = self._paths.bisect_left(boundary)
        cmid = bisect.bisect_left(changed, boundary, clo, chi)
        left = self._rebuild(depth + 1, prefix << 1, lo, mid, changed, clo, cmid)
        right = self._rebuild(depth + 1, (prefix << 1) | 1, mid, hi, changed, cmid, chi)
        node = tree_hash(INNER + left + right)
        self._set_inner((depth, prefix), node)
        return node

    def _set_inner(self, node: tuple[int, int], value: bytes | None) -> None:
        """Set (or, with None, drop) a cached inner hash, recording the old one for undo."""
        undo = self._undo
        if undo is not None and node not in undo.inner:
            undo.inner[node] = self._inner.get(node)
        if value is None:
            self._inner.pop(node, None)
        else:
            self._inner[node] = value

    def revert(self, undo: TreeUndo) -> None:
        """Undo the update that recorded `undo` (it must be the last one applied)."""
        for path, old in undo.leaves.items():
            present = path in self._leaves
            if old is None:
                if present:
                    del self._leaves[path]
                    self._paths.remove(path)
            else:
                if not present:
                    self._paths.add(path)
                self._leaves[path] = old
        for node, old in undo.inner.items():
            if old is None:
                self._inner.pop(node, None)
            else:
                self._inner[node] = old
        self._root = undo.root

    def prove(self, key: bytes) -> Proof:
        """The proof of `key`'s value or absence in the current tree."""
        path = key_path(key)
        siblings: list[bytes] = []
        depth, prefix, lo, hi = 0, 0, 0, len(self._paths)
        while hi - lo >= 2:
            mid = self._paths.bisect_left(_boundary(depth, prefix))
            bit = _bit(path, depth)
            if bit:
                siblings.append(self._subtree_hash(depth + 1, prefix << 1, lo, mid))
                lo, prefix = mid, (prefix << 1) | 1
            else:
                siblings.append(self._subtree_hash(depth + 1, (prefix << 1) | 1, mid, hi))
                hi, prefix = mid, prefix << 1
            depth += 1
        if hi - lo == 0:
            return Proof(None, tuple(siblings))
        other = self._paths[lo]
        return Proof((other, self._leaves[other][1]), tuple(siblings))

    def _subtree_hash(self, depth: int, prefix: int, lo: int, hi: int) -> bytes:
        if hi == lo:
            return EMPTY
        if hi - lo == 1:
            return self._leaves[self._paths[lo]][0]
        return self._inner[(depth, prefix)]
