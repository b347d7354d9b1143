"""The validator set of every height, derived from the chain alone.

Epochs are runs of `epoch_length` blocks; block k·E is the boundary that ends epoch k.
The set that validates the blocks k·E + 1 … (k + 1)·E is the list the validator-set
contract (0x…ff02, chain/core/system.py) holds in the state after block k·E: a change
voted in epoch k takes effect at its end, for PoA and PBFT alike. The first epoch's set
is the spec's. A chain whose genesis has no such contract keeps the spec's set forever.

A node keeps only its newest state, so the list is read when a boundary block is
committed and recorded beside it, in the same write (Store.commit_block), and dropped
with it if the block is reverted: a node that syncs from genesis derives every set in
the same way as the nodes that made the blocks.
"""

from __future__ import annotations

import threading
from typing import Callable

from chain.core.system import VALIDATORS, read_validators
from chain.state.store import Store


def epoch_boundary(height: int, epoch_length: int) -> int:
    """The boundary whose state fixes the set of block `height` (0 for the first epoch)."""
    return (height - 1) // epoch_length * epoch_length if height > 0 else 0


def next_epoch_boundary(height: int, epoch_length: int) -> int:
    """The first boundary at or after `height`: where a change voted in block `height` is read."""
    return -(-height // epoch_length) * epoch_length


class ValidatorSchedule:
    """Which validators validate each height (thread-safe: engines and RPC ask while blocks commit)."""

    def __init__(self, store: Store, genesis: tuple[bytes, ...], epoch_length: int, voted: bool):
        """`voted`: the chain has the validator-set contract (otherwise the set is fixed)."""
        self.genesis, self.epoch_length, self.voted = tuple(genesis), epoch_length, voted
        self._lock = threading.Lock()
        self._recorded = store.validator_sets() if voted else {}

    def next_boundary(self, height: int) -> int:
        return next_epoch_boundary(height, self.epoch_length)

    def at(self, height: int) -> tuple[bytes, ...]:
        """The validators of block `height`. KeyError if its boundary is not committed."""
        boundary = epoch_boundary(height, self.epoch_length)
        if boundary == 0 or not self.voted:
            return self.genesis
        with self._lock:
            return self._recorded[boundary]

    def is_boundary(self, number: int) -> bool:
        return self.voted and number > 0 and number % self.epoch_length == 0

    def read(self, get_storage: Callable[[bytes, bytes], bytes]) -> tuple[bytes, ...]:
        """The contract's list in a state, read through `get_storage(address, slot)`."""
        return read_validators(lambda slot: get_storage(VALIDATORS, slot))

    def recorded(self, number: int, validators: tuple[bytes, ...]) -> None:
        """Boundary block `number` was committed with `validators` for the next epoch."""
        with self._lock:
            self._recorded[number] = validators

    def reverted(self, number: int) -> None:
        """Block `number` was taken back: a set it recorded goes with it."""
        with self._lock:
            self._recorded.pop(number, None)
