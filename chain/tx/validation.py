"""Transaction validity: what can be checked without state (size, chain id, gas, fees,
signature, scope, shard), and what needs the sender's account (nonce, balance).
"""

from __future__ import annotations

from typing import Protocol

from chain.core.params import ChainParams
from chain.tx.errors import (
    FeeTooLow,
    GasLimitError,
    InsufficientFunds,
    NonceTooHigh,
    NonceTooLow,
    OutOfScope,
    OversizedTransaction,
    WrongChainId,
    WrongShard,
)
from chain.tx.transaction import Transaction
from ewasm_runtime.hashing import create_address
from ewasm_runtime.scope import in_scope


class AccountReader(Protocol):
    """What stateful validation needs to know about an account."""

    def get_nonce(self, address: bytes) -> int: ...

    def get_balance(self, address: bytes) -> int: ...


def validate_stateless(tx: Transaction, params: ChainParams) -> None:
    """Checks that need no state: size, chain id, gas, fees, signature, scope and shard."""
    if len(tx.raw) > params.max_transaction_size:
        raise OversizedTransaction(
            f"transaction is {len(tx.raw)} bytes, the limit is {params.max_transaction_size}")
    if tx.chain_id != params.chain_id:
        raise WrongChainId(f"transaction is for chain id {tx.chain_id}, this chain is {params.chain_id}")
    if tx.gas_limit > params.block_gas_limit:
        raise GasLimitError(f"gas limit {tx.gas_limit} exceeds the block gas limit {params.block_gas_limit}")
    intrinsic = tx.intrinsic_gas()
    if tx.gas_limit < intrinsic:
        raise GasLimitError(f"gas limit {tx.gas_limit} is below the intrinsic gas {intrinsic}")
    if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
        raise FeeTooLow(f"max priority fee {tx.max_priority_fee_per_gas} exceeds max fee {tx.max_fee_per_gas}")
    if tx.max_fee_per_gas < params.base_fee_per_gas:
        raise FeeTooLow(f"max fee per gas {tx.max_fee_per_gas} is below the base fee {params.base_fee_per_gas}")
    if tx.is_create and len(tx.data) > params.max_code_size:
        raise OversizedTransaction(f"init code is {len(tx.data)} bytes, the limit is {params.max_code_size}")
    sender = tx.sender  # raises BadSignature
    if not in_scope(sender, tx.scope):
        raise OutOfScope(f"sender 0x{sender.hex()} is outside the transaction's scope")
    target = tx.to if tx.to is not None else create_address(sender, tx.nonce)
    what = "recipient" if tx.to is not None else "created contract"
    if not in_scope(target, tx.scope):
        raise OutOfScope(f"{what} 0x{target.hex()} is outside the transaction's scope")
    if params.shard_count > 1:
        check_shard(tx, sender, target, what, params)


def check_shard(tx: Transaction, sender: bytes, target: bytes, what: str, params: ChainParams) -> None:
    """A transaction belongs to its sender's shard, and touches only that shard's
    accounts and the system ones (chain/core/shards.py)."""
    layout, shard = params.shards, params.shard_id
    home = layout.shard_of(sender)
    if home != shard:
        raise WrongShard(f"sender 0x{sender.hex()} is on shard {home}: send its transactions to shard {home}, "
                         f"not shard {shard}")
    declared = () if tx.scope == (b"",) else tx.scope  # undeclared: the whole shard, which the VM keeps to
    for prefix in declared:
        if not layout.prefix_inside(prefix, shard):
            reached = "every shard" if not prefix else f"shard {layout.shard_of(prefix)}"
            raise OutOfScope(f"scope prefix 0x{prefix.hex()} reaches {reached}: a transaction of shard {shard} "
                             "touches only its own shard and the system addresses")
    if not layout.holds(shard, target):
        raise OutOfScope(f"{what} 0x{target.hex()} is on shard {layout.shard_of(target)}, not on this "
                         f"transaction's shard {shard}")


def upfront_cost(tx: Transaction) -> int:
    """What the sender must hold before execution: gas at the maximum fee plus value."""
    return tx.gas_limit * tx.max_fee_per_gas + tx.value


def validate_against_state(tx: Transaction, state: AccountReader, *, allow_future_nonce: bool = False) -> None:
    """Checks against the sender's account: nonce and balance for gas plus value."""
    sender = tx.sender
    nonce = state.get_nonce(sender)
    if tx.nonce < nonce:
        raise NonceTooLow(f"nonce {tx.nonce} is below the account nonce {nonce} (already used: a replay?)")
    if tx.nonce > nonce and not allow_future_nonce:
        raise NonceTooHigh(f"nonce {tx.nonce} is above the account nonce {nonce}")
    balance = state.get_balance(sender)
    cost = upfront_cost(tx)
    if balance < cost:
        raise InsufficientFunds(
            f"sender 0x{sender.hex()} has balance {balance}, needs {cost} (gas limit x max fee + value)")


def validate(tx: Transaction, params: ChainParams, state: AccountReader, *, allow_future_nonce: bool = False) -> None:
    """All checks, stateless first (they are cheaper except the signature)."""
    validate_stateless(tx, params)
    validate_against_state(tx, state, allow_future_nonce=allow_future_nonce)
