"""The world state the VM reads and writes: the `StateView` protocol and a memory version.

The VM never writes a `StateView` while a transaction runs; all changes live in a
journal (`ewasm_runtime.journal`) and are written back with the setters below only
when the transaction is over, in a deterministic order. So a backing store (the
chain's lmdb) needs nothing but these nine methods.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

ZERO32 = bytes(32)


@runtime_checkable
class StateView(Protocol):
    """Accounts by 20-byte address; storage words are 32 raw bytes (zero when unset)."""

    def get_balance(self, address: bytes) -> int: ...

    def get_nonce(self, address: bytes) -> int: ...

    def get_code(self, address: bytes) -> bytes: ...

    def get_storage(self, address: bytes, key: bytes) -> bytes: ...

    def set_balance(self, address: bytes, balance: int) -> None: ...

    def set_nonce(self, address: bytes, nonce: int) -> None: ...

    def set_code(self, address: bytes, code: bytes) -> None: ...

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        """Store a word; an all-zero value removes the key."""

    def delete_account(self, address: bytes) -> None:
        """Remove the account with its code and all its storage."""


@dataclass
class Account:
    nonce: int = 0
    balance: int = 0
    code: bytes = b""
    storage: dict[bytes, bytes] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return self.nonce == 0 and self.balance == 0 and not self.code


class MemoryState:
    """A `StateView` in a dict: for tests, tools and `ewasm run`."""

    def __init__(self, accounts: dict[bytes, Account] | None = None):
        self.accounts: dict[bytes, Account] = accounts if accounts is not None else {}

    # -- reads
    def get_balance(self, address: bytes) -> int:
        acct = self.accounts.get(address)
        return acct.balance if acct else 0

    def get_nonce(self, address: bytes) -> int:
        acct = self.accounts.get(address)
        return acct.nonce if acct else 0

    def get_code(self, address: bytes) -> bytes:
        acct = self.accounts.get(address)
        return acct.code if acct else b""

    def get_storage(self, address: bytes, key: bytes) -> bytes:
        acct = self.accounts.get(address)
        return acct.storage.get(key, ZERO32) if acct else ZERO32

    # -- writes
    def _account(self, address: bytes) -> Account:
        acct = self.accounts.get(address)
        if acct is None:
            acct = self.accounts[address] = Account()
        return acct

    def set_balance(self, address: bytes, balance: int) -> None:
        self._account(address).balance = balance

    def set_nonce(self, address: bytes, nonce: int) -> None:
        self._account(address).nonce = nonce

    def set_code(self, address: bytes, code: bytes) -> None:
        self._account(address).code = bytes(code)

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        storage = self._account(address).storage
        if any(value):
            storage[key] = bytes(value)
        else:
            storage.pop(key, None)

    def delete_account(self, address: bytes) -> None:
        self.accounts.pop(address, None)

    # -- conveniences
    def put(self, address: bytes, *, balance: int = 0, nonce: int = 0, code: bytes = b"",
            storage: dict[bytes, bytes] | None = None) -> None:
        """Create or replace an account in one call (tests, genesis, state tests)."""
        self.accounts[address] = Account(nonce, balance, bytes(code), dict(storage or {}))

    def to_json(self) -> dict:
        """The post-state format of `ewasm statetest`: hex address -> account."""
        return {
            "0x" + addr.hex(): {
                "balance": hex(acct.balance),
                "nonce": hex(acct.nonce),
                "code": "0x" + acct.code.hex(),
                "storage": {"0x" + k.hex(): "0x" + v.hex() for k, v in sorted(acct.storage.items())},
            }
            for addr, acct in sorted(self.accounts.items())
        }

    @classmethod
    def from_json(cls, data: dict) -> "MemoryState":
        """Read the format `to_json` writes (also the `pre` section of a state test)."""
        state = cls()
        for addr, acct in data.items():
            storage = {}
            for k, v in (acct.get("storage") or {}).items():
                word = parse_int(v).to_bytes(32, "big")
                if any(word):
                    storage[parse_int(k).to_bytes(32, "big")] = word
            state.put(
                parse_address(addr),
                balance=parse_int(acct.get("balance", 0)),
                nonce=parse_int(acct.get("nonce", 0)),
                code=parse_hex(acct.get("code", "")),
                storage=storage,
            )
        return state


class JsonFileState(MemoryState):
    """A `MemoryState` loaded from and saved to one JSON file (for `ewasm run --state`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        loaded = MemoryState.from_json(json.loads(self.path.read_text())) if self.path.exists() else MemoryState()
        super().__init__(loaded.accounts)

    def save(self) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def parse_hex(text) -> bytes:
    """Bytes from a hex string with or without 0x (state-test JSON)."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    text = str(text).strip()
    if text.startswith(("0x", "0X")):
        text = text[2:]
    if len(text) % 2:
        text = "0" + text
    return bytes.fromhex(text)


def parse_int(value) -> int:
    """An int from a JSON number, a decimal string or a 0x hex string."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.startswith(("0x", "0X")):
        return int(text[2:] or "0", 16)
    return int(text or "0")


def parse_address(text) -> bytes:
    raw = parse_hex(text)
    if len(raw) > 20:
        raise ValueError(f"address too long: {text}")
    return raw.rjust(20, b"\0")
