"""The chain parameters that validation and block building need.

They come from the chain spec's "params" section (see spec.py); defaults suit a
development chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from chain.core.shards import ShardLayout

# The base fee `ewasm devnet` and `ewasm network init` write into the specs they make:
# geth's floor. Clients (ethers.js among them) send EIP-1559 transactions only when the
# latest block's base fee is not zero; a consortium may still set 0 in its spec.
DEFAULT_BASE_FEE = 7
# What the project's own tools offer per gas on such a chain: ethers' rule, twice the
# base fee and a tip of 1 wei.
DEFAULT_MAX_FEE = 2 * DEFAULT_BASE_FEE + 1


@dataclass(frozen=True)
class ChainParams:
    """Consensus-relevant numbers every node of a chain must agree on."""

    chain_id: int = 1337
    shard_id: int = 0  # which shard this chain is (see shards.py)
    shard_count: int = 1  # how many shards the spec splits the address space into
    block_gas_limit: int = 30_000_000
    min_gas_limit: int = 21_000
    max_transaction_size: int = 128 * 1024  # bytes of the raw signed transaction
    base_fee_per_gas: int = 0  # constant: the chain has no fee market
    max_code_size: int = 1024 * 1024
    cost_table_hash: str = ""
    block_period: float = 1.0

    @cached_property
    def shards(self) -> ShardLayout:
        """The layout (made once: execution asks for it on every transaction)."""
        return ShardLayout(self.shard_count)
