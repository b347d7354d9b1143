"""Cross-shard receipts: value (and a payload) that leaves one shard in a block and lands
on another later, consumed there exactly once.

A receipt is made by a block of its source shard and named by where: (source shard,
block, index in that block's outgoing list), an id no other receipt of the chain can
have. The source header commits the block's outgoing receipts in a Merkle root
(`outgoing_receipts_root`, merkle.list_root over their encodings), so a receipt with its
`list_proof` against a final source header proves itself to any shard: a `Delivery`
carries the three together into a block of the destination shard. A refund is a
receipt too, back to the sender on the source shard, naming the receipt it refunds;
it is never refunded in turn.

The destination records every receipt it consumes in its state, in the outbox's
storage (`consumed_slot`): the word says how it ended and in which block, and a receipt
whose word is set is never consumed again.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp

from chain.core.merkle import list_proof, list_proofs, list_root, verify_list_proof

MAX_VALUE = 1 << 128  # values are the VM's 128-bit amounts
MAX_PAYLOAD = 4096  # bytes (ewasm_runtime.gas.MAX_RECEIPT_PAYLOAD)


class MalformedReceipt(ValueError):
    """Bytes that are not a cross-shard receipt."""


def receipt_id(source_shard: int, block: int, index: int) -> bytes:
    """The 14-byte id: source shard (2 bytes), block number (8), index (4), big-endian."""
    return source_shard.to_bytes(2, "big") + block.to_bytes(8, "big") + index.to_bytes(4, "big")


@dataclass(frozen=True)
class CrossShardReceipt:
    source_shard: int
    block: int  # the source block that made it
    index: int  # its place in that block's outgoing list
    dest_shard: int
    source: bytes  # the account that sent it (a contract, or the outbox for an account's transfer)
    to: bytes  # the address it is for, on the destination shard
    value: int
    payload: bytes
    refund_to: bytes  # the sender, on the source shard, who gets the value back if delivery fails
    refund_of: bytes = b""  # a refund: the id of the receipt it returns (empty otherwise)

    @property
    def id(self) -> bytes:
        return receipt_id(self.source_shard, self.block, self.index)

    @property
    def is_refund(self) -> bool:
        return bool(self.refund_of)

    def encode(self) -> bytes:
        return rlp.encode([self.source_shard, self.block, self.index, self.dest_shard, self.source, self.to,
                           self.value, self.payload, self.refund_to, self.refund_of])

    @classmethod
    def decode(cls, data: bytes) -> "CrossShardReceipt":
        try:
            fields = rlp.decode(data, strict=True)
        except rlp.DecodingError as err:
            raise MalformedReceipt(f"bad RLP in a cross-shard receipt: {err}") from None
        if not isinstance(fields, list) or len(fields) != 10 or not all(isinstance(f, bytes) for f in fields):
            raise MalformedReceipt("a cross-shard receipt is a list of 10 byte strings")
        ints = [_uint(fields[i], name) for i, name in ((0, "source shard"), (1, "block"), (2, "index"),
                                                      (3, "destination shard"), (6, "value"))]
        source, to, payload, refund_to, refund_of = fields[4], fields[5], fields[7], fields[8], fields[9]
        if len(source) != 20 or len(to) != 20 or len(refund_to) != 20:
            raise MalformedReceipt("a cross-shard receipt's addresses are 20 bytes")
        if refund_of and len(refund_of) != 14:
            raise MalformedReceipt("a refund names the 14-byte id of the receipt it returns")
        if ints[0] > 255 or ints[3] > 255 or ints[2] >= 1 << 32 or ints[1] >= 1 << 64:
            raise MalformedReceipt("a cross-shard receipt's shard, block or index is out of range")
        if ints[4] >= MAX_VALUE or len(payload) > MAX_PAYLOAD:
            raise MalformedReceipt("a cross-shard receipt's value or payload is out of range")
        return cls(ints[0], ints[1], ints[2], ints[3], source, to, ints[4], payload, refund_to, refund_of)


def _uint(data: bytes, name: str) -> int:
    if data[:1] == b"\x00":
        raise MalformedReceipt(f"a cross-shard receipt's {name} has a leading zero byte")
    return int.from_bytes(data, "big")


def outgoing_root(receipts: list[CrossShardReceipt]) -> bytes:
    """What a source header commits: the root over its block's outgoing receipts, in order."""
    return list_root([r.encode() for r in receipts])


def prove(receipts: list[CrossShardReceipt], index: int) -> list[bytes]:
    """The proof of `receipts[index]` against `outgoing_root(receipts)`."""
    return list_proof([r.encode() for r in receipts], index)


def prove_all(encoded: list[bytes]) -> list[list[bytes]]:
    """The proofs of every receipt of a block, from their encodings, in one pass."""
    return list_proofs(encoded)


def verify(receipt: CrossShardReceipt, proof: list[bytes], root: bytes) -> bool:
    """Whether `receipt` is at its index among the outgoing receipts committed by `root`."""
    return verify_list_proof(root, receipt.encode(), receipt.index, proof)


@dataclass(frozen=True)
class Delivery:
    """A receipt on its way into a destination block: the receipt, the hash of the final
    source block that made it, and its proof against that block's outgoing root."""

    receipt: CrossShardReceipt
    source_hash: bytes
    proof: tuple[bytes, ...]

    def encode(self) -> bytes:
        return rlp.encode([self.receipt.encode(), self.source_hash, list(self.proof)])

    @classmethod
    def decode(cls, data: bytes) -> "Delivery":
        """A delivery from its encoding; MalformedReceipt for anything that is not one."""
        try:
            items = rlp.decode(data, strict=True)
        except rlp.DecodingError as err:
            raise MalformedReceipt(f"bad RLP in a delivery: {err}") from None
        if not (isinstance(items, list) and len(items) == 3 and isinstance(items[0], bytes)
                and isinstance(items[1], bytes) and len(items[1]) == 32 and isinstance(items[2], list)
                and len(items[2]) <= 64 and all(isinstance(p, bytes) and len(p) == 32 for p in items[2])):
            raise MalformedReceipt("a delivery is [receipt, 32-byte source block hash, [32-byte proof nodes]]")
        return cls(CrossShardReceipt.decode(items[0]), items[1], tuple(items[2]))


# How a consumed receipt ended, in the first byte of its consumed word.
DELIVERED = 1  # credited to its address (and its handler, if any, succeeded or, for a refund, was run)
REFUNDED = 2  # could not land: a refund receipt went back to the sender
OUTCOMES = {DELIVERED: "delivered", REFUNDED: "refunded"}


def consumed_slot(rid: bytes) -> bytes:
    """The outbox storage slot that records receipt `rid` as consumed."""
    return b"\x01" + bytes(17) + rid


def consumed_word(outcome: int, block: int) -> bytes:
    """The consumed slot's value: the outcome, and the block that consumed it."""
    return bytes((outcome,)) + bytes(23) + block.to_bytes(8, "big")


def read_consumed(word: bytes) -> tuple[str, int] | None:
    """(outcome, block) from a consumed slot's value; None for a receipt not consumed."""
    if not any(word):
        return None
    return OUTCOMES.get(word[0], "delivered"), int.from_bytes(word[24:], "big")
