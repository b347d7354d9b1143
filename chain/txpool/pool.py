"""The transaction pool: what waits for a block, and the policy that keeps it useful.

A sender's transactions are of two classes, as in geth's txpool:

- *pending*: runnable now, the consecutive nonces from the sender's account nonce;
- *queued*: waiting behind a nonce gap, so they cannot run until it closes.

Queued transactions cost nothing to send when fees are zero, so they are what a spammer
fills a pool with. They get their own small limits (`PoolLimits`): so many per sender,
so many in all, and a lifetime after which they are dropped. A queued transaction that
does not fit is refused at admission with its own error, so that its sender knows.
Pending transactions are not capped per sender while the pool has room: one key
streaming thousands of transfers is normal use. When the pool is full, room is made by
fee: queued transactions go first, whatever they pay, then the cheapest pending ones
(always the last of their sender's run, so that no run gets a gap). Queued or unpayable
transactions therefore never keep a runnable one out.

A transaction with the nonce of one already in the pool replaces it only if it pays
`price_bump` percent more in both fee cap and tip (geth's rule). Admission also refuses
duplicates and replays: a hash already known, or a nonce below the account's.

Block building takes senders in arrival order and each sender's pending run in nonce
order, which keeps blocks deterministic given the arrival order. After a block, `prune`
resynchronises the senders it touched with the state: used nonces leave, transactions
the sender can no longer pay for leave, and a run that lost a member is demoted behind
the gap.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from sortedcontainers import SortedList

from chain.core.params import ChainParams
from chain.tx.errors import InvalidTransaction
from chain.tx.transaction import Transaction
from chain.tx.validation import AccountReader, upfront_cost, validate
from chain.txpool.policy import (
    DuplicateTransaction,
    PoolFull,
    PoolLimits,
    QueueFull,
    ReplacementUnderpriced,
    SenderQueueFull,
    TipTooLow,
)


@dataclass(slots=True)
class PoolEntry:
    """A transaction in the pool, with what the policy ranks it by."""

    tx: Transaction
    tip: int  # effective tip per gas at the chain's base fee
    seq: int  # arrival order
    added: float  # clock time of admission

    @property
    def rank(self) -> tuple[int, int]:
        """Eviction order: cheapest first, and among equals the latest arrival first."""
        return (self.tip, -self.seq)


@dataclass
class SenderQueue:
    """One sender's transactions: the pending run `base, base+1, ...` and the queued rest."""

    sender: bytes
    base: int
    pending: dict[int, PoolEntry] = field(default_factory=dict)
    queued: dict[int, PoolEntry] = field(default_factory=dict)

    @property
    def pending_end(self) -> int:
        """The nonce a new runnable transaction of this sender must have."""
        return self.base + len(self.pending)

    @property
    def tail(self) -> PoolEntry | None:
        """The last transaction of the pending run: the only pending one eviction may take."""
        return self.pending.get(self.pending_end - 1) if self.pending else None

    def __len__(self) -> int:
        return len(self.pending) + len(self.queued)


class TransactionPool:
    """Pending and queued transactions under `PoolLimits`; not thread-safe (the node
    serialises access)."""

    def __init__(self, params: ChainParams, limits: PoolLimits | None = None, *,
                 clock: Callable[[], float] = time.monotonic):
        self.params = params
        self.limits = limits or PoolLimits()
        self.clock = clock
        self._senders: OrderedDict[bytes, SenderQueue] = OrderedDict()  # arrival order
        self._entries: dict[bytes, PoolEntry] = {}  # by transaction hash
        self._queued: dict[bytes, PoolEntry] = {}  # the queued ones, by hash
        # (rank, sender) of every sender's pending tail, for eviction. Kept lazily: a change
        # marks its sender dirty, and `_refresh_tails` catches up when eviction needs it.
        self._tails: SortedList = SortedList()
        self._tail_keys: dict[bytes, tuple] = {}
        self._dirty: set[bytes] = set()
        self._bytes = 0
        self._seq = 0

    # -- reading --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._entries

    def __iter__(self) -> Iterator[Transaction]:
        for queue in self._senders.values():
            yield from (entry.tx for entry in queue.pending.values())
            yield from (entry.tx for entry in queue.queued.values())

    def get(self, tx_hash: bytes) -> Transaction | None:
        entry = self._entries.get(tx_hash)
        return None if entry is None else entry.tx

    @property
    def pending_count(self) -> int:
        return len(self._entries) - len(self._queued)

    @property
    def queued_count(self) -> int:
        return len(self._queued)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def next_nonce(self, sender: bytes, account_nonce: int) -> int:
        """The nonce after the sender's pending run (eth "pending" transaction count)."""
        queue = self._senders.get(sender)
        if queue is None:
            return account_nonce
        if queue.base == account_nonce:
            return queue.pending_end
        nonce = account_nonce
        while nonce in queue.pending:
            nonce += 1
        return nonce

    def ready(self, state: AccountReader, gas_limit: int, max_count: int | None = None) -> list[Transaction]:
        """Transactions for the next block: per sender the pending run from the account's
        nonce, senders in arrival order, within the block gas limit."""
        chosen: list[Transaction] = []
        gas = 0
        for sender, queue in self._senders.items():
            if not queue.pending:
                continue
            nonce = state.get_nonce(sender)
            while nonce in queue.pending:
                tx = queue.pending[nonce].tx
                if gas + tx.gas_limit > gas_limit:
                    break
                if max_count is not None and len(chosen) >= max_count:
                    return chosen
                chosen.append(tx)
                gas += tx.gas_limit
                nonce += 1
        return chosen

    # -- admission ------------------------------------------------------------------
    def add(self, tx: Transaction, state: AccountReader) -> list[Transaction]:
        """Admit a transaction or raise InvalidTransaction saying why not; returns the
        transactions evicted to make room for it.

        Steps: refuse what is known, invalid or below the minimum tip; classify it against
        the sender's account nonce; replace, or check the queue limits; make room by fee
        when the pool is full; insert, promoting queued transactions whose gap it closes.
        """
        if tx.hash in self._entries:
            raise DuplicateTransaction(f"transaction 0x{tx.hash.hex()} is already in the pool")
        validate(tx, self.params, state, allow_future_nonce=True)
        entry = self._entry(tx)
        if entry.tip < self.limits.min_tip:
            raise TipTooLow(f"tip {entry.tip} wei per gas is below this pool's minimum of {self.limits.min_tip}")
        queue = self._sync(tx.sender, state.get_nonce(tx.sender))
        old = queue.pending.get(tx.nonce) or queue.queued.get(tx.nonce)
        if old is not None:
            self._check_replacement(old.tx, tx)
            runnable = tx.nonce in queue.pending
        else:
            runnable = tx.nonce == queue.pending_end
            if not runnable:
                self._check_queue_room(queue, entry)
        victims = self._make_room(entry, runnable, freed=old)
        for victim in victims:
            self._drop(victim)
        if old is not None:
            self._replace(queue, old, entry)
        else:
            self._insert(queue, entry, runnable)
        return [victim.tx for victim in victims]

    def _entry(self, tx: Transaction) -> PoolEntry:
        self._seq += 1
        base_fee = self.params.base_fee_per_gas
        tip = min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee)
        return PoolEntry(tx, tip, self._seq, self.clock())

    def _check_replacement(self, old: Transaction, new: Transaction) -> None:
        """geth's rule: both the fee cap and the tip rise, each by at least the bump."""
        bump = 100 + self.limits.price_bump
        need_fee = max(old.max_fee_per_gas * bump // 100, old.max_fee_per_gas + 1)
        need_tip = max(old.max_priority_fee_per_gas * bump // 100, old.max_priority_fee_per_gas + 1)
        if new.max_fee_per_gas < need_fee or new.max_priority_fee_per_gas < need_tip:
            raise ReplacementUnderpriced(
                f"replacing nonce {new.nonce} of 0x{new.sender.hex()} needs a max fee of at least {need_fee} and a "
                f"tip of at least {need_tip} ({self.limits.price_bump}% above the transaction in the pool), got "
                f"{new.max_fee_per_gas} and {new.max_priority_fee_per_gas}")

    def _check_queue_room(self, queue: SenderQueue, entry: PoolEntry) -> None:
        """A future-nonce transaction fits the sender's and the pool's queue, or is refused."""
        limits, tx = self.limits, entry.tx
        if len(queue.queued) >= limits.max_queued_per_sender:
            raise SenderQueueFull(
                f"sender 0x{tx.sender.hex()} already has {len(queue.queued)} queued transactions (the limit); "
                f"nonce {tx.nonce} waits behind a gap: send nonce {queue.pending_end} first")
        if len(self._queued) >= limits.max_queued:
            cheapest = min(self._queued.values(), key=lambda e: e.rank)
            if cheapest.tip >= entry.tip:
                raise QueueFull(
                    f"the pool's queue of future-nonce transactions is full ({limits.max_queued}); nonce {tx.nonce} "
                    f"waits behind a gap: send nonce {queue.pending_end} first, or pay a tip above {cheapest.tip}")

    def _make_room(self, entry: PoolEntry, runnable: bool, freed: PoolEntry | None) -> list[PoolEntry]:
        """The transactions to drop so that `entry` fits, cheapest first; PoolFull if the
        pool is full of transactions that pay at least as much.

        A queued newcomer may only displace cheaper queued transactions. A runnable one
        displaces queued transactions first, whatever they pay, then pending ones that pay
        less, each the last of its sender's run. A queue over its own limit (see
        `_check_queue_room`) gives up its cheapest member here too.
        """
        limits = self.limits
        count = len(self._entries) + 1 - (freed is not None)
        size = self._bytes + len(entry.tx.raw) - (len(freed.tx.raw) if freed else 0)
        queue_over = freed is None and not runnable and len(self._queued) >= limits.max_queued
        if count <= limits.max_transactions and size <= limits.max_bytes and not queue_over:
            return []
        victims: list[PoolEntry] = []
        sender = entry.tx.sender
        for candidate in self._eviction_order(entry.tip, runnable):
            if candidate.tx.sender == sender:
                continue
            victims.append(candidate)
            count -= 1
            size -= len(candidate.tx.raw)
            queue_over = queue_over and candidate.tx.hash not in self._queued
            if count <= limits.max_transactions and size <= limits.max_bytes and not queue_over:
                return victims
        if queue_over:
            raise QueueFull(
                f"the pool's queue of future-nonce transactions is full ({limits.max_queued}) of transactions that "
                f"pay a tip of at least {entry.tip}; send the missing nonces first")
        raise PoolFull(
            f"the transaction pool is full ({len(self._entries)} transactions, {self._bytes} bytes; limits "
            f"{limits.max_transactions} and {limits.max_bytes}) and nothing in it pays a tip below {entry.tip}")

    def _eviction_order(self, tip: float, runnable: bool) -> Iterator[PoolEntry]:
        """Candidates for eviction in the order they go (see `_make_room`), each paying
        less than `tip` (queued ones for a runnable newcomer: whatever they pay)."""
        queued = sorted(self._queued.values(), key=lambda e: e.rank)
        if not runnable:
            yield from (e for e in queued if e.tip < tip)
            return
        yield from queued
        self._refresh_tails()
        # Pending: the cheapest tail, then (taking a tail exposes the one before it)
        # merged with the remaining tails in rank order.
        exposed: list[PoolEntry] = []
        for rank, sender in self._tails:
            tail = self._senders[sender].tail
            while exposed and exposed[0].rank < rank:
                yield from self._take_exposed(exposed, tip)
            if tail.tip >= tip:
                break
            yield tail
            self._expose(exposed, tail)
        while exposed and exposed[0].tip < tip:
            yield from self._take_exposed(exposed, tip)

    def _expose(self, exposed: list[PoolEntry], taken: PoolEntry) -> None:
        """After `taken` (a tail) is chosen, the entry before it becomes a candidate."""
        queue = self._senders[taken.tx.sender]
        before = queue.pending.get(taken.tx.nonce - 1)
        if before is not None:
            exposed.append(before)
            exposed.sort(key=lambda e: e.rank)

    def _take_exposed(self, exposed: list[PoolEntry], tip: float) -> Iterator[PoolEntry]:
        candidate = exposed.pop(0)
        if candidate.tip < tip:
            yield candidate
            self._expose(exposed, candidate)

    # -- keeping in step with the chain ---------------------------------------------
    def restore(self, txs: Iterable[Transaction], state: AccountReader) -> list[Transaction]:
        """Put back the transactions of blocks that a fork switch reverted; returns those
        that could not go back.

        Call it on the state the switch reverted to, before any block of the other branch
        is pruned against: then a sender's restored transactions end where its pending
        run begins, and they go in ahead of it as they are. Otherwise the lower account
        nonce would demote the run behind a gap, where the queue limits drop all but a
        few. A transaction that does not join up so goes through `add` like any other.
        """
        by_sender: dict[bytes, list[Transaction]] = {}
        for tx in txs:
            if tx.hash not in self._entries:
                by_sender.setdefault(tx.sender, []).append(tx)
        refused: list[Transaction] = []
        for sender, mine in by_sender.items():
            mine.sort(key=lambda tx: tx.nonce)
            nonce, queue = state.get_nonce(sender), self._senders.get(sender)
            if queue is not None and [tx.nonce for tx in mine] == list(range(nonce, queue.base)):
                self._prepend(queue, mine)
                continue
            for tx in mine:
                try:
                    self.add(tx, state)
                except InvalidTransaction:
                    refused.append(tx)
        return refused + self._trim()

    def _trim(self) -> list[Transaction]:
        """Evict in the usual order (queued first, then the cheapest tails) until the pool
        is within its limits again; returns what left."""
        limits = self.limits
        count, size, queued = len(self._entries), self._bytes, len(self._queued)
        victims: list[PoolEntry] = []
        for candidate in self._eviction_order(math.inf, runnable=True):
            if count <= limits.max_transactions and size <= limits.max_bytes and queued <= limits.max_queued:
                break
            victims.append(candidate)
            count, size = count - 1, size - len(candidate.tx.raw)
            queued -= candidate.tx.hash in self._queued
        dropped = [victim.tx for victim in victims]
        for victim in victims:
            dropped.extend(self._drop(victim))
        return dropped

    def _prepend(self, queue: SenderQueue, txs: list[Transaction]) -> None:
        """Put `txs`, the nonces just below the pending run, in front of it."""
        entries = {tx.nonce: self._entry(tx) for tx in txs}
        for entry in entries.values():
            self._entries[entry.tx.hash] = entry
            self._bytes += len(entry.tx.raw)
        queue.pending = {**entries, **queue.pending}
        queue.base = txs[0].nonce
        self._promote(queue)
        self._tail_changed(queue)

    def remove(self, txs: Iterable[Transaction]) -> list[Transaction]:
        """Drop transactions (included in a block, or found invalid); returns the others
        that had to go with them (demoted behind a gap beyond the queue limits)."""
        lost: list[Transaction] = []
        for tx in txs:
            entry = self._entries.get(tx.hash)
            if entry is not None:
                lost.extend(self._drop(entry))
        return lost

    def prune(self, state: AccountReader, senders: Iterable[bytes] | None = None) -> list[Transaction]:
        """Resynchronise senders with the state (all when `senders` is None) and expire
        old queued transactions; returns what was dropped.

        For each sender: nonces the chain has used leave, transactions the sender can no
        longer pay for leave (what follows them is demoted), and queued transactions the
        new nonce made runnable are promoted.
        """
        dropped = self.expire()
        for sender in list(self._senders) if senders is None else dict.fromkeys(senders):
            if sender in self._senders:
                dropped.extend(self._sync_dropped(sender, state.get_nonce(sender)))
            if sender in self._senders:
                dropped.extend(self._drop_unpayable(self._senders[sender], state.get_balance(sender)))
        return dropped

    def _drop_unpayable(self, queue: SenderQueue, balance: int) -> list[Transaction]:
        """Drop the sender's transactions that cost more than `balance`, with what their
        gaps cost (see `_drop`)."""
        dropped: list[Transaction] = []
        entries = (*queue.pending.values(), *queue.queued.values())
        for entry in [e for e in entries if upfront_cost(e.tx) > balance]:
            if entry.tx.hash in self._entries:  # not lost already, demoted past the limits
                dropped.append(entry.tx)
                dropped.extend(self._drop(entry))
        return dropped

    def expire(self) -> list[Transaction]:
        """Drop queued transactions older than the queued lifetime; returns them."""
        deadline = self.clock() - self.limits.queued_lifetime
        old = [entry for entry in self._queued.values() if entry.added < deadline]
        for entry in old:
            self._drop(entry)
        return [entry.tx for entry in old]

    # -- the sender queues ----------------------------------------------------------
    def _sync(self, sender: bytes, account_nonce: int) -> SenderQueue:
        """The sender's queue, brought in line with its account nonce (a new, empty one,
        which `_insert` registers, for a sender without transactions here)."""
        self._sync_dropped(sender, account_nonce)
        return self._senders.get(sender) or SenderQueue(sender, base=account_nonce)

    def _sync_dropped(self, sender: bytes, account_nonce: int) -> list[Transaction]:
        """Drop the sender's used nonces and re-anchor its pending run at `account_nonce`."""
        queue = self._senders.get(sender)
        if queue is None or queue.base == account_nonce:
            return []
        dropped: list[Transaction] = []
        if account_nonce > queue.base:
            for nonce in [n for n in queue.queued if n < account_nonce]:
                dropped.append(self._forget(queue.queued.pop(nonce)))
            for nonce in range(queue.base, min(account_nonce, queue.pending_end)):
                dropped.append(self._forget(queue.pending.pop(nonce)))
        else:  # the run no longer starts at the account nonce: it waits behind a gap
            dropped.extend(self._demote(queue, list(queue.pending.values())))
        queue.base = account_nonce
        self._tail_changed(queue)
        self._promote(queue)
        self._discard_if_empty(queue)
        return dropped

    def _insert(self, queue: SenderQueue, entry: PoolEntry, runnable: bool) -> None:
        """Add a new entry; a runnable one may close a gap and promote queued ones."""
        tx = entry.tx
        self._senders.setdefault(tx.sender, queue)
        if runnable:
            queue.pending[tx.nonce] = entry
            self._tail_changed(queue)
        else:
            queue.queued[tx.nonce] = entry
            self._queued[tx.hash] = entry
        self._entries[tx.hash] = entry
        self._bytes += len(tx.raw)
        if runnable:
            self._promote(queue)

    def _replace(self, queue: SenderQueue, old: PoolEntry, new: PoolEntry) -> None:
        """Put `new` in the place of `old` (same sender and nonce, same class)."""
        nonce = new.tx.nonce
        if queue.queued.get(nonce) is old:
            queue.queued[nonce] = new
            self._queued[new.tx.hash] = new
        else:
            queue.pending[nonce] = new
            self._tail_changed(queue)
        self._forget(old)
        self._entries[new.tx.hash] = new
        self._bytes += len(new.tx.raw)

    def _promote(self, queue: SenderQueue) -> None:
        """Move queued transactions that the pending run now reaches into it."""
        if queue.pending_end not in queue.queued:
            return
        while queue.pending_end in queue.queued:
            entry = queue.queued.pop(queue.pending_end)
            del self._queued[entry.tx.hash]
            queue.pending[entry.tx.nonce] = entry
        self._tail_changed(queue)

    def _drop(self, entry: PoolEntry) -> list[Transaction]:
        """Remove one transaction. Taking a pending one from the middle of its run demotes
        the rest behind the gap; returns what the demotion could not keep."""
        tx = entry.tx
        queue = self._senders[tx.sender]
        lost: list[Transaction] = []
        if queue.queued.get(tx.nonce) is entry:
            del queue.queued[tx.nonce]
        else:
            if tx.nonce == queue.pending_end - 1:  # the tail: the run stays whole
                del queue.pending[tx.nonce]
            elif tx.nonce == queue.base:  # the first (included): the rest stays runnable
                del queue.pending[tx.nonce]
                queue.base += 1
            else:
                lost = self._demote(queue, [queue.pending[n] for n in range(tx.nonce + 1, queue.pending_end)])
                del queue.pending[tx.nonce]
            self._tail_changed(queue)
        self._forget(entry)
        self._discard_if_empty(queue)
        return lost

    def _demote(self, queue: SenderQueue, entries: list[PoolEntry]) -> list[Transaction]:
        """Move pending entries to the queue; those beyond its limits are dropped."""
        lost = []
        for entry in entries:
            del queue.pending[entry.tx.nonce]
            room = (len(queue.queued) < self.limits.max_queued_per_sender
                    and len(self._queued) < self.limits.max_queued)
            if room:
                queue.queued[entry.tx.nonce] = entry
                self._queued[entry.tx.hash] = entry
            else:
                lost.append(self._forget(entry))
        return lost

    def _forget(self, entry: PoolEntry) -> Transaction:
        """Remove an entry from the pool's indexes (not from its sender's queue)."""
        del self._entries[entry.tx.hash]
        self._queued.pop(entry.tx.hash, None)
        self._bytes -= len(entry.tx.raw)
        return entry.tx

    def _discard_if_empty(self, queue: SenderQueue) -> None:
        if not queue and self._senders.get(queue.sender) is queue:
            del self._senders[queue.sender]

    def _tail_changed(self, queue: SenderQueue) -> None:
        """The sender's pending run has changed: its tail's place in the index is stale."""
        self._dirty.add(queue.sender)
        if len(self._dirty) > 1024 + len(self._senders):  # senders that left: catch up, so memory stays bounded
            self._refresh_tails()

    def _refresh_tails(self) -> None:
        """Bring the tail index up to date for the senders changed since last time."""
        for sender in self._dirty:
            old = self._tail_keys.pop(sender, None)
            if old is not None:
                self._tails.remove(old)
            queue = self._senders.get(sender)
            tail = queue.tail if queue is not None else None
            if tail is not None:
                self._tail_keys[sender] = key = (tail.rank, sender)
                self._tails.add(key)
        self._dirty.clear()
