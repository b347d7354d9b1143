"""The Merkle hashing shared by the state commitment and the block's list roots.

Nodes hash with SHA-256 from the standard library, so that a light client checks a
proof with nothing but Python; it is also faster than keccak for the many small node
hashes a block's commitment update needs. A leaf and an inner node hash under
different prefixes, so that one can never pass for the other.
"""

from __future__ import annotations

import hashlib

EMPTY = bytes(32)  # the hash of an empty tree or subtree
LEAF = b"\x00"
INNER = b"\x01"

_sha256 = hashlib.sha256


def tree_hash(data: bytes) -> bytes:
    """The hash of the Merkle trees (SHA-256)."""
    return _sha256(data).digest()


def list_root(items: list[bytes]) -> bytes:
    """The root of a plain binary Merkle tree over an ordered list (transactions,
    receipts): leaves H(0x00 || item), an odd node is paired with EMPTY; [] -> EMPTY."""
    if not items:
        return EMPTY
    level = [tree_hash(LEAF + item) for item in items]
    while len(level) > 1:
        if len(level) % 2:
            level.append(EMPTY)
        level = [tree_hash(INNER + level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def list_proof(items: list[bytes], index: int) -> list[bytes]:
    """The sibling hashes from item `index`'s leaf up to the root of `list_root(items)`."""
    if not 0 <= index < len(items):
        raise IndexError(f"no item {index} in a list of {len(items)}")
    level = [tree_hash(LEAF + item) for item in items]
    proof = []
    while len(level) > 1:
        if len(level) % 2:
            level.append(EMPTY)
        proof.append(level[index ^ 1])
        level = [tree_hash(INNER + level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        index //= 2
    return proof


def list_proofs(items: list[bytes]) -> list[list[bytes]]:
    """Every item's `list_proof`, from one pass over the tree (a block proves all its
    outgoing receipts at once; `list_proof` per item would hash the tree each time)."""
    level = [tree_hash(LEAF + item) for item in items]
    levels = []
    while len(level) > 1:
        if len(level) % 2:
            level.append(EMPTY)
        levels.append(level)
        level = [tree_hash(INNER + level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return [[lvl[(index >> depth) ^ 1] for depth, lvl in enumerate(levels)] for index in range(len(items))]


def verify_list_proof(root: bytes, item: bytes, index: int, proof: list[bytes]) -> bool:
    """Whether `item` is at `index` of the list whose root is `root`, by `list_proof`'s path."""
    if index < 0 or index >> len(proof):
        return False  # the path has fewer levels than the index needs
    node = tree_hash(LEAF + item)
    for sibling in proof:
        if len(sibling) != 32:
            return False
        node = tree_hash(INNER + (sibling + node if index & 1 else node + sibling))
        index //= 2
    return node == root
