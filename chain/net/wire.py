"""The messages nodes exchange once a channel is up, and their msgpack encoding.

A message is the msgpack array [kind, field, ...]. Each kind has a size cap, and
decoding checks every field's type and range, so that whatever a peer sends ends either
as one of the message dataclasses below or as a WireError saying what was wrong; a
peer that sends one is disconnected (transport.py). Blocks and transactions travel in
their own encodings (RLP), which their own decoders check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Union

import msgpack


class WireError(ValueError):
    """Bytes that are not a valid message."""


class Kind(enum.IntEnum):
    STATUS = 1
    TRANSACTIONS = 2
    NEW_BLOCK = 3
    GET_BLOCKS = 4
    BLOCKS = 5
    CONSENSUS = 6
    DISCONNECT = 7


MAX_TRANSACTIONS = 1024  # in one TRANSACTIONS message
MAX_BLOCKS = 64  # asked for or sent in one message
MAX_REASON = 200  # characters of a DISCONNECT reason

# The largest encoding of each kind, in bytes.
SIZE_CAPS = {
    Kind.STATUS: 128,
    Kind.TRANSACTIONS: 4 << 20,
    Kind.NEW_BLOCK: 16 << 20,
    Kind.GET_BLOCKS: 64,
    Kind.BLOCKS: 32 << 20,
    Kind.CONSENSUS: 1 << 20,
    Kind.DISCONNECT: 512,
}
MAX_MESSAGE = max(SIZE_CAPS.values())


@dataclass(frozen=True)
class Status:
    """A peer's head, sent first and after each block it commits."""

    head_number: int
    head_hash: bytes


@dataclass(frozen=True)
class Transactions:
    """Raw signed transactions, gossiped."""

    raws: tuple[bytes, ...]


@dataclass(frozen=True)
class NewBlock:
    """An encoded block (chain.core.blocks.Block.encode), announced."""

    block: bytes


@dataclass(frozen=True)
class GetBlocks:
    """A request for blocks first .. first+count-1."""

    first: int
    count: int


@dataclass(frozen=True)
class Blocks:
    """The answer to GetBlocks: encoded blocks, in order, perhaps fewer than asked for."""

    blocks: tuple[bytes, ...]


@dataclass(frozen=True)
class Consensus:
    """An engine's message, opaque to the transport."""

    payload: bytes


@dataclass(frozen=True)
class Disconnect:
    """Why the sender closes the connection."""

    reason: str


Message = Union[Status, Transactions, NewBlock, GetBlocks, Blocks, Consensus, Disconnect]
_KIND_OF = {Status: Kind.STATUS, Transactions: Kind.TRANSACTIONS, NewBlock: Kind.NEW_BLOCK,
            GetBlocks: Kind.GET_BLOCKS, Blocks: Kind.BLOCKS, Consensus: Kind.CONSENSUS, Disconnect: Kind.DISCONNECT}


def kind_of(message: Message) -> Kind:
    return _KIND_OF[type(message)]


def encode(message: Message) -> bytes:
    """The message's bytes; WireError if it exceeds its kind's cap (a bug of ours)."""
    kind = kind_of(message)
    fields = [getattr(message, name) for name in message.__dataclass_fields__]
    data = msgpack.packb([int(kind), *[list(f) if isinstance(f, tuple) else f for f in fields]], use_bin_type=True)
    if len(data) > SIZE_CAPS[kind]:
        raise WireError(f"{kind.name} of {len(data)} bytes exceeds its cap of {SIZE_CAPS[kind]}")
    return data


def decode(data: bytes) -> Message:
    """The message in `data`; WireError saying what is wrong otherwise."""
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message of {len(data)} bytes exceeds the largest cap ({MAX_MESSAGE})")
    try:
        items = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as err:  # msgpack raises several exception types for malformed input
        raise WireError(f"not msgpack: {type(err).__name__}: {err}") from None
    if not isinstance(items, list) or not items or type(items[0]) is not int:
        raise WireError("a message is an array [kind, fields...]")
    try:
        kind = Kind(items[0])
    except ValueError:
        raise WireError(f"unknown message kind {items[0]}") from None
    if len(data) > SIZE_CAPS[kind]:
        raise WireError(f"{kind.name} of {len(data)} bytes exceeds its cap of {SIZE_CAPS[kind]}")
    return _DECODERS[kind](items[1:])


def _expect(fields: list, count: int, kind: Kind) -> list:
    if len(fields) != count:
        raise WireError(f"{kind.name} has {count} fields, got {len(fields)}")
    return fields


def _uint(value: Any, name: str, bits: int = 64) -> int:
    if type(value) is not int or not 0 <= value < 1 << bits:
        raise WireError(f"{name}: expected an unsigned {bits}-bit integer")
    return value


def _bytes(value: Any, name: str, length: int | None = None) -> bytes:
    if not isinstance(value, bytes) or (length is not None and len(value) != length):
        raise WireError(f"{name}: expected {'bytes' if length is None else f'{length} bytes'}")
    return value


def _byte_list(value: Any, name: str, limit: int) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > limit:
        raise WireError(f"{name}: expected a list of at most {limit} byte strings")
    return tuple(_bytes(item, f"{name}[{i}]") for i, item in enumerate(value))


def _status(fields: list) -> Status:
    number, head = _expect(fields, 2, Kind.STATUS)
    return Status(_uint(number, "head_number"), _bytes(head, "head_hash", 32))


def _transactions(fields: list) -> Transactions:
    (raws,) = _expect(fields, 1, Kind.TRANSACTIONS)
    return Transactions(_byte_list(raws, "raws", MAX_TRANSACTIONS))


def _new_block(fields: list) -> NewBlock:
    (block,) = _expect(fields, 1, Kind.NEW_BLOCK)
    return NewBlock(_bytes(block, "block"))


def _get_blocks(fields: list) -> GetBlocks:
    first, count = _expect(fields, 2, Kind.GET_BLOCKS)
    count = _uint(count, "count")
    if not 1 <= count <= MAX_BLOCKS:
        raise WireError(f"count: expected 1 to {MAX_BLOCKS} blocks, got {count}")
    return GetBlocks(_uint(first, "first"), count)


def _blocks(fields: list) -> Blocks:
    (blocks,) = _expect(fields, 1, Kind.BLOCKS)
    return Blocks(_byte_list(blocks, "blocks", MAX_BLOCKS))


def _consensus(fields: list) -> Consensus:
    (payload,) = _expect(fields, 1, Kind.CONSENSUS)
    return Consensus(_bytes(payload, "payload"))


def _disconnect(fields: list) -> Disconnect:
    (reason,) = _expect(fields, 1, Kind.DISCONNECT)
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise WireError(f"reason: expected a string of at most {MAX_REASON} characters")
    return Disconnect(reason)


_DECODERS = {Kind.STATUS: _status, Kind.TRANSACTIONS: _transactions, Kind.NEW_BLOCK: _new_block,
             Kind.GET_BLOCKS: _get_blocks, Kind.BLOCKS: _blocks, Kind.CONSENSUS: _consensus,
             Kind.DISCONNECT: _disconnect}
