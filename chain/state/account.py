"""Accounts and the keys state entries are stored and committed under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chain.core.hashing import EMPTY_CODE_HASH

ZERO_WORD = bytes(32)


@dataclass(frozen=True)
class Account:
    """An account's nonce, balance (wei) and code hash."""

    nonce: int = 0
    balance: int = 0
    code_hash: bytes = EMPTY_CODE_HASH

    def encode(self) -> bytes:
        """Fixed layout: nonce (8 bytes) || balance (32) || code hash (32), big-endian."""
        return self.nonce.to_bytes(8, "big") + self.balance.to_bytes(32, "big") + self.code_hash

    @classmethod
    def decode(cls, data: bytes) -> "Account":
        return cls(int.from_bytes(data[0:8], "big"), int.from_bytes(data[8:40], "big"), bytes(data[40:72]))

    @property
    def is_empty(self) -> bool:
        """Nothing worth storing (EIP-161's notion): deleting it changes nothing."""
        return self.nonce == 0 and self.balance == 0 and self.code_hash == EMPTY_CODE_HASH


EMPTY_ACCOUNT = Account()


def account_key(address: bytes) -> bytes:
    """The state-commitment key of an account."""
    return b"a" + address


def storage_key(address: bytes, slot: bytes) -> bytes:
    """The state-commitment key of a storage slot."""
    return b"s" + address + slot


class StateReader(Protocol):
    """Read access to committed flat state (a snapshot)."""

    def get_account(self, address: bytes) -> Account: ...

    def get_storage(self, address: bytes, slot: bytes) -> bytes: ...

    def get_code_by_hash(self, code_hash: bytes) -> bytes: ...

    def storage_slots(self, address: bytes) -> list[bytes]:
        """Every slot the account has in committed storage."""
