"""The chain of one node: the store, the state commitment and block production.

Follow a transaction from here: `build_block` takes the pool's transactions, executes
them (chain/execution/serial.py), updates the Merkle commitment from the block's
changed keys (chain/state/commitment.py), assembles the header (chain/core/blocks.py)
and commits everything in one lmdb write transaction (chain/state/store.py).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

import ewasm_runtime
from chain.core.blocks import Block, Header, InvalidBlock, validator_set_hash
from chain.core.cross_shard import CrossShardReceipt, Delivery, consumed_slot, prove_all, read_consumed
from chain.core.params import ChainParams
from chain.core.spec import ChainSpec, SpecError, parse_spec
from chain.core.system import OUTBOX
from chain.execution.deliveries import apply_deliveries
from chain.execution.parallel import ParallelExecutor
from chain.execution.serial import BlockContext, BlockExecution, execute_serial
from chain.ledger.genesis import SHARD_KEY, SPEC_KEY, has_validator_contract, make_genesis
from chain.ledger.receipt_sources import FinalSources, SourceHeader
from chain.ledger.state_transition import (
    KnownTransactions,
    SealRules,
    check_execution,
    check_outcome,
    decode_body,
    decode_deliveries,
    execution_roots,
    validate_header,
)
from chain.ledger.validator_sets import ValidatorSchedule
from chain.state.account import account_key, storage_key
from chain.state.commitment import MerkleTree, TreeUndo
from chain.state.overlay import BlockState
from chain.state.store import Snapshot, Store, StoreError
from chain.tx.transaction import Transaction
from ewasm_runtime import Message


@dataclass
class Candidate:
    """A block executed on the head but not committed: the tree already holds its state,
    and `undo` puts it back if the block is discarded."""

    block: Block
    execution: BlockExecution
    undo: TreeUndo


@dataclass
class CallResult:
    """The outcome of eth_call / eth_estimateGas."""

    status: str
    gas_used: int
    output: bytes
    error: str


class Blockchain:
    """One node's chain. Thread-safe: block production and proofs hold `lock`."""

    def __init__(self, store: Store, spec: ChainSpec, *, executor: ParallelExecutor | None = None):
        self.store = store
        self.spec = spec
        self.params: ChainParams = spec.params
        self.lock = threading.RLock()
        self.executor = executor
        self.keep_undo = False  # set by engines whose blocks can be reverted until final
        self.sources: FinalSources | None = None  # the other shards' final headers (a sharded node sets it)
        self._pending: Candidate | None = None  # a proposal executed on the head, held while it is voted on
        self._head = store.header(store.head_number())
        self._finalized = store.finalized_number()
        self._recent_hashes = self._load_recent_hashes(self._head)
        self.validator_sets = ValidatorSchedule(store, spec.engine.validators, spec.engine.epoch_length,
                                                has_validator_contract(spec))
        with store.snapshot() as snapshot:
            # The commitment lives in memory; it is rebuilt from the flat state at start and
            # must reproduce the head's state root, or the database is inconsistent.
            self.tree = MerkleTree.from_entries(snapshot.commitment_entries())
        if self.tree.root != self._head.state_root:
            raise StoreError(f"state root mismatch at block {self._head.number}: the database is inconsistent")

    # -- opening ------------------------------------------------------------------
    @classmethod
    def initialize(cls, datadir: str, spec: ChainSpec) -> "Blockchain":
        """Create a new database with the spec's genesis block (or open the one there, if
        it was made from the same spec). A sharded spec's chain is one shard's: pass
        `spec.for_shard(k)`."""
        store = Store(datadir)
        shard = str(spec.params.shard_id).encode()
        try:
            if store.head_number() is not None:
                existing = store.get_meta(SPEC_KEY)
                if existing is None or json.loads(existing) != spec.raw:
                    raise SpecError(f"{datadir} already holds a chain with a different spec")
                if (store.get_meta(SHARD_KEY) or b"0") != shard:
                    raise SpecError(f"{datadir} already holds shard {(store.get_meta(SHARD_KEY) or b'0').decode()} "
                                    f"of this spec, not shard {shard.decode()}")
            else:
                genesis = make_genesis(spec)
                store.commit_block(Block(genesis.header), [], [], genesis.changes,
                                   extra_meta={SPEC_KEY: json.dumps(spec.raw, sort_keys=True).encode(),
                                               SHARD_KEY: shard})
            return cls(store, spec)
        except BaseException:
            store.close()
            raise

    @classmethod
    def open(cls, datadir: str, **kwargs) -> "Blockchain":
        """Open an initialised database (recovering the commitment from flat state)."""
        if not os.path.isfile(os.path.join(datadir, "data.mdb")):
            raise StoreError(f"{datadir} holds no chain; run `ewasm node init --spec FILE --datadir {datadir}`")
        store = Store(datadir)
        raw = store.get_meta(SPEC_KEY)
        if raw is None or store.head_number() is None:
            store.close()
            raise StoreError(f"{datadir} holds no chain; run `ewasm node init --spec FILE --datadir {datadir}`")
        spec = parse_spec(json.loads(raw))
        return cls(store, spec.for_shard(int(store.get_meta(SHARD_KEY) or b"0")), **kwargs)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
        self.store.close()

    # -- reading ------------------------------------------------------------------
    def head(self) -> Header:
        return self._head

    def snapshot(self) -> Snapshot:
        return self.store.snapshot()

    def final_header(self, shard: int, number: int) -> SourceHeader | None:
        """A final block of `shard` (this one's from the store, the others' from
        `sources`): what deliveries are checked against (receipt_sources.py)."""
        if shard != self.params.shard_id:
            return self.sources.final_header(shard, number) if self.sources is not None else None
        header = self.store.header(number) if number <= self.finalized else None
        return None if header is None else SourceHeader(shard, number, header.hash, header.outgoing_receipts_root)

    def outgoing_deliveries(self, number: int, dest_shard: int | None = None) -> list[Delivery]:
        """Block `number`'s outgoing receipts (those for `dest_shard`, if given), each with
        its proof against the block's header, ready to deliver."""
        header = self.store.header(number)
        if header is None:
            return []
        encoded = [raw for _, raw in self.store.outgoing(number)]
        receipts = [CrossShardReceipt.decode(raw) for raw in encoded]
        wanted = [r for r in receipts if dest_shard is None or r.dest_shard == dest_shard]
        if not wanted:
            return []
        proofs = prove_all(encoded)
        return [Delivery(receipt, header.hash, tuple(proofs[receipt.index])) for receipt in wanted]

    def consumed(self, receipt_id: bytes) -> tuple[str, int] | None:
        """(outcome, block) of a receipt this shard consumed, or None."""
        with self.snapshot() as snapshot:
            return read_consumed(snapshot.get_storage(OUTBOX, consumed_slot(receipt_id)))

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        """The validators of block `height` (at most one epoch past the head)."""
        return self.validator_sets.at(height)

    def context(self, proposer: bytes, timestamp: int | None = None) -> BlockContext:
        """The environment of the block after the head."""
        head, hashes = self._head, self._recent_hashes  # one block's pair: both swap together
        timestamp = max(int(time.time()) if timestamp is None else timestamp, head.timestamp)
        return BlockContext(number=head.number + 1, timestamp=timestamp, proposer=proposer,
                            gas_limit=self.params.block_gas_limit, block_hashes=hashes,
                            shard_id=self.params.shard_id, shards=self.params.shards)

    def _load_recent_hashes(self, head: Header) -> dict[int, bytes]:
        """The hashes of the 256 blocks up to `head`, which the next block may ask for."""
        return {n: (head if n == head.number else self.store.header(n)).hash
                for n in range(max(0, head.number - 255), head.number + 1)}

    def _advance_recent_hashes(self, header: Header) -> dict[int, bytes]:
        """The window after `header`: a new dict, so that readers never see one change."""
        hashes = {n: h for n, h in self._recent_hashes.items() if n > header.number - 256}
        hashes[header.number] = header.hash
        return hashes

    # -- producing ----------------------------------------------------------------
    def execute(self, snapshot: Snapshot, txs: list[Transaction], context: BlockContext) -> BlockExecution:
        if self.executor is not None:
            return self.executor.execute(snapshot, txs, context, self.params)
        return execute_serial(snapshot, txs, context, self.params)

    def build(self, txs: list[Transaction], proposer: bytes, *, timestamp: int | None = None, seal=None,
              validators: list[bytes] | None = None, extra_data: bytes = b"",
              timings: dict[str, float] | None = None, deliveries: list[Delivery] = ()) -> Candidate:
        """Execute `txs`, then `deliveries` (checked against their source headers by the
        caller), on the head and make the block: the caller holds `lock` and then commits
        or discards the candidate.

        `seal(header) -> bytes` signs the header (PoA); transactions and deliveries that
        turn out invalid against the state are left out and listed in the execution's
        `excluded` and `refused_deliveries`. `timings`, when given, accumulates seconds
        per stage (execute, commitment).
        """
        clock = time.perf_counter
        self._drop_pending()
        context = self.context(proposer, timestamp)
        t0 = clock()
        execution = self._execute_on_head(txs, context, list(deliveries))
        t1 = clock()
        undo = TreeUndo(root=self.tree.root)
        state_root = self.tree.update(execution.changes.commitment_updates(), undo)
        tx_root, receipts_root, sent_root, delivered_root = execution_roots(execution)
        header = Header(shard_id=self.params.shard_id, number=context.number, parent_hash=self._head.hash,
                        timestamp=context.timestamp, proposer=proposer, state_root=state_root,
                        transactions_root=tx_root, receipts_root=receipts_root, outgoing_receipts_root=sent_root,
                        deliveries_root=delivered_root, validator_set_hash=validator_set_hash(validators or []),
                        gas_limit=self.params.block_gas_limit, gas_used=execution.gas_used, extra_data=extra_data)
        if seal is not None:
            header = header.with_seal(seal(header))
        if timings is not None:
            for stage, seconds in (("execute", t1 - t0), ("commitment", clock() - t1)):
                timings[stage] = timings.get(stage, 0.0) + seconds
        block = Block(header, tuple(tx.raw for tx in execution.included),
                      tuple(done.delivery.encode() for done in execution.deliveries))
        return Candidate(block, execution, undo)

    def import_block(self, block: Block, rules: SealRules, *, now: float | None = None,
                     known: KnownTransactions | None = None) -> BlockExecution:
        """Validate a block made elsewhere, re-execute it and commit it (state_transition.py).

        InvalidBlock, naming the check that failed, for a block that breaks any rule; the
        chain is then as it was. `known` looks up transactions already decoded and checked.
        """
        with self.lock:
            candidate = self._verified(block, rules, now, known)
            self.commit(candidate)
            return candidate.execution

    def check_block(self, block: Block, rules: SealRules, *, now: float | None = None,
                    known: KnownTransactions | None = None, hold: bool = False) -> BlockExecution:
        """Everything `import_block` checks, without committing: a proposal is checked so
        before anyone votes for it (InvalidBlock if it fails). With `hold`, the executed
        block is kept for `commit_held` (until anything else touches the state)."""
        with self.lock:
            candidate = self._verified(block, rules, now, known)
            if hold:
                self.hold(candidate)
            else:
                self.discard(candidate)
            return candidate.execution

    def hold(self, candidate: Candidate) -> None:
        """Keep an executed, uncommitted candidate (a proposal being voted on), so that it
        is committed without executing it again once decided (the caller holds `lock`)."""
        self._drop_pending()
        self._pending = candidate

    def commit_held(self, block: Block, rules: SealRules) -> BlockExecution | None:
        """Commit `block` (the held candidate's block with its final seal) as the held
        candidate; None when the held one is another block or none is held."""
        with self.lock:
            held = self._pending
            if (held is None or held.block.hash != block.hash or block.header.parent_hash != self._head.hash
                    or (held.block.transactions, held.block.deliveries) != (block.transactions, block.deliveries)):
                return None  # the header alone does not say the body is the one executed: import it
            rules.verify_header(block.header, self._head)
            self._pending = None
            self.commit(Candidate(block, held.execution, held.undo))
            return held.execution

    def _drop_pending(self) -> None:
        """Give up the held candidate: the tree goes back to the head's."""
        if self._pending is not None:
            self.discard(self._pending)
            self._pending = None

    def _verified(self, block: Block, rules: SealRules, now: float | None,
                  known: KnownTransactions | None) -> Candidate:
        """The block executed on the head as a candidate, after every check has passed."""
        self._drop_pending()
        header, parent = block.header, self._head
        validate_header(header, parent, self.params, time.time() if now is None else now)
        rules.verify_header(header, parent)
        txs = decode_body(block, self.params, known)
        deliveries = decode_deliveries(block, self.params, self)
        context = BlockContext(number=header.number, timestamp=header.timestamp, proposer=header.proposer,
                               gas_limit=header.gas_limit, block_hashes=self._recent_hashes,
                               shard_id=self.params.shard_id, shards=self.params.shards)
        execution = self._execute_on_head(txs, context, deliveries)
        check_execution(block, execution)
        undo = TreeUndo(root=self.tree.root)
        state_root = self.tree.update(execution.changes.commitment_updates(), undo)
        candidate = Candidate(block, execution, undo)
        try:
            check_outcome(header, execution, state_root)
        except InvalidBlock:
            self.discard(candidate)
            raise
        return candidate

    def commit(self, candidate: Candidate, timings: dict[str, float] | None = None) -> None:
        """Write a candidate to the store and make it the head (the caller holds `lock`)."""
        started = time.perf_counter()
        header = candidate.block.header
        if header.parent_hash != self._head.hash:
            self.discard(candidate)
            raise StoreError(f"block {header.number} no longer extends the head {self._head.number}")
        execution = candidate.execution
        next_set = self._next_validator_set(header.number, execution)
        try:
            self.store.commit_block(candidate.block, [tx.hash for tx in execution.included], execution.receipts,
                                    execution.changes, keep_undo=self.keep_undo, validator_set=next_set,
                                    outgoing=[(origin, receipt.encode())
                                              for origin, receipt in zip(execution.origins, execution.outgoing)])
        except BaseException:
            # Keep memory and disk in step: rebuild the tree from what is committed.
            with self.snapshot() as snapshot:
                self.tree = MerkleTree.from_entries(snapshot.commitment_entries())
            raise
        if next_set is not None:
            self.validator_sets.recorded(header.number, next_set)
        self._recent_hashes = self._advance_recent_hashes(header)
        self._head = header
        if timings is not None:
            timings["commit"] = timings.get("commit", 0.0) + time.perf_counter() - started

    def _next_validator_set(self, number: int, execution: BlockExecution) -> tuple[bytes, ...] | None:
        """At an epoch boundary, the contract's list in the state after this block."""
        if not self.validator_sets.is_boundary(number):
            return None
        written = execution.changes.storage
        with self.snapshot() as snapshot:
            def get_storage(address: bytes, slot: bytes) -> bytes:
                if (address, slot) in written:
                    return written[(address, slot)] or bytes(32)
                return snapshot.get_storage(address, slot)
            return self.validator_sets.read(get_storage)

    def revert_to(self, number: int) -> list[Block]:
        """Take back the blocks above `number` (to switch to a better fork); returns them,
        newest first. StoreError if one of them is final (kept no undo record)."""
        reverted = []
        with self.lock:
            self._drop_pending()
            while self._head.number > number:
                block = self.store.block(self._head.number)
                restored = self.store.revert_head()
                self.validator_sets.reverted(block.number)
                root = self.tree.update(restored.commitment_updates())
                parent = self.store.header(self._head.number - 1)
                if root != parent.state_root:  # cannot happen unless the store is damaged
                    with self.snapshot() as snapshot:
                        self.tree = MerkleTree.from_entries(snapshot.commitment_entries())
                    raise StoreError(f"reverting block {block.number} gave state root 0x{root.hex()}, block "
                                     f"{parent.number} has 0x{parent.state_root.hex()}")
                self._head = parent
                reverted.append(block)
            self._recent_hashes = self._load_recent_hashes(self._head)
        return reverted

    @property
    def finalized(self) -> int:
        """The newest final block: the head, unless blocks are kept revertible (keep_undo)."""
        return self._finalized if self.keep_undo else self._head.number

    def finalize(self, number: int) -> None:
        """Blocks up to `number` are final: they will never be reverted."""
        with self.lock:
            if self.keep_undo and self._finalized < number <= self._head.number:
                self.store.finalize(number)
                self._finalized = number

    def discard(self, candidate: Candidate) -> None:
        """Drop a candidate that will not be committed: the tree goes back to the head's."""
        self.tree.revert(candidate.undo)

    def build_block(self, txs: list[Transaction], proposer: bytes, *, timestamp: int | None = None, seal=None,
                    validators: list[bytes] | None = None, extra_data: bytes = b"",
                    timings: dict[str, float] | None = None,
                    deliveries: list[Delivery] = ()) -> tuple[Block, BlockExecution]:
        """Build a block on the head and commit it at once (one node's production)."""
        with self.lock:
            candidate = self.build(txs, proposer, timestamp=timestamp, seal=seal, validators=validators,
                                   extra_data=extra_data, timings=timings, deliveries=deliveries)
            self.commit(candidate, timings)
            return candidate.block, candidate.execution

    def _execute_on_head(self, txs: list[Transaction], context: BlockContext,
                         deliveries: list[Delivery] = ()) -> BlockExecution:
        with self.snapshot() as snapshot:
            if snapshot.number != self._head.number:
                raise StoreError("the store moved under the chain")
            execution = self.execute(snapshot, txs, context)
            apply_deliveries(snapshot, execution, list(deliveries), context, self.params)
            return execution

    # -- calls and proofs ---------------------------------------------------------
    def call(self, *, sender: bytes, to: bytes | None, data: bytes, value: int = 0,
             gas: int | None = None) -> CallResult:
        """Execute a message against the latest state and throw the changes away."""
        gas = self.params.block_gas_limit if gas is None else min(gas, self.params.block_gas_limit)
        context = self.context(bytes(20))
        with self.snapshot() as snapshot:
            state = BlockState(snapshot)
            if value:  # like geth: a call may move value the sender does not have
                state.add_balance(sender, value)
            message = Message(sender=sender, to=to, data=data, value=value, gas=gas, gas_price=0, origin=sender)
            runtime = ewasm_runtime.runtime_for_costs(self.params.cost_table_hash, self.params.max_code_size)
            try:
                result = ewasm_runtime.execute(message, state, context.environment(), runtime)
            except (ewasm_runtime.InvalidTransaction, ValueError) as err:
                return CallResult("INVALID", 0, b"", str(err))
        return CallResult(result.status.value, result.gas_used, result.output, result.error)

    def estimate_gas(self, *, on_call: Callable[[CallResult], None] | None = None, **kwargs) -> CallResult:
        """The smallest gas limit with which the call succeeds (binary search).

        `on_call(result)` sees every execution of the search, so that a caller can account
        for the work and stop it (by raising).
        """
        cap = kwargs.pop("gas", None) or self.params.block_gas_limit

        def attempt(gas: int) -> CallResult:
            result = self.call(gas=gas, **kwargs)
            if on_call is not None:
                on_call(result)
            return result

        first = attempt(cap)
        if first.status != "SUCCESS":
            return first
        low, high = first.gas_used - 1, cap  # low fails (or is below what was used), high works
        if attempt(first.gas_used).status == "SUCCESS":
            return CallResult("SUCCESS", first.gas_used, first.output, "")
        while high - low > 1:
            mid = (low + high) // 2
            if attempt(mid).status == "SUCCESS":
                high = mid
            else:
                low = mid
        return CallResult("SUCCESS", high, first.output, "")

    def prove(self, address: bytes, slots: list[bytes]):
        """(head header, account, account proof, [(slot, value, proof)]) at the head."""
        with self.lock:
            self._drop_pending()  # the tree must be the head's
            header = self._head
            with self.snapshot() as snapshot:
                account = snapshot.get_account(address)
                values = [snapshot.get_storage(address, slot) for slot in slots]
            account_proof = self.tree.prove(account_key(address))
            storage = [(slot, value, self.tree.prove(storage_key(address, slot))) for slot, value in zip(slots, values)]
        return header, account, account_proof, storage
