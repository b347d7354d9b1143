from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chain.core.blocks import Block, Header
from chain.core.merkle import EMPTY
from chain.core.receipts import Log, Receipt
from chain.state.account import Account
from chain.state.overlay import BlockState, StateChanges
from chain.state.store import DatadirLocked, Store, StoreError

from chain_fixtures import REPO

A, B = b"\xaa" * 20, b"\xbb" * 20
SLOT = b"\x01" * 32


def genesis(number=0, parent=EMPTY):
    return Header(shard_id=0, number=number, parent_hash=parent, timestamp=1, proposer=bytes(20), state_root=EMPTY,
                  transactions_root=EMPTY, receipts_root=EMPTY, outgoing_receipts_root=EMPTY, deliveries_root=EMPTY,
                  validator_set_hash=EMPTY, gas_limit=10**7, gas_used=0)


def test_header_encoding_round_trips_and_the_hash_ignores_the_seal():
    header = genesis()
    assert Header.decode(header.encode()) == header
    sealed = header.with_seal(b"\x01" * 65)
    assert Header.decode(sealed.encode()).seal == b"\x01" * 65
    assert sealed.hash == header.hash


def test_a_committed_block_is_readable_with_its_state_transactions_receipts_and_logs(tmp_path):
    store = Store(str(tmp_path / "db"))
    changes = StateChanges(accounts={A: Account(1, 100)}, storage={(A, SLOT): b"\x07" * 32}, code={b"\x09" * 32: b"c"})
    receipt = Receipt(1, 21000, 21000, (Log(A, (b"\x01" * 32,), b"data"),), b"", b"", "", 5)
    block = Block(genesis(), (b"\x02raw",))
    store.commit_block(block, [b"\x0f" * 32], [receipt], changes)
    assert store.head_number() == 0
    assert store.header(0) == block.header and store.block_number_of(block.hash) == 0
    with store.snapshot() as snap:
        assert snap.get_account(A) == Account(1, 100)
        assert snap.get_storage(A, SLOT) == b"\x07" * 32
        assert snap.get_storage(B, SLOT) == bytes(32)
        assert snap.get_code_by_hash(b"\x09" * 32) == b"c"
        assert len(list(snap.commitment_entries())) == 2
    location = store.transaction(b"\x0f" * 32)
    assert (location.block_number, location.index, location.raw) == (0, 0, b"\x02raw")
    assert store.receipt(b"\x0f" * 32) == receipt
    assert list(store.logs(0, 0)) == [(0, 0, 0, b"\x0f" * 32, receipt.logs[0])]
    store.close()


def test_blocks_must_extend_the_head(tmp_path):
    store = Store(str(tmp_path / "db"))
    with pytest.raises(StoreError, match="does not follow"):
        store.commit_block(Block(genesis(number=3)), [], [], StateChanges())


def test_deletions_remove_entries_and_survive_reopening(tmp_path):
    path = str(tmp_path / "db")
    store = Store(path)
    store.commit_block(Block(genesis()), [], [], StateChanges(accounts={A: Account(0, 5)}, storage={(A, SLOT): b"\x01" * 32}))
    store.commit_block(Block(genesis(1, genesis().hash)), [], [], StateChanges(accounts={A: None}, storage={(A, SLOT): None}))
    store.close()
    store = Store(path)
    with store.snapshot() as snap:
        assert snap.get_account(A) == Account()
        assert list(snap.commitment_entries()) == []
    assert store.head_number() == 1


def test_block_state_reports_only_real_changes_and_deletes_emptied_entries(tmp_path):
    store = Store(str(tmp_path / "db"))
    store.commit_block(Block(genesis()), [], [], StateChanges(accounts={A: Account(0, 5)}, storage={(A, SLOT): b"\x01" * 32}))
    with store.snapshot() as snap:
        state = BlockState(snap)
        state.add_balance(A, 0)
        state.set_balance(A, 5)          # same value: no change
        state.set_storage(A, SLOT, bytes(32))  # zeroed: deleted
        state.add_balance(B, 9)
        state.set_code(B, b"\x00asm")
        changes = state.changes()
    assert set(changes.accounts) == {B}
    assert changes.storage == {(A, SLOT): None}
    assert list(changes.code.values()) == [b"\x00asm"]


def test_a_datadir_has_one_writer_and_the_refusal_names_the_holder(tmp_path):
    path = str(tmp_path / "db")
    store = Store(path)
    with pytest.raises(DatadirLocked, match=f"datadir {path} is locked by process {os.getpid()}$"):
        Store(path)
    # The node's own helper processes only read, and take no lock (lmdb allows one open per process).
    reader = subprocess.run([sys.executable, "-c", f"from chain.state.store import Store; Store({path!r}, readonly=True)"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert reader.returncode == 0, reader.stderr
    store.close()
    Store(path).close()  # closing released it
