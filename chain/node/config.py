"""What one node is told to be: datadir, ports, key, workers and limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.core.keys import PrivateKey
from chain.rpc.server import RpcLimits


@dataclass(frozen=True)
class NetworkConfig:
    """Where a node listens for its peers, and whom it dials."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    peers: tuple[tuple[str, int], ...] = ()  # addresses to dial


@dataclass
class NodeConfig:
    datadir: str
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8545
    key: PrivateKey | None = None  # the node key: its node id on the network, and the authority's key for PoA
    network: NetworkConfig | None = None  # None: a single node, with no peers
    workers: int = 1  # >1: the parallel executor
    worker_mode: str = "process"
    max_block_transactions: int = 5000
    pool: dict = field(default_factory=dict)  # PoolLimits fields that override the chain spec's
    rpc: RpcLimits = field(default_factory=RpcLimits)
    # Test-only misbehaviour for fault tests ("equivocate", "lossy:SEED", "crash-after:KIND"); never on a real network.
    faults: tuple[str, ...] = ()
