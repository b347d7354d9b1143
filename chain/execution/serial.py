"""Block execution: the serial reference.

A block runs in block order against the committed state (a lmdb snapshot). Each
transaction is checked against the state it meets (nonce, balance); one that fails is
left out of the block with the reason. Fees go to a pot during the block and to the
proposer after the last transaction (see state.FEE_POT), so fee payment never makes two
transactions conflict. The cross-shard receipts the transactions send are numbered in
block order too (`finish_block`); the receipts the block delivers run after all of this
(deliveries.py). `run_share` runs part of a block on its own state overlay: the
parallel executor (parallel.py) builds a block from such shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ewasm_runtime
from chain.core.cross_shard import CrossShardReceipt
from chain.core.params import ChainParams
from chain.core.receipts import STATUS_FAILURE, STATUS_SUCCESS, Log, Receipt
from chain.core.shards import ShardLayout
from chain.state.account import Account, StateReader
from chain.state.overlay import FEE_POT, BlockState, StateChanges
from chain.tx.errors import InvalidTransaction
from chain.tx.transaction import Transaction
from chain.tx.validation import validate_against_state
from ewasm_runtime import Environment, Message, SentReceipt, Status


@dataclass(frozen=True)
class BlockContext:
    """What a block's transactions see of the block (the VM's environment)."""

    number: int
    timestamp: int
    proposer: bytes
    gas_limit: int
    block_hashes: dict[int, bytes] = field(default_factory=dict)
    shard_id: int = 0
    shards: ShardLayout = ShardLayout()

    def environment(self) -> Environment:
        return Environment(coinbase=FEE_POT, number=self.number, timestamp=self.timestamp,
                           gas_limit=self.gas_limit, block_hashes=self.block_hashes,
                           shards=self.shards.view(self.shard_id) if self.shards.count > 1 else None)


@dataclass
class Outcome:
    """One included transaction's result, before block-level numbering."""

    index: int  # position in the proposed transaction list
    status: int
    gas_used: int
    logs: tuple[Log, ...]
    contract_address: bytes
    output: bytes
    error: str
    fee: int
    sent: tuple[SentReceipt, ...] = ()  # cross-shard receipts, in the order sent


@dataclass
class BlockExecution:
    """A block's execution: included transactions with receipts, exclusions, state
    writes, and the cross-shard receipts it sends (`outgoing`, each with the hash of the
    transaction or the id of the delivery that sent it in `origins`) and delivers."""

    included: list[Transaction]
    receipts: list[Receipt]
    excluded: list[tuple[Transaction, InvalidTransaction]]
    changes: StateChanges
    gas_used: int
    fees: int
    outgoing: list[CrossShardReceipt] = field(default_factory=list)
    origins: list[bytes] = field(default_factory=list)
    deliveries: list = field(default_factory=list)  # deliveries.DeliveryOutcome, in block order
    refused_deliveries: list = field(default_factory=list)  # (Delivery, reason) left out


def _runtime(params: ChainParams) -> ewasm_runtime.Runtime:
    """The VM this chain runs: its spec's cost table and code size limit."""
    return ewasm_runtime.runtime_for_costs(params.cost_table_hash, params.max_code_size)


def apply_transaction(state: BlockState, tx: Transaction, env: Environment, params: ChainParams,
                      index: int) -> Outcome:
    """Run one transaction on `state`; InvalidTransaction if it cannot be included."""
    validate_against_state(tx, state)
    price = tx.effective_gas_price(params.base_fee_per_gas)
    scope = params.shards.execution_scope(tx.scope, params.shard_id)
    message = Message(sender=tx.sender, to=tx.to, data=tx.data, value=tx.value, gas=tx.gas_limit,
                      gas_price=price, origin=tx.sender, scope=scope)
    fees_before = state.fees
    try:
        result = ewasm_runtime.execute(message, state, env, _runtime(params))
    except ewasm_runtime.InvalidTransaction as err:
        raise InvalidTransaction(str(err)) from None
    logs = tuple(Log(log.address, tuple(log.topics), log.data) for log in result.logs)
    return Outcome(index=index, status=STATUS_SUCCESS if result.status is Status.SUCCESS else STATUS_FAILURE,
                   gas_used=result.gas_used, logs=logs, contract_address=result.created_address or b"",
                   output=result.output, error="" if result.status is Status.SUCCESS else
                   (result.status.value + (f": {result.error}" if result.error else "")),
                   fee=state.fees - fees_before, sent=result.receipts)


def _run_in_order(state: BlockState, txs: list[tuple[int, Transaction]], env: Environment,
                  params: ChainParams) -> tuple[list[Outcome], list[tuple[int, InvalidTransaction]]]:
    outcomes, excluded = [], []
    for index, tx in txs:
        try:
            outcomes.append(apply_transaction(state, tx, env, params, index))
        except InvalidTransaction as err:
            excluded.append((index, err))
    return outcomes, excluded


def finish_block(base: StateReader, txs: list[Transaction], outcomes: list[Outcome],
                 excluded: list[tuple[int, InvalidTransaction]], changes: StateChanges, fees: int,
                 context: BlockContext) -> BlockExecution:
    """Number the receipts in block order and credit the fees to the proposer.

    `outcomes` and `excluded` may come from several shares in any order: their indices
    place them.
    """
    outcomes.sort(key=lambda o: o.index)
    excluded.sort(key=lambda e: e[0])
    if fees:
        proposer = context.proposer
        account = changes.accounts.get(proposer, ...)
        if account is ...:
            account = base.get_account(proposer)
        elif account is None:
            account = Account()
        changes.accounts[proposer] = Account(account.nonce, account.balance + fees, account.code_hash)
    receipts, cumulative = [], 0
    execution = BlockExecution(included=[txs[o.index] for o in outcomes], receipts=receipts,
                               excluded=[(txs[i], err) for i, err in excluded], changes=changes,
                               gas_used=0, fees=fees)
    for o in outcomes:
        cumulative += o.gas_used
        receipts.append(Receipt(o.status, o.gas_used, cumulative, o.logs, o.contract_address, o.output, o.error, o.fee))
        for sent in o.sent:
            add_outgoing(execution, sent, context, txs[o.index].hash)
    execution.gas_used = cumulative
    return execution


def add_outgoing(execution: BlockExecution, sent: SentReceipt, context: BlockContext, origin: bytes,
                 refund_of: bytes = b"") -> None:
    """Number a receipt the block sends (a transaction's, or a refund, which names the
    receipt it returns): the next index of its outgoing list."""
    execution.outgoing.append(CrossShardReceipt(
        source_shard=context.shard_id, block=context.number, index=len(execution.outgoing),
        dest_shard=sent.dest_shard, source=sent.source, to=sent.to, value=sent.value,
        payload=sent.payload, refund_to=sent.refund_to, refund_of=refund_of))
    execution.origins.append(origin)


def execute_serial(base: StateReader, txs: list[Transaction], context: BlockContext,
                   params: ChainParams) -> BlockExecution:
    """The reference: every transaction in block order on one state."""
    state = BlockState(base)
    outcomes, excluded = _run_in_order(state, list(enumerate(txs)), context.environment(), params)
    return finish_block(base, txs, outcomes, excluded, state.changes(), state.fees, context)


def run_share(base: StateReader, txs: list[Transaction], components: list[list[int]],
              context: BlockContext, params: ChainParams):
    """Run some conflict-free components of a block, each in block order, on one overlay.

    Returns (outcomes, excluded, changes, fees); components touch disjoint state, so
    shares run against the same snapshot merge without conflict.
    """
    state = BlockState(base)
    env = context.environment()
    outcomes, excluded = [], []
    for component in components:
        o, e = _run_in_order(state, [(i, txs[i]) for i in component], env, params)
        outcomes += o
        excluded += e
    return outcomes, excluded, state.changes(), state.fees
