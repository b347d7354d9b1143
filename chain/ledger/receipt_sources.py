"""Where a shard learns that a receipt is real: the final headers of the other shards.

Every node runs every shard, so a node's shard B trusts what the same node's shard A
says is final: that is the node's own view of A's consensus, not a peer's word. A
delivery is acceptable when the block it names is final on the source shard, with that
hash, and the receipt's proof verifies against that block's outgoing receipts root.
Finality is permanent, so the answer never changes once given, only its timing: a
shard that does not know yet refuses now and accepts later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chain.core import cross_shard
from chain.core.cross_shard import Delivery
from chain.core.params import ChainParams


class InvalidDelivery(ValueError):
    """A delivery that cannot be consumed here; the message says which check failed."""


class SourceNotFinal(InvalidDelivery):
    """The block a delivery names is not final here (yet): ask again later."""


@dataclass(frozen=True)
class SourceHeader:
    """What a delivery is checked against: a final block of its source shard."""

    shard: int
    number: int
    hash: bytes
    outgoing_root: bytes


class FinalSources(Protocol):
    def final_header(self, shard: int, number: int) -> SourceHeader | None:
        """Block `number` of `shard` if it is final (None while it is not, or cannot be
        learnt now)."""


def check_delivery(delivery: Delivery, params: ChainParams, sources: FinalSources | None) -> SourceHeader:
    """The source header that proves `delivery` for this shard; InvalidDelivery if none does.
    (Whether the receipt was consumed already is the state's question: deliveries.py.)"""
    receipt = delivery.receipt
    rid = f"receipt 0x{receipt.id.hex()}"
    if receipt.dest_shard != params.shard_id:
        raise InvalidDelivery(f"{rid} is for shard {receipt.dest_shard}, this is shard {params.shard_id}")
    if receipt.source_shard >= params.shards.count:
        raise InvalidDelivery(f"{rid} names source shard {receipt.source_shard}; this chain has "
                              f"{params.shards.count}")
    header = sources.final_header(receipt.source_shard, receipt.block) if sources is not None else None
    if header is None:
        raise SourceNotFinal(f"{rid}: block {receipt.block} of shard {receipt.source_shard} is not final here")
    if header.hash != delivery.source_hash:
        raise InvalidDelivery(f"{rid} names block 0x{delivery.source_hash.hex()}; block {receipt.block} of shard "
                              f"{receipt.source_shard} is 0x{header.hash.hex()}")
    if not cross_shard.verify(receipt, list(delivery.proof), header.outgoing_root):
        raise InvalidDelivery(f"{rid}: its proof does not verify against the outgoing receipts root of block "
                              f"{receipt.block} of shard {receipt.source_shard}")
    return header
