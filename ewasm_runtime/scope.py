"""Transaction scopes: the address prefixes a transaction declares it may touch.

A scope is a tuple of prefixes of 0-20 bytes (EIP-648 style); an empty prefix matches
every address and `None` means no scope at all. The chain's parallel executor relies on
it: transactions whose scopes do not overlap cannot conflict.
"""

from __future__ import annotations


def in_scope(address: bytes, scope: tuple[bytes, ...] | None) -> bool:
    if scope is None:
        return True
    return address.startswith(tuple(scope))  # bytes.startswith takes the prefixes at once, in C


def overlaps(a: tuple[bytes, ...] | None, b: tuple[bytes, ...] | None) -> bool:
    """Whether two scopes could touch a common address."""
    if a is None or b is None:
        return True
    return any(x.startswith(y) or y.startswith(x) for x in a for y in b)


class ScopeViolation(Exception):
    """Raised inside the VM when an account outside the scope is touched."""

    def __init__(self, address: bytes, reason: str = ""):
        # A violation a nested call ran into keeps the callee's reason, which names the
        # account actually outside the scope, not the (in-scope) callee.
        super().__init__(reason or f"account 0x{address.hex()} is outside the transaction's scope")
