"""The transaction pool: pending transactions ordered by nonce per sender.

Admission checks what can be checked before a block (see transactions.validate) and
refuses duplicates and replays: a hash seen before, a nonce below the account's, or a
second transaction for a (sender, nonce) already pending. Future nonces wait in the pool
until the gap closes, up to a bound per sender so that one account cannot fill it.
Block building takes senders in arrival order and each sender's transactions in nonce
order, which keeps blocks deterministic given the arrival order.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator

from .params import ChainParams
from .transactions import AccountReader, InvalidTransaction, Transaction, validate


class DuplicateTransaction(InvalidTransaction):
    reason = "duplicate"


class PoolFull(InvalidTransaction):
    reason = "pool full"


@dataclass
class TransactionPool:
    """Pending transactions; not thread-safe (the node serialises access)."""

    params: ChainParams
    max_size: int = 100_000
    max_future_per_sender: int = 1024
    _by_sender: "OrderedDict[bytes, dict[int, Transaction]]" = field(default_factory=OrderedDict)
    _hashes: set[bytes] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._hashes

    def add(self, tx: Transaction, state: AccountReader) -> None:
        """Admit a transaction or raise InvalidTransaction saying why not."""
        if tx.hash in self._hashes:
            raise DuplicateTransaction(f"transaction 0x{tx.hash.hex()} is already pending")
        if len(self._hashes) >= self.max_size:
            raise PoolFull(f"the transaction pool is full ({self.max_size} pending)")
        validate(tx, self.params, state, allow_future_nonce=True)
        pending = self._by_sender.get(tx.sender, {})
        if tx.nonce in pending:
            raise DuplicateTransaction(
                f"sender 0x{tx.sender.hex()} already has a pending transaction with nonce {tx.nonce}")
        account_nonce = state.get_nonce(tx.sender)
        if tx.nonce >= account_nonce + self.max_future_per_sender:
            raise InvalidTransaction(
                f"nonce {tx.nonce} is too far ahead of the account nonce {account_nonce} "
                f"(at most {self.max_future_per_sender - 1} ahead)")
        self._by_sender.setdefault(tx.sender, pending)[tx.nonce] = tx
        self._hashes.add(tx.hash)

    def ready(self, state: AccountReader, gas_limit: int, max_count: int | None = None) -> list[Transaction]:
        """Transactions for the next block: per sender the run of consecutive nonces from
        the account's nonce, senders in arrival order, within the block gas limit."""
        chosen: list[Transaction] = []
        gas = 0
        for sender, pending in self._by_sender.items():
            nonce = state.get_nonce(sender)
            while nonce in pending:
                tx = pending[nonce]
                if gas + tx.gas_limit > gas_limit:
                    break
                if max_count is not None and len(chosen) >= max_count:
                    return chosen
                chosen.append(tx)
                gas += tx.gas_limit
                nonce += 1
        return chosen

    def next_nonce(self, sender: bytes, account_nonce: int) -> int:
        """The nonce after the sender's run of pending transactions (eth "pending" count)."""
        pending = self._by_sender.get(sender, {})
        nonce = account_nonce
        while nonce in pending:
            nonce += 1
        return nonce

    def remove(self, txs) -> None:
        """Drop transactions (included in a block, or found invalid)."""
        for tx in txs:
            pending = self._by_sender.get(tx.sender)
            if pending is not None and pending.get(tx.nonce) is tx:
                del pending[tx.nonce]
                if not pending:
                    del self._by_sender[tx.sender]
            self._hashes.discard(tx.hash)

    def prune(self, state: AccountReader) -> list[Transaction]:
        """Drop transactions whose nonce an included block has used up; returns them."""
        dropped = []
        for sender in list(self._by_sender):
            nonce = state.get_nonce(sender)
            stale = [tx for n, tx in self._by_sender[sender].items() if n < nonce]
            dropped.extend(stale)
        self.remove(dropped)
        return dropped

    def __iter__(self) -> Iterator[Transaction]:
        for pending in self._by_sender.values():
            yield from pending.values()
