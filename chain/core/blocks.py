"""Block headers and blocks.

The header carries what a multi-node, sharded chain needs: the shard id, the root of the
cross-shard receipts this block emits and of those it delivers, the hash of the
validator set that produced it and the consensus seal. The block hash covers every field except the seal, so that seals
(one proposer signature for PoA, commit seals for PBFT) sign the hash itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import rlp
from rlp.sedes import Binary, big_endian_int, binary

from chain.core.hashing import keccak256
from chain.core.merkle import EMPTY, list_root


class InvalidBlock(ValueError):
    """A block that breaks a rule of the chain; the message names the rule and the values."""


class NotYetVerifiable(InvalidBlock):
    """A block this node cannot check yet: it delivers a receipt from a source block
    that is not final here yet. The same block may import later; its sender is honest."""


_hash32 = Binary.fixed_length(32)
_address = Binary.fixed_length(20)
_UNSEALED_FIELDS = [big_endian_int, big_endian_int, _hash32, big_endian_int, _address, _hash32, _hash32,
                    _hash32, _hash32, _hash32, _hash32, big_endian_int, big_endian_int, binary]
_UNSEALED = rlp.sedes.List(_UNSEALED_FIELDS)
_HEADER = rlp.sedes.List([*_UNSEALED_FIELDS, binary])


@dataclass(frozen=True)
class Header:
    """A block header; `hash` excludes the seal."""

    shard_id: int
    number: int
    parent_hash: bytes
    timestamp: int
    proposer: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    outgoing_receipts_root: bytes
    deliveries_root: bytes  # the cross-shard receipts this block consumes, with their proofs
    validator_set_hash: bytes
    gas_limit: int
    gas_used: int
    extra_data: bytes = b""
    seal: bytes = b""

    def _unsealed_fields(self) -> list:
        return [self.shard_id, self.number, self.parent_hash, self.timestamp, self.proposer, self.state_root,
                self.transactions_root, self.receipts_root, self.outgoing_receipts_root, self.deliveries_root,
                self.validator_set_hash, self.gas_limit, self.gas_used, self.extra_data]

    @cached_property
    def hash(self) -> bytes:
        """keccak256 of the header without its seal."""
        return keccak256(rlp.encode(self._unsealed_fields(), sedes=_UNSEALED))

    def encode(self) -> bytes:
        return rlp.encode([*self._unsealed_fields(), self.seal], sedes=_HEADER)

    @classmethod
    def decode(cls, data: bytes) -> "Header":
        """A header from its encoding; InvalidBlock for anything that is not one."""
        try:
            return cls(*rlp.decode(data, sedes=_HEADER, strict=True))
        except (rlp.DecodingError, rlp.DeserializationError, TypeError) as err:
            raise InvalidBlock(f"malformed header: {err}") from None

    def with_seal(self, seal: bytes) -> "Header":
        return replace(self, seal=seal)


@dataclass(frozen=True)
class Block:
    """A header, its transactions (raw signed envelopes, in execution order) and the
    cross-shard receipts it delivers (encoded `cross_shard.Delivery`s, applied after the
    transactions, in order)."""

    header: Header
    transactions: tuple[bytes, ...] = field(default=())
    deliveries: tuple[bytes, ...] = field(default=())

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def number(self) -> int:
        return self.header.number

    def encode(self) -> bytes:
        """RLP [header, [raw transactions], [deliveries]], as blocks travel between nodes."""
        return rlp.encode([self.header.encode(), list(self.transactions), list(self.deliveries)])

    @classmethod
    def decode(cls, data: bytes) -> "Block":
        """A block from its encoding; InvalidBlock for anything that is not one."""
        try:
            items = rlp.decode(data, strict=True)
        except rlp.DecodingError as err:
            raise InvalidBlock(f"malformed block: {err}") from None
        if not (isinstance(items, list) and len(items) == 3 and isinstance(items[0], bytes)
                and all(isinstance(part, list) and all(isinstance(raw, bytes) for raw in part) for part in items[1:])):
            raise InvalidBlock("malformed block: expected the RLP list [header, [transactions], [deliveries]]")
        return cls(Header.decode(items[0]), tuple(items[1]), tuple(items[2]))


def transactions_root(tx_hashes: list[bytes]) -> bytes:
    """The Merkle root of a block's transaction hashes, in order."""
    return list_root(tx_hashes)


def genesis_header(*, shard_id: int, state_root: bytes, timestamp: int, gas_limit: int,
                   validator_set_hash: bytes, extra_data: bytes = b"") -> Header:
    """Block 0: no parent, no transactions."""
    return Header(shard_id=shard_id, number=0, parent_hash=EMPTY, timestamp=timestamp, proposer=bytes(20),
                  state_root=state_root, transactions_root=EMPTY, receipts_root=EMPTY,
                  outgoing_receipts_root=EMPTY, deliveries_root=EMPTY, validator_set_hash=validator_set_hash,
                  gas_limit=gas_limit, gas_used=0, extra_data=extra_data)


def validator_set_hash(validators: list[bytes]) -> bytes:
    """The hash of the validator set that signs blocks (empty for the instant engine)."""
    return keccak256(b"".join(validators))

