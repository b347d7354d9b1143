"""A transaction's view of the state: reads fall through to a `StateView`, writes are
journaled so that any call frame can be undone (`snapshot` / `revert`), and `commit`
writes the surviving changes back in a deterministic order.

Besides accounts and storage the journal carries what EVM semantics revert together
with a frame: logs, cross-shard receipts sent, the refund counter, self-destructed and
touched accounts.
"""

from __future__ import annotations

from ewasm_runtime.message import Log, SentReceipt
from ewasm_runtime.state import ZERO32, StateView

_MISSING = object()


class JournaledState:
    __slots__ = (
        "state", "_balance", "_nonce", "_code", "_storage", "_reads", "_wiped",
        "_journal", "logs", "receipts", "refund", "destroyed", "touched",
    )

    def __init__(self, state: StateView):
        self.state = state
        self._balance: dict[bytes, int] = {}
        self._nonce: dict[bytes, int] = {}
        self._code: dict[bytes, bytes] = {}
        self._storage: dict[tuple[bytes, bytes], bytes] = {}  # writes of this transaction
        self._reads: dict[tuple[bytes, bytes], bytes] = {}  # cache of the backing state (never changes)
        self._wiped: set[bytes] = set()  # accounts created here: backing storage is invisible
        self._journal: list[tuple] = []
        self.logs: list[Log] = []
        self.receipts: list[SentReceipt] = []
        self.refund = 0
        self.destroyed: set[bytes] = set()
        self.touched: set[bytes] = set()

    # -- snapshots
    def snapshot(self) -> tuple[int, int, int, int]:
        return (len(self._journal), len(self.logs), self.refund, len(self.receipts))

    def revert(self, snap: tuple[int, int, int, int]) -> None:
        """Undo every change made since `snap` was taken."""
        mark, nlogs, refund, nreceipts = snap
        journal = self._journal
        while len(journal) > mark:
            table, key, old = journal.pop()
            if old is _MISSING:
                if isinstance(table, set):
                    table.discard(key)
                else:
                    del table[key]
            elif isinstance(table, set):
                table.add(key)
            else:
                table[key] = old
        del self.logs[nlogs:]
        del self.receipts[nreceipts:]
        self.refund = refund

    def _set(self, table: dict, key, value) -> None:
        self._journal.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def _add(self, table: set, key) -> None:
        if key not in table:
            self._journal.append((table, key, _MISSING))
            table.add(key)

    # -- accounts
    def get_balance(self, address: bytes) -> int:
        v = self._balance.get(address)
        return self.state.get_balance(address) if v is None else v

    def get_nonce(self, address: bytes) -> int:
        v = self._nonce.get(address)
        return self.state.get_nonce(address) if v is None else v

    def get_code(self, address: bytes) -> bytes:
        v = self._code.get(address)
        if v is None:
            v = b"" if address in self._wiped else self.state.get_code(address)
        return v

    def set_balance(self, address: bytes, value: int) -> None:
        self._set(self._balance, address, value)

    def set_nonce(self, address: bytes, value: int) -> None:
        self._set(self._nonce, address, value)

    def set_code(self, address: bytes, code: bytes) -> None:
        self._set(self._code, address, bytes(code))

    def add_balance(self, address: bytes, amount: int) -> None:
        self.set_balance(address, self.get_balance(address) + amount)

    def transfer(self, sender: bytes, recipient: bytes, value: int) -> None:
        """Move `value` (the caller has checked the balance); touches the recipient."""
        self.touch(recipient)
        if value:
            self.set_balance(sender, self.get_balance(sender) - value)
            self.set_balance(recipient, self.get_balance(recipient) + value)

    def is_empty(self, address: bytes) -> bool:
        """EIP-161 emptiness: no nonce, no balance, no code."""
        return self.get_nonce(address) == 0 and self.get_balance(address) == 0 and not self.get_code(address)

    def touch(self, address: bytes) -> None:
        self._add(self.touched, address)

    def create_account(self, address: bytes) -> None:
        """Start a fresh contract account: nonce 1 (EIP-161), no code, no storage."""
        self._add(self._wiped, address)
        self.set_balance(address, self.get_balance(address))  # a balance sent ahead survives
        self.set_nonce(address, 1)
        self.set_code(address, b"")
        self.touch(address)

    def destroy(self, address: bytes) -> bool:
        """Mark for deletion at the end of the transaction; True the first time."""
        if address in self.destroyed:
            return False
        self._add(self.destroyed, address)
        return True

    # -- storage
    def get_storage(self, address: bytes, key: bytes) -> bytes:
        k = (address, key)
        v = self._storage.get(k)
        if v is not None:
            return v
        if address in self._wiped:
            return ZERO32
        v = self._reads.get(k)
        if v is None:
            v = self._reads[k] = self.state.get_storage(address, key)
        return v

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        self._set(self._storage, (address, key), value)

    # -- logs and refunds
    def add_log(self, log: Log) -> None:
        self.logs.append(log)

    def add_receipt(self, receipt: SentReceipt) -> None:
        self.receipts.append(receipt)

    def add_refund(self, amount: int) -> None:
        self.refund += amount

    # -- the end of a transaction
    def commit(self) -> None:
        """Write all surviving changes to the backing state, sorted for determinism.

        Self-destructed accounts go away; so do touched accounts left empty (EIP-161).
        """
        state = self.state
        destroyed = self.destroyed
        if self._wiped:
            for addr in sorted(self._wiped - destroyed):
                state.delete_account(addr)
        _write_sorted(self._nonce, destroyed, state.set_nonce)
        _write_sorted(self._balance, destroyed, state.set_balance)
        _write_sorted(self._code, destroyed, state.set_code)
        storage = self._storage
        if storage:
            set_storage = state.set_storage
            items = sorted(storage.items()) if len(storage) > 1 else storage.items()
            for (addr, key), value in items:
                if addr not in destroyed:
                    set_storage(addr, key, value)
        if destroyed:
            for addr in sorted(destroyed):
                state.delete_account(addr)
        balance, nonce = self._balance, self._nonce
        touched = self.touched - destroyed if destroyed else self.touched
        for addr in sorted(touched) if len(touched) > 1 else touched:
            # A non-zero balance or nonce written above is what the state now holds.
            if balance.get(addr) or nonce.get(addr):
                continue
            # code first: most touched accounts that are not written are contracts
            if not state.get_code(addr) and state.get_balance(addr) == 0 and state.get_nonce(addr) == 0:
                state.delete_account(addr)


def _write_sorted(table: dict, destroyed: set, write) -> None:
    """Write `table`'s entries in key order (determinism), skipping destroyed accounts."""
    if not table:
        return
    items = sorted(table.items()) if len(table) > 1 else table.items()
    if not destroyed:
        for addr, value in items:
            write(addr, value)
        return
    for addr, value in items:
        if addr not in destroyed:
            write(addr, value)
