"""A node: the chain, its transaction pool, a consensus engine and the JSON-RPC server."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from chain.consensus.engine import ConsensusEngine
from chain.consensus.instant.engine import InstantEngine
from chain.consensus.poa.engine import PoaEngine
from chain.core.blocks import Header
from chain.execution.parallel import ParallelExecutor
from chain.ledger.blockchain import Blockchain
from chain.node.config import NodeConfig
from chain.rpc.lanes import LaneLimits
from chain.rpc.methods import EXECUTION, RpcMethods
from chain.rpc.server import RpcLimits, RpcServer
from chain.tx.transaction import Transaction
from chain.txpool.policy import PoolLimits
from chain.txpool.pool import TransactionPool

log = logging.getLogger("ewasm.node")


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
        if spec.engine.name == "poa":
            if config.key is None:
                raise ValueError("a PoA node needs the authority's key (--key)")
            self.engine: ConsensusEngine = PoaEngine(self, spec.engine.authority, config.key, spec.engine.block_period)
            self.proposer = spec.engine.authority
        else:
            self.engine = InstantEngine(self)
            self.proposer = config.key.address if config.key else bytes(20)
        self.rpc = RpcServer(RpcMethods(self.chain, self), config.rpc_host, config.rpc_port, _fit_rpc_limits(config))

    # -- what RPC asks (rpc/methods.py, TransactionGateway) -------------------------
    def submit_transaction(self, tx: Transaction) -> bytes:
        return self.engine.submit_transaction(tx)

    # -- what the engine asks (consensus/engine.py, BlockProducer) ------------------
    def head(self) -> Header:
        return self.chain.head()

    # -- used by the engine and RPC -------------------------------------------------
    def admit(self, tx: Transaction) -> None:
        """Admit to the pool, validated against the committed state (raises InvalidTransaction)."""
        tx.sender  # recover outside the lock: it is the costly part
        with self._pool_lock, self.chain.snapshot() as snapshot:
            for evicted in self.pool.add(tx, snapshot):
                log.debug("evicted 0x%s to make room for 0x%s", evicted.hash.hex(), tx.hash.hex())

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

    def produce_block(self, engine: ConsensusEngine):
        """Build one block from the pool; None when nothing is pending."""
        with self._pool_lock, self.chain.snapshot() as snapshot:
            for tx in self.pool.expire():
                log.debug("queued 0x%s expired", tx.hash.hex())
            txs = self.pool.ready(snapshot, self.chain.params.block_gas_limit, self.config.max_block_transactions)
        if not txs:
            return None
        block, execution = self.chain.build_block(txs, self.proposer, seal=engine.seal,
                                                  validators=engine.validators())
        with self._pool_lock, self.chain.snapshot() as snapshot:
            self.pool.remove(execution.included)
            for tx, err in execution.excluded:
                log.info("dropped 0x%s: %s", tx.hash.hex(), err)
            self.pool.remove([tx for tx, _ in execution.excluded])
            for tx in self.pool.prune(snapshot, {tx.sender for tx in txs}):
                log.debug("dropped 0x%s: its nonce is used or its sender can no longer pay", tx.hash.hex())
        self.blocks_made += 1
        log.info("block %d: %d transactions, %d gas", block.number, len(execution.included), execution.gas_used)
        return block

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        if self.chain.executor is not None:
            self.chain.executor.warm_up()  # helpers up before the first block, failures now
        self.rpc.start()
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop()
        self.rpc.stop()
        self.chain.close()


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
