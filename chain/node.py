"""A node: the chain, its transaction pool, a consensus engine and the JSON-RPC server."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from .blockchain import Blockchain
from .consensus import ConsensusEngine, InstantEngine, PoaEngine
from .keys import PrivateKey
from .parallel import ParallelExecutor
from .pool import TransactionPool
from .rpc import RpcMethods
from .rpc_server import RpcServer
from .transactions import Transaction

log = logging.getLogger("ewasm.node")


@dataclass
class NodeConfig:
    datadir: str
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8545
    key: PrivateKey | None = None  # the authority's key for PoA; the proposer address otherwise
    workers: int = 1  # >1: the parallel executor
    worker_mode: str = "process"
    max_block_transactions: int = 5000


class Node:
    """Everything one node runs. `start()` serves RPC and produces blocks until `stop()`."""

    def __init__(self, config: NodeConfig):
        self.config = config
        executor = None
        self.chain = Blockchain.open(config.datadir)
        if config.workers > 1:
            executor = ParallelExecutor(self.chain.store, config.workers, config.worker_mode)
            self.chain.executor = executor
        self.pool = TransactionPool(self.chain.params)
        self._pool_lock = threading.Lock()
        spec = self.chain.spec
        if spec.engine.name == "poa":
            if config.key is None:
                raise ValueError("a PoA node needs the authority's key (--key)")
            self.engine: ConsensusEngine = PoaEngine(self, spec.engine.authority, config.key, spec.engine.block_period)
            self.proposer = spec.engine.authority
        else:
            self.engine = InstantEngine(self)
            self.proposer = config.key.address if config.key else bytes(20)
        self.rpc = RpcServer(RpcMethods(self), config.rpc_host, config.rpc_port)
        self.blocks_made = 0

    # -- used by the engine and RPC -------------------------------------------------
    def admit(self, tx: Transaction) -> None:
        """Admit to the pool, validated against the committed state (raises InvalidTransaction)."""
        tx.sender  # recover outside the lock: it is the costly part
        with self._pool_lock, self.chain.snapshot() as snapshot:
            self.pool.add(tx, snapshot)

    def pending_nonce(self, address: bytes) -> int:
        with self._pool_lock, self.chain.snapshot() as snapshot:
            return self.pool.next_nonce(address, snapshot.get_nonce(address))

    def pending_transaction(self, tx_hash: bytes) -> Transaction | None:
        with self._pool_lock:
            return next((tx for tx in self.pool if tx.hash == tx_hash), None)

    def produce_block(self, engine: ConsensusEngine):
        """Build one block from the pool; None when nothing is pending."""
        with self._pool_lock, self.chain.snapshot() as snapshot:
            txs = self.pool.ready(snapshot, self.chain.params.block_gas_limit, self.config.max_block_transactions)
        if not txs:
            return None
        block, execution = self.chain.build_block(txs, self.proposer, seal=engine.seal,
                                                  validators=engine.validators())
        with self._pool_lock:
            self.pool.remove(execution.included)
            for tx, err in execution.excluded:
                log.info("dropped 0x%s: %s", tx.hash.hex(), err)
            self.pool.remove([tx for tx, _ in execution.excluded])
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
