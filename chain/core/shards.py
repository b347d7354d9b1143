"""Shards: the address space split by the first byte of the address.

With `"shards": {"count": N}` in the spec, address a lives on shard a[0] × N // 256: N
equal ranges of the first byte (as equal as 256 / N allows). Each shard is its own
chain, with its own blocks and state. Precompile and system addresses, those below
2^20, exist on every shard, and any shard's transactions may name them in their scope.

A transaction belongs to the shard of its sender, and its scope must lie inside that
shard (system addresses aside). A transaction that declares no scope, (b"",), may touch
its sender's whole shard: `execution_scope` gives the VM the prefixes that say so.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_LIMIT = 1 << 20  # addresses below it exist on every shard
MAX_SHARDS = 256  # one first byte each, at most
_SYSTEM_PREFIXES = tuple(bytes(17) + bytes((b,)) for b in range(SYSTEM_LIMIT >> 16))  # exactly the system range


def is_system(address: bytes) -> bool:
    return int.from_bytes(address, "big") < SYSTEM_LIMIT


def is_system_prefix(prefix: bytes) -> bool:
    """Whether every address that starts with `prefix` is a system address."""
    return len(prefix) >= 18 and not any(prefix[:17]) and prefix[17] < SYSTEM_LIMIT >> 16


@dataclass(frozen=True)
class ShardLayout:
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"a chain has 1 to {MAX_SHARDS} shards, not {self.count}")

    def shard_of(self, address: bytes) -> int:
        return address[0] * self.count // 256 if address else 0

    def first_bytes(self, shard: int) -> range:
        """The first bytes of the addresses on `shard`."""
        return range(-(-shard * 256 // self.count), -(-(shard + 1) * 256 // self.count))

    def holds(self, shard: int, address: bytes) -> bool:
        """Whether `address` exists on `shard`: its own accounts and the system ones."""
        return self.count == 1 or is_system(address) or self.shard_of(address) == shard

    def prefix_inside(self, prefix: bytes, shard: int) -> bool:
        """Whether every address that starts with `prefix` exists on `shard`."""
        if self.count == 1 or is_system_prefix(prefix):
            return True
        return bool(prefix) and self.shard_of(prefix) == shard

    def home_scope(self, shard: int) -> tuple[bytes, ...]:
        """The prefixes of exactly the addresses on `shard`: its first bytes, and the
        system range (already inside shard 0's first byte)."""
        if self.count == 1:
            return (b"",)
        own = tuple(bytes((b,)) for b in self.first_bytes(shard))
        return own if 0 in self.first_bytes(shard) else own + _SYSTEM_PREFIXES

    def view(self, shard: int) -> "ShardView":
        return ShardView(self, shard)

    def execution_scope(self, scope: tuple[bytes, ...], shard: int) -> tuple[bytes, ...] | None:
        """The scope the VM enforces for a transaction of `shard`: None (anything) for an
        undeclared scope on an unsharded chain, the whole shard on a sharded one."""
        if scope != (b"",):
            return scope
        return None if self.count == 1 else self.home_scope(shard)


@dataclass(frozen=True)
class ShardView:
    """One shard's rules as the VM asks for them (ewasm_runtime's ShardRules)."""

    layout: ShardLayout
    shard_id: int

    def holds(self, address: bytes) -> bool:
        return self.layout.holds(self.shard_id, address)

    def shard_of(self, address: bytes) -> int:
        return -1 if is_system(address) and self.layout.count > 1 else self.layout.shard_of(address)

    def destination(self, to: bytes, requested: int) -> int | None:
        """Where a receipt for `to` goes: `requested` (-1: the shard of `to`), which must
        be a shard `to` exists on; a system address exists on all, so it needs one named."""
        if requested == -1:
            return None if is_system(to) and self.layout.count > 1 else self.layout.shard_of(to)
        return requested if 0 <= requested < self.layout.count and self.layout.holds(requested, to) else None
