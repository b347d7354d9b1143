"""Blocks a node has heard of that are not on its chain: what another fork is made of.

A block that does not extend the head (its parent is not the head) may belong to a fork.
It is kept here, up to a bound, until the blocks heard of link it to a block of the
node's own chain: then `branch` gives the common ancestor and the branch's blocks,
oldest first, and the engine's fork choice decides whether to switch to it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from chain.core.blocks import Block


@dataclass(frozen=True)
class Branch:
    ancestor: int  # the number of the newest block the branch shares with this chain
    blocks: list[Block]  # oldest first


class SideBlocks:
    def __init__(self, capacity: int = 2048):
        self.capacity = capacity
        self._blocks: OrderedDict[bytes, Block] = OrderedDict()  # by hash, oldest heard first

    def add(self, block: Block) -> None:
        self._blocks[block.hash] = block
        self._blocks.move_to_end(block.hash)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)

    def __len__(self) -> int:
        return len(self._blocks)

    def branch(self, tip: Block, on_chain: Callable[[bytes], int | None]) -> Branch | bytes:
        """The branch from this chain up to `tip`; or, when a block on the way is missing,
        the hash of the missing parent. `on_chain(hash)` is the number of a block of this
        chain, None for any other."""
        blocks = [tip]
        while True:
            parent = blocks[-1].header.parent_hash
            number = on_chain(parent)
            if number is not None:
                return Branch(number, blocks[::-1])
            block = self._blocks.get(parent)
            if block is None:
                return parent
            blocks.append(block)

    def prune(self, below: int) -> None:
        """Forget blocks at or below `below` (final heights: no fork can go there)."""
        for block_hash in [h for h, b in self._blocks.items() if b.number <= below]:
            del self._blocks[block_hash]
