"""A node: the chain, its transaction pool, a consensus engine, the JSON-RPC server and,
on a network, its peers (network.py)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import replace

from chain.consensus.engine import ConsensusEngine, ConsensusError
from chain.consensus.instant.engine import InstantEngine
from chain.consensus.pbft.engine import PbftEngine
from chain.consensus.pbft.machine import Timeouts
from chain.consensus.pbft.messages import Kind
from chain.consensus.pbft.rules import ProposalRules
from chain.consensus.poa.engine import PoaEngine
from chain.core.blocks import Block, Header, InvalidBlock
from chain.core.cross_shard import Delivery
from chain.core.system import PERMISSIONS, VALIDATORS, ValidatorVoteError, propose_validator_call
from chain.execution.deliveries import MAX_DELIVERIES
from chain.execution.parallel import ParallelExecutor
from chain.execution.serial import BlockExecution
from chain.ledger.blockchain import Blockchain
from chain.ledger.receipt_sources import InvalidDelivery, check_delivery
from chain.net.faults import LossyLinks
from chain.net.peers import PeerInfo
from chain.node.admission import AdmissionGate
from chain.node.block_budget import BlockBudget
from chain.node.config import NodeConfig
from chain.node.network import NetworkService
from chain.node.relay import URL_FILE, ReceiptRelay, ShardUnavailable, sibling_links
from chain.rpc.lanes import LaneLimits
from chain.rpc.methods import EXECUTION, RpcMethods
from chain.rpc.server import RpcLimits, RpcServer
from chain.tx.codec import decode_transaction
from chain.tx.signing import sign_scoped_transaction
from chain.tx.transaction import Transaction
from chain.txpool.inbox import FULL, ReceiptInbox
from chain.txpool.policy import PoolLimits
from chain.txpool.pool import TransactionPool

log = logging.getLogger("ewasm.node")
ADMITTED_FEED = 4096  # recently admitted transaction hashes kept for pending-transaction filters


class StartError(RuntimeError):
    """A node that cannot start: a port it cannot bind."""


class Node:
    """Everything one node runs. `start()` serves RPC and produces blocks until `stop()`."""

    def __init__(self, config: NodeConfig):
        self.config = config
        self.chain = Blockchain.open(config.datadir)
        try:
            self._assemble(config)
        except BaseException:
            self.chain.close()  # a node that cannot start leaves the datadir unlocked
            raise
        self.blocks_made = 0

    def _assemble(self, config: NodeConfig) -> None:
        """Executor, pool, engine and RPC server around the open chain."""
        if config.workers > 1:
            self.chain.executor = ParallelExecutor(self.chain.store, config.workers, config.worker_mode)
        spec = self.chain.spec
        self.pool = TransactionPool(self.chain.params, PoolLimits(**{**spec.txpool, **config.pool}))
        self._pool_lock = threading.Lock()
        self._admitted: deque[tuple[int, bytes]] = deque(maxlen=ADMITTED_FEED)  # for pending-transaction filters
        self._admitted_count = 0
        self.gate = AdmissionGate()
        if config.network is not None and config.key is None:
            raise ValueError("a node on a network needs its node key (--key)")
        key = config.key
        if spec.engine.name in ("poa", "pbft") and config.network is None and (
                key is None or key.address not in self.chain.validators_at(self.chain.head().number + 1)):
            role = "the authority" if spec.engine.name == "poa" else "a validator"
            raise ConsensusError(f"a single {spec.engine.name.upper()} node must be {role}: give it {role}'s key "
                                 "(--key)")
        if spec.engine.name == "poa":
            self.engine: ConsensusEngine = PoaEngine(self, self.chain.validators_at, key, spec.engine.block_period,
                                                     empty_blocks=spec.engine.empty_blocks)
            # One authority for good never forks: its blocks are final at once.
            self.chain.keep_undo = len(spec.engine.validators) > 1 or self.chain.validator_sets.voted
            self.proposer = key.address if key is not None else bytes(20)
        elif spec.engine.name == "pbft":
            self.engine = PbftEngine(self, self.chain.validators_at, key,
                                     Timeouts(spec.engine.block_period, spec.engine.request_timeout),
                                     equivocate="equivocate" in config.faults, crash_after=_crash_after(config.faults))
            self.proposer = key.address if key is not None else bytes(20)
        else:
            self.engine = InstantEngine(self)
            self.proposer = config.key.address if config.key else bytes(20)
        self.budget = BlockBudget(self.engine.block_budget())
        self.inbox = ReceiptInbox()
        self.relay: ReceiptRelay | None = None
        shards = self.chain.params.shards
        if shards.count > 1:
            links = sibling_links(config.datadir, self.chain.params.shard_id, shards.count)
            self.relay = ReceiptRelay(self.chain, self.inbox, links, self.engine.wake)
            self.chain.sources = self.relay
        lossy = next((LossyLinks(seed=int(f.split(":", 1)[1] or 0)) for f in config.faults if f.startswith("lossy")),
                     None)
        self.network = NetworkService(self, config.network, lossy) if config.network is not None else None
        self.rpc = RpcServer(RpcMethods(self.chain, self, self), config.rpc_host, config.rpc_port,
                             _fit_rpc_limits(config))

    # -- what RPC asks (rpc/methods.py, TransactionGateway) -------------------------
    def submit_transaction(self, tx: Transaction) -> bytes:
        tx_hash = self.engine.submit_transaction(tx)
        if self.network is not None:
            self.network.gossip(tx)
        return tx_hash

    def submit_delivery(self, delivery: Delivery) -> bytes:
        """Hold a cross-shard receipt for delivery in this shard's next block; its id.
        InvalidDelivery if its proof, its source block or this shard's state refuses it."""
        check_delivery(delivery, self.chain.params, self.chain)
        rid = delivery.receipt.id
        consumed = self.chain.consumed(rid)
        if consumed is not None:
            raise InvalidDelivery(f"receipt 0x{rid.hex()} was consumed in block {consumed[1]} ({consumed[0]})")
        if self.inbox.add(delivery) == FULL:
            raise InvalidDelivery(f"the inbox holds {len(self.inbox)} receipts already; try again after a block")
        self.engine.wake()
        return rid

    def receipt_status(self, shard: int, receipt_id: bytes) -> tuple[str, int] | None:
        """(outcome, block) of a receipt consumed on `shard` (None: not yet). Another
        shard of this node is asked over RPC: ShardUnavailable if it does not answer."""
        if shard == self.chain.params.shard_id:
            return self.chain.consumed(receipt_id)
        link = self.relay.links.get(shard) if self.relay is not None else None
        if link is None:
            raise ShardUnavailable(f"this chain has no shard {shard}")
        answer = link.call("ewasm_getReceiptStatus", ["0x" + receipt_id.hex()])
        if answer["status"] == "pending":
            return None
        return answer["status"], int(answer["block"], 16)

    def propose_validator_vote(self, candidate: bytes, add: bool) -> bytes:
        """Sign, with this node's key, a vote to add or remove `candidate` in the
        validator-set contract, and submit it; returns its hash. ValidatorVoteError for
        a vote that cannot count (said before anything is sent)."""
        key, schedule = self.config.key, self.chain.validator_sets
        if not schedule.voted:
            raise ValidatorVoteError(f"this chain's validators are fixed in its spec: it has no validator-set "
                                     f"contract at 0x{VALIDATORS.hex()}")
        if key is None:
            raise ValidatorVoteError("this node has no node key to sign a vote with")
        with self.chain.snapshot() as snapshot:
            listed = schedule.read(snapshot.get_storage)
        who = f"0x{candidate.hex()}"
        if key.address not in listed:
            raise ValidatorVoteError(f"this node (0x{key.address.hex()}) is not a validator: only validators vote")
        if add and candidate in listed:
            raise ValidatorVoteError(f"{who} is a validator already")
        if not add and candidate not in listed:
            raise ValidatorVoteError(f"{who} is not a validator")
        if not add and len(listed) == 1:
            raise ValidatorVoteError(f"{who} is the only validator: it cannot be removed")
        data = propose_validator_call(candidate, add)
        trial = self.chain.call(sender=key.address, to=VALIDATORS, data=data)
        if trial.status != "SUCCESS":
            raise ValidatorVoteError(f"the vote would fail: {trial.status} {trial.error}".strip())
        params, tip = self.chain.params, self.pool.limits.min_tip
        gas = min(params.block_gas_limit, 21_000 + 16 * len(data) + 2 * trial.gas_used + 20_000)
        raw = sign_scoped_transaction(key, chain_id=params.chain_id, nonce=self.pending_nonce(key.address),
                                      gas_limit=gas, to=VALIDATORS, data=data, scope=(key.address, VALIDATORS),
                                      max_fee_per_gas=params.base_fee_per_gas + tip, max_priority_fee_per_gas=tip)
        tx_hash = self.submit_transaction(decode_transaction(raw))
        log.info("voted to %s %s (transaction 0x%s)", "add" if add else "remove", who, tx_hash.hex())
        return tx_hash

    # -- what RPC reports (rpc/methods.py, NodeStatus) ------------------------------
    def peers(self) -> list[PeerInfo]:
        return [] if self.network is None else self.network.peers()

    def consensus_status(self) -> dict:
        head = self.chain.head()
        status = {"engine": self.engine.name, "validators": self.engine.validators(), "head": head.number,
                  "finalized": self.chain.finalized, "peers": len(self.peers()),
                  "syncing": self.network is not None and self.network.syncing(), **self.engine.status()}
        schedule = self.chain.validator_sets
        if schedule.voted:
            with self.chain.snapshot() as snapshot:
                status["nextValidators"] = list(schedule.read(snapshot.get_storage))
            status["epochLength"] = schedule.epoch_length
            status["nextEpochBoundary"] = schedule.next_boundary(head.number + 1)
        return status

    def evidence(self) -> list[dict]:
        return list(getattr(self.engine, "evidence", []))

    def sync_progress(self) -> tuple[int, int, int] | None:
        return None if self.network is None else self.network.sync_progress()

    # -- what the engine asks (consensus/engine.py, BlockProducer) ------------------
    def head(self) -> Header:
        return self.chain.head()

    # -- used by the engine and RPC -------------------------------------------------
    def admit(self, tx: Transaction) -> None:
        """Admit to the pool, validated against the committed state (raises InvalidTransaction)."""
        self.gate.wait()
        tx.sender  # recover outside the lock: it is the costly part
        with self._pool_lock, self.chain.snapshot() as snapshot:
            for evicted in self.pool.add(tx, snapshot):
                log.debug("evicted 0x%s to make room for 0x%s", evicted.hash.hex(), tx.hash.hex())
            self._admitted_count += 1
            self._admitted.append((self._admitted_count, tx.hash))

    def pending_since(self, cursor: int | None) -> tuple[list[bytes], int]:
        """The hashes admitted after `cursor` (the newest ADMITTED_FEED of them at most), and
        the cursor of now; for pending-transaction filters."""
        with self._pool_lock:
            now = self._admitted_count
            if cursor is None:
                return [], now
            return [tx_hash for seq, tx_hash in self._admitted if seq > cursor], now

    def pending_nonce(self, address: bytes) -> int:
        with self._pool_lock, self.chain.snapshot() as snapshot:
            return self.pool.next_nonce(address, snapshot.get_nonce(address))

    def pending_transaction(self, tx_hash: bytes) -> Transaction | None:
        with self._pool_lock:
            return self.pool.get(tx_hash)

    def pool_status(self) -> tuple[int, int]:
        """(pending, queued) transactions in the pool."""
        with self._pool_lock:
            return self.pool.pending_count, self.pool.queued_count

    def produce_block(self, engine: ConsensusEngine, *, timestamp: int | None = None, extra_data: bytes = b"",
                      allow_empty: bool = False):
        """Build one block from the pool; None when nothing is pending (unless `allow_empty`).

        It holds the chain's lock from choosing the transactions to clearing them from the
        pool, so that a block imported meanwhile cannot leave it building on stale entries."""
        with self.chain.lock, self.gate.block_work():
            with self._pool_lock, self.chain.snapshot() as snapshot:
                for tx in self.pool.expire():
                    log.debug("queued 0x%s expired", tx.hash.hex())
                txs = self.pool.ready(snapshot, self.chain.params.block_gas_limit,
                                      self.budget.transactions(self.config.max_block_transactions))
            deliveries = self.inbox.ready(MAX_DELIVERIES)
            if not txs and not deliveries and not allow_empty:
                return None
            started = time.perf_counter()
            block, execution = self.chain.build_block(txs, self.proposer, timestamp=timestamp, seal=engine.seal,
                                                      validators=engine.validators(), extra_data=extra_data,
                                                      deliveries=deliveries)
            seconds = time.perf_counter() - started
            self.budget.built(len(txs), seconds)
            for tx, err in execution.excluded:
                log.info("dropped 0x%s: %s", tx.hash.hex(), err)
            self._after_block(execution, [tx for tx, _ in execution.excluded])
        self.blocks_made += 1
        delivered = f", {len(block.deliveries)} receipts delivered" if block.deliveries else ""
        log.info("block %d: %d transactions, %d gas, built in %.3f s%s", block.number, len(execution.included),
                 execution.gas_used, seconds, delivered)
        self.engine.on_head()
        if self.network is not None:
            self.network.announce(block)
        return block

    # -- what the PBFT engine asks (consensus/pbft/engine.py, PbftProducer) ---------
    def build_proposal(self, engine: ConsensusEngine, timestamp: int) -> Block:
        """A block from the pool on the head, for the others to vote on: executed and held
        uncommitted (it is committed with its seals once decided)."""
        with self.chain.lock, self.gate.block_work():
            with self._pool_lock, self.chain.snapshot() as snapshot:
                txs = self.pool.ready(snapshot, self.chain.params.block_gas_limit,
                                      self.budget.transactions(self.config.max_block_transactions))
            started = time.perf_counter()
            candidate = self.chain.build(txs, self.proposer, timestamp=timestamp, validators=engine.validators(),
                                         deliveries=self.inbox.ready(MAX_DELIVERIES))
            self.chain.hold(candidate)  # committed as it is once decided
            self.budget.built(len(txs), time.perf_counter() - started)
        log.info("proposing block %d: %d transactions", candidate.block.number, len(candidate.block.transactions))
        return candidate.block

    def check_proposal(self, block: Block, rules: ProposalRules) -> str | None:
        """Why a proposed block cannot follow the head (None when it can)."""
        with self.chain.lock, self.gate.block_work():
            try:
                self.chain.check_block(block, rules, known=self.pending_transaction, hold=True)
            except InvalidBlock as err:
                return str(err)
        return None

    def announce(self, block: Block) -> None:
        if self.network is not None:
            self.network.announce(block)

    def broadcast_consensus(self, payload: bytes) -> int:
        return 0 if self.network is None else self.network.broadcast_consensus(payload)

    def save_consensus(self, key: bytes, value: bytes) -> None:
        self.chain.store.put_consensus(key, value)

    def load_consensus(self, key: bytes) -> bytes | None:
        return self.chain.store.get_consensus(key)

    def import_block(self, block: Block, *, held: bool = False) -> BlockExecution:
        """Import a block made elsewhere (full validation; InvalidBlock if it breaks a rule).

        With `held`, a decided PBFT block that this node proposed or checked is committed
        as it was executed then, its seals checked, instead of executing it again."""
        with self.chain.lock, self.gate.block_work():
            started = time.perf_counter()
            execution = self.chain.commit_held(block, self.engine.rules) if held else None
            if execution is None:
                execution = self.chain.import_block(block, self.engine.rules, known=self.pending_transaction)
            self._after_block(execution)
        seconds = time.perf_counter() - started
        self.budget.imported(len(execution.included), seconds)
        log.info("imported block %d (0x%s…): %d transactions in %.3f s", block.number, block.hash.hex()[:12],
                 len(execution.included), seconds)
        self.engine.on_head()
        return execution

    def switch_to(self, ancestor: int, branch: list[Block]) -> None:
        """Leave the blocks above `ancestor` for `branch` (a better fork, oldest first).

        The transactions of the blocks left go back to the pool first, on the ancestor's
        state, so that each sender's run stays whole, and the receipts they delivered go
        back to the inbox; the branch's blocks then take out what they include. If a
        block of the branch fails to import, the node goes back to the blocks it left,
        and InvalidBlock is raised.
        """
        with self.chain.lock:
            if ancestor < self.chain.finalized:
                raise InvalidBlock(f"a fork from block {ancestor} would revert the final block {self.chain.finalized}")
            left = self.chain.revert_to(ancestor)
            self._restore([raw for block in reversed(left) for raw in block.transactions])
            for block in reversed(left):  # their receipts are unconsumed again: deliver them on the new branch
                for raw in block.deliveries:
                    delivery = Delivery.decode(raw)
                    self.inbox.add(delivery, force=True)
                    if self.relay is not None:
                        self.relay.rewind(delivery.receipt.source_shard, delivery.receipt.block)
            try:
                for block in branch:
                    self.import_block(block)
            except InvalidBlock:
                self.chain.revert_to(ancestor)
                for block in reversed(left):
                    self.import_block(block)
                raise
        log.info("switched to a better fork: %d blocks above block %d left, %d imported (head %d)", len(left),
                 ancestor, len(branch), self.chain.head().number)
        if self.network is not None:
            self.network.permissions_changed()  # the fork may hold another permission list

    def _restore(self, raws: list[bytes]) -> None:
        """Put the transactions of reverted blocks back into the pool."""
        txs = [decode_transaction(raw) for raw in raws]  # they were in blocks: well formed
        for tx in txs:
            tx.sender
        with self._pool_lock, self.chain.snapshot() as snapshot:
            for tx in self.pool.restore(txs, snapshot):
                log.debug("0x%s of a reverted block stays out of the pool", tx.hash.hex())

    def header(self, number: int) -> Header | None:
        return self.chain.head() if number == self.chain.head().number else self.chain.store.header(number)

    def finalized(self) -> int:
        return self.chain.finalized

    def finalize(self, number: int) -> None:
        self.chain.finalize(number)

    def pending_raws(self) -> list[bytes]:
        """The raw transactions in the pool, pending and queued."""
        with self._pool_lock:
            return [tx.raw for tx in self.pool]

    def _after_block(self, execution: BlockExecution, refused: list[Transaction] = ()) -> None:
        """The pool after a block: included and refused transactions leave, and the
        senders they touched are brought in line with the new state; so do the
        receipts it delivered, or found delivered before."""
        self.inbox.remove([done.delivery.receipt.id for done in execution.deliveries]
                          + [delivery.receipt.id for delivery, _ in execution.refused_deliveries])
        with self._pool_lock, self.chain.snapshot() as snapshot:
            self.pool.remove(execution.included)
            self.pool.remove(refused)
            senders = {tx.sender for tx in (*execution.included, *refused)}
            for tx in self.pool.prune(snapshot, senders):
                log.debug("dropped 0x%s: its nonce is used or its sender can no longer pay", tx.hash.hex())
        if self.network is not None and any(address == PERMISSIONS for address, _ in execution.changes.storage):
            self.network.permissions_changed()

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start everything; StartError (with what was started stopped again) if a port
        cannot be bound."""
        if self.chain.executor is not None:
            self.chain.executor.warm_up()  # helpers up before the first block, failures now
        try:
            self.rpc.start()
        except OSError as err:
            raise StartError(f"cannot serve RPC on {self.config.rpc_host}:{self.config.rpc_port}: "
                             f"{err.strerror or err}") from None
        self._write_url()
        if self.network is not None:
            try:
                self.network.start()
            except OSError as err:
                self.rpc.stop()
                net = self.config.network
                raise StartError(f"cannot listen for peers on {net.host}:{net.port}: {err.strerror or err}") from None
        self.engine.start()
        if self.relay is not None:
            self.relay.start()

    def _write_url(self) -> None:
        """Where this node serves, for the other shards of a sharded node (relay.py)."""
        host = "127.0.0.1" if self.config.rpc_host in ("0.0.0.0", "") else self.config.rpc_host
        path = os.path.join(self.config.datadir, URL_FILE)
        with open(path + ".tmp", "w", encoding="ascii") as f:
            f.write(f"http://{host}:{self.rpc.port}/\n")
        os.replace(path + ".tmp", path)

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        try:
            os.remove(os.path.join(self.config.datadir, URL_FILE))
        except OSError:
            pass
        self.engine.stop()
        if self.network is not None:
            self.network.stop()
        self.rpc.stop()
        self.chain.close()


def _crash_after(faults: tuple[str, ...]) -> Kind | None:
    """The test-only fault "crash-after:KIND": the vote after which a validator kills itself."""
    kinds = [f.split(":", 1)[1] for f in faults if f.startswith("crash-after:")]
    return Kind[kinds[0].upper().replace("-", "_")] if kinds else None


def _fit_rpc_limits(config: NodeConfig) -> RpcLimits:
    """The RPC limits, with no more execution workers than the VM has transaction slots
    beside block execution: a call must never make a block wait for a slot."""
    from ewasm_runtime.engine import MAX_CONCURRENT_TX

    block_threads = config.workers if config.workers > 1 and config.worker_mode == "thread" else 1
    lanes = dict(config.rpc.lanes)
    execution = lanes.get(EXECUTION, LaneLimits())
    room = max(1, MAX_CONCURRENT_TX - block_threads)
    if execution.workers > room:
        log.info("RPC execution workers: %d (the VM runs %d transactions at once, %d of them for blocks)",
                 room, MAX_CONCURRENT_TX, block_threads)
        lanes[EXECUTION] = replace(execution, workers=room)
    return replace(config.rpc, lanes=lanes)
