"""Delivering cross-shard receipts: the last stage of a block, after its transactions.

Each delivery consumes one receipt, in block order, on the state the transactions left:

1. refuse a receipt this shard has consumed before (its consumed word is set) or one
   for another shard: a builder leaves it out, an importer refuses the block;
2. run it: the value appears in the outbox, which calls the receiver with it (calldata
   the payload, gas DELIVERY_GAS beyond the intrinsic, price 0, scope this shard), so an
   account is credited and a contract's handler runs, reading the receipt through the
   `shard` import module (it may not send receipts on: that gas is nobody's). Value it
   sends the fee pot goes to the proposer, as in a transaction;
3. if that fails (the handler reverts, runs out of gas, leaves the shard's scope, or
   the receiver is a precompile or one of the chain's system contracts), the value
   leaves again in a refund receipt to the sender on the source shard. A refund that
   fails in turn is still credited: value is never created or destroyed, only moved;
4. record the receipt as consumed, with how it ended and in which block.

The receiver pays nothing: the sender paid for the receipt on the source shard.
Deliveries do not count towards the block's gas; MAX_DELIVERIES bounds their work.
"""

from __future__ import annotations

from dataclasses import dataclass

import ewasm_runtime
from chain.core.cross_shard import (
    DELIVERED,
    REFUNDED,
    CrossShardReceipt,
    Delivery,
    consumed_slot,
    consumed_word,
    read_consumed,
)
from chain.core.params import ChainParams
from chain.core.shards import is_system
from chain.core.system import OUTBOX, PERMISSIONS, VALIDATORS
from chain.execution.serial import BlockContext, BlockExecution, add_outgoing
from chain.state.account import StateReader
from chain.state.overlay import BlockState, ChangesReader
from ewasm_runtime import IncomingReceipt, Message, SentReceipt, Status
from ewasm_runtime.gas import intrinsic_gas

DELIVERY_GAS = 300_000  # what a receiver's handler may use, beyond the intrinsic gas of its payload
MAX_DELIVERIES = 256  # per block


@dataclass(frozen=True)
class DeliveryOutcome:
    """How one delivery of a block ended."""

    delivery: Delivery
    outcome: int  # cross_shard.DELIVERED or REFUNDED
    gas_used: int
    error: str  # why the receiver failed ("" when it did not)


def refused_reason(state: StateReader, receipt: CrossShardReceipt, params: ChainParams) -> str | None:
    """Why `receipt` cannot be consumed on this state (None when it can)."""
    if receipt.dest_shard != params.shard_id:
        return f"receipt 0x{receipt.id.hex()} is for shard {receipt.dest_shard}, this is shard {params.shard_id}"
    if not params.shards.holds(params.shard_id, receipt.to):
        return f"receipt 0x{receipt.id.hex()} is for 0x{receipt.to.hex()}, which is not on shard {params.shard_id}"
    consumed = read_consumed(state.get_storage(OUTBOX, consumed_slot(receipt.id)))
    if consumed is not None:
        return f"receipt 0x{receipt.id.hex()} was consumed in block {consumed[1]} ({consumed[0]})"
    return None


def apply_deliveries(base: StateReader, execution: BlockExecution, deliveries: list[Delivery],
                     context: BlockContext, params: ChainParams) -> None:
    """Run `deliveries` after the block's transactions, adding their writes, refunds and
    outcomes to `execution`; those that cannot be consumed go to its refused_deliveries."""
    if not deliveries:
        return
    state = BlockState(ChangesReader(base, execution.changes))
    env = context.environment()
    for delivery in deliveries:
        if len(execution.deliveries) >= MAX_DELIVERIES:
            execution.refused_deliveries.append((delivery, f"a block delivers at most {MAX_DELIVERIES} receipts"))
            continue
        reason = refused_reason(state, delivery.receipt, params)
        if reason is not None:
            execution.refused_deliveries.append((delivery, reason))
            continue
        execution.deliveries.append(_deliver(state, execution, delivery, env, context, params))
    if state.fees:  # value a handler sent the fee pot goes to the proposer, as in a transaction
        state.add_balance(context.proposer, state.fees)
        execution.fees += state.fees
    execution.changes.overwrite(state.changes())


def _deliver(state: BlockState, execution: BlockExecution, delivery: Delivery, env, context: BlockContext,
             params: ChainParams) -> DeliveryOutcome:
    receipt = delivery.receipt
    gas_used, error = 0, ""
    chain_owned = receipt.to in (PERMISSIONS, VALIDATORS, OUTBOX) or not state.get_code(receipt.to)
    if is_system(receipt.to) and chain_owned:
        succeeded, error = False, "the chain's system contracts and precompiles take no receipts"
    else:
        result = _run_receiver(state, receipt, env, params)
        succeeded, gas_used = result.status is Status.SUCCESS, result.gas_used
        if not succeeded:
            error = result.status.value + (f": {result.error}" if result.error else "")
            state.add_balance(OUTBOX, -receipt.value)  # the value the failed call left in the outbox
    if succeeded:
        outcome = DELIVERED
    elif receipt.is_refund:
        state.add_balance(receipt.to, receipt.value)  # a refund lands whatever its handler does
        outcome = DELIVERED
    else:
        _refund(execution, receipt, context)
        outcome = REFUNDED
    state.set_storage(OUTBOX, consumed_slot(receipt.id), consumed_word(outcome, context.number))
    return DeliveryOutcome(delivery, outcome, gas_used, error)


def _run_receiver(state: BlockState, receipt: CrossShardReceipt, env, params: ChainParams):
    """The outbox calls the receiver with the receipt's value and payload."""
    state.add_balance(OUTBOX, receipt.value)
    incoming = IncomingReceipt(id=receipt.id, source_shard=receipt.source_shard, source=receipt.source,
                               sender=receipt.refund_to, value=receipt.value, is_refund=receipt.is_refund)
    message = Message(sender=OUTBOX, to=receipt.to, data=receipt.payload, value=receipt.value,
                      gas=intrinsic_gas(receipt.payload, False) + DELIVERY_GAS, gas_price=0, origin=OUTBOX,
                      scope=params.shards.execution_scope((b"",), params.shard_id), incoming=incoming)
    runtime = ewasm_runtime.runtime_for_costs(params.cost_table_hash, params.max_code_size)
    return ewasm_runtime.execute(message, state, env, runtime)


def _refund(execution: BlockExecution, receipt: CrossShardReceipt, context: BlockContext) -> None:
    """Send the value back to the sender on the source shard, naming the receipt."""
    back = SentReceipt(source=receipt.to, dest_shard=receipt.source_shard, to=receipt.refund_to,
                       value=receipt.value, payload=receipt.payload, refund_to=receipt.refund_to)
    add_outgoing(execution, back, context, receipt.id, refund_of=receipt.id)

