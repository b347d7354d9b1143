"""lmdb storage: flat state, blocks, transactions, receipts and logs.

One lmdb environment, one named database per kind of record. Each block is committed in a
single write transaction (keys sorted, written with putmulti), including the head pointer,
so a node killed at any moment restarts at the last fully committed block: lmdb commits
are atomic and durable (fsync on commit).

Keys: numbers are 8-byte big-endian so that lmdb's byte order is numeric order.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass
from typing import Iterator

import lmdb
import msgpack
import rlp

from chain.core.blocks import Block, Header
from chain.core.hashing import EMPTY_CODE_HASH
from chain.core.receipts import Log, Receipt
from chain.state.account import EMPTY_ACCOUNT, ZERO_WORD, Account, account_key, storage_key
from chain.state.overlay import StateChanges

_DATABASES = ("meta", "accounts", "storage", "code", "headers", "block_hashes", "block_txs", "txs",
              "receipts", "logs", "consensus", "undo", "validator_sets", "deliveries", "outgoing")
_HEAD = b"head"
_FINALIZED = b"finalized"


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


class StoreError(RuntimeError):
    """The database is missing, not initialised, or inconsistent."""


class DatadirLocked(StoreError):
    """Another process has the datadir open for writing."""


LOCK_FILE = "node.lock"


class DatadirLock:
    """One writer per datadir: an advisory lock (flock) on `LOCK_FILE`, held while open.

    lmdb's own lock file does not exclude a second process, since lmdb is multi-process
    by design; two nodes writing one datadir would serve each other stale state. The
    kernel releases a flock when its process dies, SIGKILL included, so a crash never
    leaves a stale lock. The file holds the holder's PID, for the error message only.
    """

    def __init__(self, datadir: str):
        self.path = os.path.join(datadir, LOCK_FILE)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(self._fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StoreError(f"cannot lock {self.path}: {err.strerror}") from None
            raise DatadirLocked(f"datadir {datadir} is locked by process {self._holder()}") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def _holder(self) -> str:
        try:
            with open(self.path, encoding="ascii") as f:
                return f.read().strip() or "(unknown)"
        except (OSError, UnicodeDecodeError):
            return "(unknown)"

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1


@dataclass(frozen=True)
class TxLocation:
    """Where a transaction was included."""

    block_number: int
    index: int
    raw: bytes


class Snapshot:
    """A consistent read view of committed state (an lmdb read transaction)."""

    def __init__(self, store: "Store"):
        self._txn = store.env.begin(buffers=False)
        self._dbs = store.dbs
        head = self._txn.get(_HEAD, db=self._dbs["meta"])
        self.number = -1 if head is None else int.from_bytes(head, "big")

    def close(self) -> None:
        self._txn.abort()

    def __enter__(self) -> "Snapshot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_account(self, address: bytes) -> Account:
        data = self._txn.get(address, db=self._dbs["accounts"])
        return EMPTY_ACCOUNT if data is None else Account.decode(data)

    def get_storage(self, address: bytes, slot: bytes) -> bytes:
        return self._txn.get(address + slot, ZERO_WORD, db=self._dbs["storage"])

    def get_code_by_hash(self, code_hash: bytes) -> bytes:
        code = self._txn.get(code_hash, db=self._dbs["code"])
        if code is None:
            raise StoreError(f"code 0x{code_hash.hex()} is missing from the store")
        return code

    def storage_slots(self, address: bytes) -> list[bytes]:
        cursor = self._txn.cursor(db=self._dbs["storage"])
        slots = []
        if cursor.set_range(address):
            for key in cursor.iternext(values=False):
                if key[:20] != address:
                    break
                slots.append(key[20:])
        return slots

    def get_code(self, address: bytes) -> bytes:
        code_hash = self.get_account(address).code_hash
        return b"" if code_hash == EMPTY_CODE_HASH else self.get_code_by_hash(code_hash)

    def get_nonce(self, address: bytes) -> int:
        return self.get_account(address).nonce

    def get_balance(self, address: bytes) -> int:
        return self.get_account(address).balance

    def accounts(self) -> Iterator[tuple[bytes, Account]]:
        """Every account, by address (a supply audit reads them all)."""
        for address, data in self._txn.cursor(db=self._dbs["accounts"]):
            yield address, Account.decode(data)

    def commitment_entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every state entry as (commitment key, encoded value): rebuilds the tree."""
        for address, data in self._txn.cursor(db=self._dbs["accounts"]):
            yield account_key(address), data
        for key, value in self._txn.cursor(db=self._dbs["storage"]):
            yield storage_key(key[:20], key[20:]), value


class Store:
    """The node's database (a directory holding an lmdb environment)."""

    def __init__(self, path: str, *, map_size: int = 1 << 34, readonly: bool = False):
        """Open (creating) the database; a writer first takes the datadir lock, readers
        (the node's own helper processes) do not."""
        os.makedirs(path, exist_ok=True)
        self._lock = None if readonly else DatadirLock(path)
        try:
            self.env = lmdb.open(path, map_size=map_size, max_dbs=len(_DATABASES), readonly=readonly,
                                 max_readers=256)
        except lmdb.Error as err:
            self._release_lock()
            raise StoreError(f"cannot open the database in {path}: {err}") from None
        self.path = path
        self.dbs = {name: self.env.open_db(name.encode()) for name in _DATABASES}

    def close(self) -> None:
        self.env.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def snapshot(self) -> Snapshot:
        return Snapshot(self)

    # -- chain --------------------------------------------------------------------
    def head_number(self) -> int | None:
        """The number of the last committed block, None for an empty database."""
        with self.env.begin() as txn:
            data = txn.get(_HEAD, db=self.dbs["meta"])
        return None if data is None else int.from_bytes(data, "big")

    def put_consensus(self, key: bytes, value: bytes) -> None:
        """Keep an engine's record (its write-ahead log) durably, before it acts on it."""
        with self.env.begin(write=True) as txn:
            txn.put(key, value, db=self.dbs["consensus"])

    def get_consensus(self, key: bytes) -> bytes | None:
        with self.env.begin() as txn:
            return txn.get(key, db=self.dbs["consensus"])

    def validator_sets(self) -> dict[int, tuple[bytes, ...]]:
        """The validator sets recorded at epoch boundaries: block number -> the set that
        validates the blocks after it."""
        with self.env.begin() as txn:
            return {int.from_bytes(k, "big"): tuple(v[i:i + 20] for i in range(0, len(v), 20))
                    for k, v in txn.cursor(db=self.dbs["validator_sets"])}

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Keep a value that is not consensus (a relay's cursor), in one write."""
        with self.env.begin(write=True) as txn:
            txn.put(key, value, db=self.dbs["meta"])

    def get_meta(self, key: bytes) -> bytes | None:
        with self.env.begin() as txn:
            return txn.get(key, db=self.dbs["meta"])

    def header(self, number: int) -> Header | None:
        with self.env.begin() as txn:
            data = txn.get(_u64(number), db=self.dbs["headers"])
        return None if data is None else Header.decode(data)

    def block_number_of(self, block_hash: bytes) -> int | None:
        with self.env.begin() as txn:
            data = txn.get(block_hash, db=self.dbs["block_hashes"])
        return None if data is None else int.from_bytes(data, "big")

    def block(self, number: int) -> Block | None:
        """Block `number` as it was committed (header and raw transactions), in one read."""
        with self.env.begin() as txn:
            header = txn.get(_u64(number), db=self.dbs["headers"])
            if header is None:
                return None
            hashes = txn.get(_u64(number), db=self.dbs["block_txs"]) or b""
            raws = tuple(txn.get(hashes[i:i + 32], db=self.dbs["txs"])[12:] for i in range(0, len(hashes), 32))
            deliveries = txn.get(_u64(number), db=self.dbs["deliveries"])
        return Block(Header.decode(header), raws, tuple(rlp.decode(deliveries)) if deliveries else ())

    def outgoing(self, number: int) -> list[tuple[bytes, bytes]]:
        """Block `number`'s outgoing cross-shard receipts, in order, as (origin, encoded
        receipt): the origin is the hash of the transaction that sent it, or the id of the
        delivery it refunds or that sent it on."""
        with self.env.begin() as txn:
            data = txn.get(_u64(number), db=self.dbs["outgoing"])
        return [] if data is None else [(origin, receipt) for origin, receipt in rlp.decode(data)]

    def block_tx_hashes(self, number: int) -> list[bytes]:
        with self.env.begin() as txn:
            data = txn.get(_u64(number), db=self.dbs["block_txs"]) or b""
        return [data[i:i + 32] for i in range(0, len(data), 32)]

    def transaction(self, tx_hash: bytes) -> TxLocation | None:
        with self.env.begin() as txn:
            data = txn.get(tx_hash, db=self.dbs["txs"])
        if data is None:
            return None
        return TxLocation(int.from_bytes(data[0:8], "big"), int.from_bytes(data[8:12], "big"), data[12:])

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        with self.env.begin() as txn:
            data = txn.get(tx_hash, db=self.dbs["receipts"])
        return None if data is None else Receipt.decode(data)

    def logs_before(self, number: int, tx_index: int) -> int:
        """How many logs block `number`'s transactions before `tx_index` emitted (the
        block-wide index of that transaction's first log), without decoding a receipt."""
        n, count = _u64(number), 0
        with self.env.begin() as txn:
            cursor = txn.cursor(db=self.dbs["logs"])
            if cursor.set_range(n):
                for key, value in cursor:
                    if key[:8] != n or int.from_bytes(value[0:4], "big") >= tx_index:
                        break
                    count += 1
        return count

    def logs(self, first: int, last: int) -> Iterator[tuple[int, int, int, bytes, Log]]:
        """(block number, log index, tx index, tx hash, log) for blocks first..last."""
        with self.env.begin() as txn:
            cursor = txn.cursor(db=self.dbs["logs"])
            if not cursor.set_range(_u64(first)):
                return
            for key, value in cursor:
                number = int.from_bytes(key[0:8], "big")
                if number > last:
                    break
                log_index = int.from_bytes(key[8:12], "big")
                tx_index = int.from_bytes(value[0:4], "big")
                tx_hash = value[4:36]
                log = _decode_log(value[36:])
                yield number, log_index, tx_index, tx_hash, log

    # -- writing ------------------------------------------------------------------
    def commit_block(self, block: Block, tx_hashes: list[bytes], receipts: list[Receipt],
                     changes: StateChanges, extra_meta: dict[bytes, bytes] | None = None,
                     keep_undo: bool = False, validator_set: tuple[bytes, ...] | None = None,
                     outgoing: list[tuple[bytes, bytes]] = ()) -> None:
        """Write a block, its transactions, receipts, logs, deliveries, outgoing
        cross-shard receipts ((origin, encoding) pairs) and state changes atomically.

        With `keep_undo`, the values the block overwrites are kept too, in the same write,
        so that `revert_head` can take the block back while it is not final.
        `validator_set`: the set this block (an epoch boundary) fixes for the next epoch.
        """
        number = block.number
        head = self.head_number()
        expected = 0 if head is None else head + 1
        if number != expected:
            raise StoreError(f"block {number} does not follow the head {head}")
        n = _u64(number)
        accounts_put, accounts_del = [], []
        for address, account in changes.accounts.items():
            (accounts_del.append(address) if account is None else accounts_put.append((address, account.encode())))
        storage_put, storage_del = [], []
        for (address, slot), value in changes.storage.items():
            (storage_del.append(address + slot) if value is None else storage_put.append((address + slot, value)))
        txs_put = [(h, n + i.to_bytes(4, "big") + raw)
                   for i, (h, raw) in enumerate(zip(tx_hashes, block.transactions))]
        receipts_put = [(h, r.encode()) for h, r in zip(tx_hashes, receipts)]
        logs_put = []
        log_index = 0
        for tx_index, (h, receipt) in enumerate(zip(tx_hashes, receipts)):
            for log in receipt.logs:
                logs_put.append((n + log_index.to_bytes(4, "big"),
                                 tx_index.to_bytes(4, "big") + h + _encode_log(log)))
                log_index += 1
        meta = {_HEAD: n, **(extra_meta or {})}
        dbs = self.dbs
        with self.env.begin(write=True) as txn:
            if keep_undo:
                txn.put(n, _undo_record(txn, dbs, changes), db=dbs["undo"])
            for db_name, items in (("accounts", accounts_put), ("storage", storage_put),
                                   ("code", list(changes.code.items())), ("txs", txs_put),
                                   ("receipts", receipts_put), ("logs", logs_put),
                                   ("meta", list(meta.items()))):
                if items:
                    items.sort()
                    txn.cursor(db=dbs[db_name]).putmulti(items)
            for key in sorted(accounts_del):
                txn.delete(key, db=dbs["accounts"])
            for key in sorted(storage_del):
                txn.delete(key, db=dbs["storage"])
            txn.put(n, block.header.encode(), db=dbs["headers"])
            txn.put(block.hash, n, db=dbs["block_hashes"])
            txn.put(n, b"".join(tx_hashes), db=dbs["block_txs"])
            if validator_set is not None:
                txn.put(n, b"".join(validator_set), db=dbs["validator_sets"])
            if block.deliveries:
                txn.put(n, rlp.encode(list(block.deliveries)), db=dbs["deliveries"])
            if outgoing:
                txn.put(n, rlp.encode([list(pair) for pair in outgoing]), db=dbs["outgoing"])


    def revert_head(self) -> StateChanges:
        """Take back the head block: restore what it overwrote and drop its records, in one
        write. Returns the restored entries (old values, None where the block created
        them), for the commitment. StoreError if the head has no undo record (final)."""
        head = self.head_number()
        if not head:
            raise StoreError("there is no block to revert")
        n, dbs = _u64(head), self.dbs
        with self.env.begin(write=True) as txn:
            record = txn.get(n, db=dbs["undo"])
            if record is None:
                raise StoreError(f"block {head} is final: it has no undo record")
            restored = _apply_undo(txn, dbs, record)
            header = Header.decode(txn.get(n, db=dbs["headers"]))
            hashes = txn.get(n, db=dbs["block_txs"]) or b""
            for i in range(0, len(hashes), 32):
                txn.delete(hashes[i:i + 32], db=dbs["txs"])
                txn.delete(hashes[i:i + 32], db=dbs["receipts"])
            cursor = txn.cursor(db=dbs["logs"])
            if cursor.set_range(n):
                while cursor.key()[:8] == n and cursor.delete():
                    pass
            for db_name in ("headers", "block_txs", "undo", "validator_sets", "deliveries", "outgoing"):
                txn.delete(n, db=dbs[db_name])
            txn.delete(header.hash, db=dbs["block_hashes"])
            txn.put(_HEAD, _u64(head - 1), db=dbs["meta"])
        return restored

    def finalize(self, up_to: int) -> None:
        """Blocks up to `up_to` are final: their undo records go, and the final height is
        kept (one write)."""
        with self.env.begin(write=True) as txn:
            cursor = txn.cursor(db=self.dbs["undo"])
            if cursor.first():
                while int.from_bytes(cursor.key(), "big") <= up_to and cursor.delete():
                    pass
            txn.put(_FINALIZED, _u64(up_to), db=self.dbs["meta"])

    def finalized_number(self) -> int:
        """The final height kept by `finalize` (0 if none was)."""
        data = self.get_meta(_FINALIZED)
        return 0 if data is None else int.from_bytes(data, "big")


def _undo_record(txn, dbs, changes: StateChanges) -> bytes:
    """What `changes` overwrite, read before they are written: old accounts and slots
    (None where absent) and the code hashes the block adds."""
    accounts = [[address, txn.get(address, db=dbs["accounts"])] for address in sorted(changes.accounts)]
    storage = [[address + slot, txn.get(address + slot, db=dbs["storage"])]
               for address, slot in sorted(changes.storage)]
    new_code = [code_hash for code_hash in sorted(changes.code) if txn.get(code_hash, db=dbs["code"]) is None]
    return msgpack.packb([accounts, storage, new_code], use_bin_type=True)


def _apply_undo(txn, dbs, record: bytes) -> StateChanges:
    """Write an undo record's old values back; returns them as state changes."""
    accounts, storage, new_code = msgpack.unpackb(record, raw=False)
    restored = StateChanges()
    for address, old in accounts:
        if old is None:
            txn.delete(address, db=dbs["accounts"])
        else:
            txn.put(address, old, db=dbs["accounts"])
        restored.accounts[address] = None if old is None else Account.decode(old)
    for key, old in storage:
        if old is None:
            txn.delete(key, db=dbs["storage"])
        else:
            txn.put(key, old, db=dbs["storage"])
        restored.storage[(key[:20], key[20:])] = old
    for code_hash in new_code:
        txn.delete(code_hash, db=dbs["code"])
    return restored


def _encode_log(log: Log) -> bytes:
    return bytes((len(log.topics),)) + log.address + b"".join(log.topics) + log.data


def _decode_log(data: bytes) -> Log:
    count = data[0]
    address = data[1:21]
    topics = tuple(data[21 + 32 * i:53 + 32 * i] for i in range(count))
    return Log(address, topics, data[21 + 32 * count:])
