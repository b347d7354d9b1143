"""What goes into the VM (Message, Environment) and what comes out (ExecutionResult).

These are the public data types of `ewasm_runtime.execute`. Addresses are 20 raw bytes,
hashes and storage words 32 raw bytes, amounts plain Python ints.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Protocol


class Status(str, enum.Enum):
    """How a transaction (or one call frame) ended."""

    SUCCESS = "SUCCESS"
    REVERT = "REVERT"  # `revert` called: state undone, unused gas returned
    OUT_OF_GAS = "OUT_OF_GAS"
    OUT_OF_RANGE = "OUT_OF_RANGE"  # touched an account outside the transaction's scope
    STACK_LIMIT = "STACK_LIMIT"  # deterministic stack limit (or the native one) exceeded
    TRAP = "TRAP"  # any other trap: bad memory access, unreachable, static-mode write...
    INVALID_CODE = "INVALID_CODE"  # not a runnable ewasm module

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Log:
    """One event emitted through `log`."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes

    def __reduce__(self):
        # Pickled as a plain call: the slotted dataclass default goes through Python
        # __getstate__/__setstate__, twice as slow, and the chain's parallel executor
        # ships a log for most transactions.
        return Log, (self.address, self.topics, self.data)


@dataclass(frozen=True, slots=True)
class SentReceipt:
    """Value (and a payload) a frame sent to another shard through `shard.sendReceipt`.

    The VM only records it; the chain numbers it, commits it in the block header and
    delivers it. `source` is the frame that sent it (no contract can speak for another);
    `refund_to` is the account on this shard that gets the value back if it cannot land.
    """

    source: bytes
    dest_shard: int
    to: bytes
    value: int
    payload: bytes
    refund_to: bytes


class ShardRules(Protocol):
    """What the VM asks of a sharded chain (the chain's `ShardView`)."""

    shard_id: int

    def holds(self, address: bytes) -> bool:
        """Whether `address` exists on this shard."""

    def shard_of(self, address: bytes) -> int:
        """The shard `address` lives on; -1 for an address on every shard."""

    def destination(self, to: bytes, requested: int) -> int | None:
        """The shard a receipt for `to` goes to: `requested`, or with -1 the shard of
        `to`; None when that is no shard, or not one where `to` exists."""


@dataclass(frozen=True, slots=True)
class IncomingReceipt:
    """The receipt a transaction delivers, as its top frame reads it (`shard.getReceipt*`)."""

    id: bytes  # 14 bytes: source shard, block, index
    source_shard: int
    source: bytes
    sender: bytes  # the account the receipt would refund
    value: int
    is_refund: bool = False


@dataclass(slots=True)
class Message:
    """A transaction as the VM sees it (signature and nonce are the chain's business).

    `to=None` creates a contract from `data` (the init module). `scope` is a list of
    address prefixes (0-20 bytes each); None means unrestricted, an empty prefix matches
    everything.
    """

    sender: bytes
    to: bytes | None
    data: bytes = b""
    value: int = 0
    gas: int = 1_000_000
    gas_price: int = 0
    origin: bytes | None = None  # tx.origin; defaults to sender
    scope: tuple[bytes, ...] | None = None
    incoming: IncomingReceipt | None = None  # the cross-shard receipt this message delivers

    def __post_init__(self) -> None:
        _check_address("sender", self.sender)
        if self.to is not None:
            _check_address("to", self.to)
        if self.origin is not None:
            _check_address("origin", self.origin)
        if not (0 <= self.value < 1 << 128):
            raise ValueError("value must fit in 128 bits")
        if not (0 <= self.gas < 1 << 63):
            raise ValueError("gas must be a non-negative 63-bit integer")
        if not (0 <= self.gas_price < 1 << 128):
            raise ValueError("gas_price must fit in 128 bits")
        if self.scope is not None:
            self.scope = tuple(bytes(p) for p in self.scope)
            if any(len(p) > 20 for p in self.scope):
                raise ValueError("a scope prefix is at most 20 bytes")


@dataclass(slots=True)
class Environment:
    """The block a transaction runs in."""

    coinbase: bytes = bytes(20)
    number: int = 0
    timestamp: int = 0
    gas_limit: int = 10_000_000
    difficulty: int = 0
    # Hashes of recent blocks by number; only the 256 before `number` are visible.
    block_hashes: Mapping[int, bytes] = field(default_factory=dict)
    # The rules of the shard the block belongs to: None on a chain without shards,
    # where `shard.sendReceipt` traps and `shard.getShardId` answers 0.
    shards: ShardRules | None = None

    def __post_init__(self) -> None:
        _check_address("coinbase", self.coinbase)
        for name in ("number", "timestamp", "gas_limit"):
            if not (0 <= getattr(self, name) < 1 << 63):
                raise ValueError(f"{name} must be a non-negative 63-bit integer")
        if not (0 <= self.difficulty < 1 << 256):
            raise ValueError("difficulty must fit in 256 bits")

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number` if it is one of the 256 most recent, else None."""
        if not (self.number - 256 <= number < self.number) or number < 0:
            return None
        h = self.block_hashes.get(number)
        return h if h and any(h) else None


@dataclass(slots=True)
class ExecutionResult:
    """The outcome of one transaction.

    `gas_used` is what the sender pays for (intrinsic gas included, refund deducted);
    `gas_refund` is the refund that was applied. `logs` and `receipts` are empty unless
    SUCCESS.
    """

    status: Status
    gas_used: int
    gas_refund: int = 0
    output: bytes = b""
    logs: tuple[Log, ...] = ()
    created_address: bytes | None = None
    error: str = ""  # a short reason when status is not SUCCESS
    receipts: tuple[SentReceipt, ...] = ()  # cross-shard receipts sent (empty unless SUCCESS)

    @property
    def success(self) -> bool:
        return self.status is Status.SUCCESS

    def to_json(self) -> dict:
        """A JSON-friendly view (hex strings for bytes)."""
        return {
            "status": self.status.value,
            "gas_used": self.gas_used,
            "gas_refund": self.gas_refund,
            "output": self.output.hex(),
            "logs": [
                {"address": log.address.hex(), "topics": [t.hex() for t in log.topics], "data": log.data.hex()}
                for log in self.logs
            ],
            "created_address": self.created_address.hex() if self.created_address else None,
            "error": self.error,
        }


class InvalidTransaction(ValueError):
    """The transaction cannot be included at all (too little gas, unaffordable)."""


def _check_address(name: str, value) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 20:
        raise ValueError(f"{name} must be 20 bytes")
