"""The flat state a block executes against, and the writes it leaves.

The flat state is three maps: accounts (address -> nonce, balance, code hash), storage
((address, slot) -> 32-byte value, zero = absent) and code (code hash -> code). lmdb
holds it (store.py); during a block a `BlockState` overlays the committed state with the
block's writes, and `changes()` hands the difference to the commitment and the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.core.hashing import EMPTY_CODE_HASH, keccak256
from chain.state.account import EMPTY_ACCOUNT, ZERO_WORD, Account, StateReader, account_key, storage_key


class ConflictingWrites(RuntimeError):
    """Shares of a block that should touch disjoint state wrote the same entry."""


@dataclass
class StateChanges:
    """One block's writes: the new value of every changed entry (None = deleted)."""

    accounts: dict[bytes, Account | None] = field(default_factory=dict)
    storage: dict[tuple[bytes, bytes], bytes | None] = field(default_factory=dict)
    code: dict[bytes, bytes] = field(default_factory=dict)

    def commitment_updates(self) -> dict[bytes, bytes | None]:
        """The changed entries as state-commitment keys and encoded values."""
        updates: dict[bytes, bytes | None] = {}
        for address, account in self.accounts.items():
            updates[account_key(address)] = None if account is None else account.encode()
        for (address, slot), value in self.storage.items():
            updates[storage_key(address, slot)] = value
        return updates

    def merge(self, other: "StateChanges") -> None:
        """Add another worker's writes, which scopes keep disjoint from these.

        Two shares writing one entry would mean the scope rules have a hole: silently
        keeping either value would give a state root the serial executor never
        computes, so it raises instead. (Code is keyed by its hash: equal keys hold
        equal code.)
        """
        clash = self.accounts.keys() & other.accounts.keys() or self.storage.keys() & other.storage.keys()
        if clash:
            raise ConflictingWrites(f"two shares of a block wrote {sorted(clash)[0]!r}")
        self.accounts.update(other.accounts)
        self.storage.update(other.storage)
        self.code.update(other.code)


    def overwrite(self, later: "StateChanges") -> None:
        """Take the writes of a later stage of the same block (its deliveries), which
        ran on top of these and so supersede them."""
        self.accounts.update(later.accounts)
        self.storage.update(later.storage)
        self.code.update(later.code)


class ChangesReader:
    """The committed state with a block's writes so far on top: the base a later stage
    of the block (its deliveries) executes against."""

    def __init__(self, base: StateReader, changes: StateChanges):
        self._base, self._changes = base, changes

    def get_account(self, address: bytes) -> Account:
        account = self._changes.accounts.get(address, ...)
        if account is ...:
            return self._base.get_account(address)
        return EMPTY_ACCOUNT if account is None else account

    def get_storage(self, address: bytes, slot: bytes) -> bytes:
        value = self._changes.storage.get((address, slot), ...)
        if value is ...:
            return self._base.get_storage(address, slot)
        return ZERO_WORD if value is None else value

    def get_code_by_hash(self, code_hash: bytes) -> bytes:
        code = self._changes.code.get(code_hash)
        return self._base.get_code_by_hash(code_hash) if code is None else code

    def storage_slots(self, address: bytes) -> list[bytes]:
        slots = set(self._base.storage_slots(address))
        for (owner, slot), value in self._changes.storage.items():
            if owner == address:
                (slots.add if value is not None else slots.discard)(slot)
        return sorted(slots)


# The coinbase the VM sees. The VM pays each transaction's fee to its environment's
# coinbase; if that were the proposer, every transaction would write the proposer's
# balance and no two could run in parallel. So the VM pays this pot instead: its balance
# always reads 0 and every write to it adds to `BlockState.fees`, which the block
# executor credits to the proposer once, after the last transaction.
FEE_POT = b"\xff" * 18 + b"\xfe\xe0"


class BlockState:
    """The committed state plus this block's writes so far (the VM's `StateView`).

    Reads fall through to the snapshot; writes stay here until `changes()`.
    """

    def __init__(self, base: StateReader):
        self._base = base
        self.fees = 0
        self._accounts: dict[bytes, Account] = {}
        self._storage: dict[tuple[bytes, bytes], bytes] = {}
        self._code: dict[bytes, bytes] = {}
        self._dirty_accounts: set[bytes] = set()
        self._dirty_storage: set[tuple[bytes, bytes]] = set()
        self._new_code: set[bytes] = set()

    # -- accounts -----------------------------------------------------------------
    def get_account(self, address: bytes) -> Account:
        account = self._accounts.get(address)
        if account is None:
            account = self._accounts[address] = self._base.get_account(address)
        return account

    def set_account(self, address: bytes, account: Account) -> None:
        self._accounts[address] = account
        self._dirty_accounts.add(address)

    def get_nonce(self, address: bytes) -> int:
        return self.get_account(address).nonce

    def get_balance(self, address: bytes) -> int:
        if address == FEE_POT:
            return 0
        return self.get_account(address).balance

    def set_balance(self, address: bytes, balance: int) -> None:
        if address == FEE_POT:
            self.fees += balance
            return
        account = self.get_account(address)
        self.set_account(address, Account(account.nonce, balance, account.code_hash))

    def add_balance(self, address: bytes, amount: int) -> None:
        if amount:
            self.set_balance(address, self.get_balance(address) + amount)

    def set_nonce(self, address: bytes, nonce: int) -> None:
        account = self.get_account(address)
        self.set_account(address, Account(nonce, account.balance, account.code_hash))

    def increment_nonce(self, address: bytes) -> None:
        self.set_nonce(address, self.get_nonce(address) + 1)

    def delete_account(self, address: bytes) -> None:
        """Remove the account, its code reference and all its storage (the VM's
        self-destruct, and the fresh start of a created contract)."""
        if address == FEE_POT:
            return
        if self.get_account(address) != EMPTY_ACCOUNT:
            self.set_account(address, EMPTY_ACCOUNT)
        slots = set(self._base.storage_slots(address))
        slots.update(slot for (owner, slot) in self._dirty_storage if owner == address)
        for slot in slots:
            self.set_storage(address, slot, ZERO_WORD)

    # -- storage ------------------------------------------------------------------
    def get_storage(self, address: bytes, slot: bytes) -> bytes:
        key = (address, slot)
        value = self._storage.get(key)
        if value is None:
            value = self._storage[key] = self._base.get_storage(address, slot)
        return value

    def set_storage(self, address: bytes, slot: bytes, value: bytes) -> None:
        key = (address, slot)
        self._storage[key] = value
        self._dirty_storage.add(key)

    # -- code ---------------------------------------------------------------------
    def get_code(self, address: bytes) -> bytes:
        code_hash = self.get_account(address).code_hash
        if code_hash == EMPTY_CODE_HASH:
            return b""
        code = self._code.get(code_hash)
        if code is None:
            code = self._code[code_hash] = self._base.get_code_by_hash(code_hash)
        return code

    def get_code_hash(self, address: bytes) -> bytes:
        return self.get_account(address).code_hash

    def set_code(self, address: bytes, code: bytes) -> None:
        code_hash = keccak256(code) if code else EMPTY_CODE_HASH
        if code:
            self._code[code_hash] = code
        account = self.get_account(address)
        self.set_account(address, Account(account.nonce, account.balance, code_hash))
        if code:
            self._new_code.add(code_hash)

    # -- result -------------------------------------------------------------------
    def changes(self) -> StateChanges:
        """Every written entry whose value differs from the snapshot's."""
        result = StateChanges()
        for address in self._dirty_accounts:
            account = self._accounts[address]
            if account != self._base.get_account(address):
                result.accounts[address] = None if account.is_empty else account
        for key in self._dirty_storage:
            value = self._storage[key]
            if value != self._base.get_storage(*key):
                result.storage[key] = None if value == ZERO_WORD else value
        for code_hash in self._new_code:
            result.code[code_hash] = self._code[code_hash]
        return result
