"""Block import: the rule every node applies to a block it did not build.

Shaped like execution-specs' `state_transition`, in three steps:

1. validate the header against its parent: shard, number, parent hash, timestamp (not
   before the parent's, and no further ahead of this node's clock than MAX_FUTURE_DRIFT),
   gas limit, gas used and extra data; then the engine's part, the proposer, the seal
   and the validator set (`SealRules`);
2. apply the body: decode every transaction, check what needs no state; decode every
   delivery and check its receipt against the final source header it names
   (receipt_sources.py); execute the block, deliveries last. A transaction the node
   already holds decoded and checked (its pool's, found by the hash of its raw bytes)
   is taken as it is: the checks need only the raw bytes, so their answer is the same,
   and signature recovery is most of an import's cost.
   Each transaction and delivery must be valid where it stands: a block carrying one
   that the state refuses (a receipt consumed before, say) is invalid, since its
   builder would have left it out;
3. compare the outcome with what the header claims: gas used, state root, transactions
   root, receipts root, outgoing receipts root and deliveries root.

Only a block that passes all three is committed (ledger/blockchain.py). Any failure is an
InvalidBlock that names the check and the values, and leaves the chain as it was.
"""

from __future__ import annotations

from typing import Callable, Protocol

from chain.core.blocks import Block, Header, InvalidBlock, NotYetVerifiable, transactions_root
from chain.core.cross_shard import Delivery, MalformedReceipt, outgoing_root
from chain.core.hashing import keccak256
from chain.core.merkle import list_root
from chain.core.params import ChainParams
from chain.execution.deliveries import MAX_DELIVERIES
from chain.execution.serial import BlockExecution
from chain.ledger.receipt_sources import FinalSources, InvalidDelivery, SourceNotFinal, check_delivery
from chain.tx.codec import decode_transaction
from chain.tx.errors import InvalidTransaction
from chain.tx.transaction import Transaction
from chain.tx.validation import validate_stateless

MAX_FUTURE_DRIFT = 5  # seconds a header's timestamp may be ahead of this node's clock
MAX_EXTRA_DATA = 32  # bytes, as in Ethereum


class SealRules(Protocol):
    """The consensus engine's part of block validity."""

    def verify_header(self, header: Header, parent: Header) -> None:
        """Raise InvalidBlock unless the proposer, the seal and the validator-set hash are
        right for this height."""


def validate_header(header: Header, parent: Header, params: ChainParams, now: float) -> None:
    """Step 1 without the engine: the header follows its parent under the chain's params."""
    if header.shard_id != params.shard_id:
        raise InvalidBlock(f"block {header.number} is for shard {header.shard_id}, this chain is shard "
                           f"{params.shard_id}")
    if header.number != parent.number + 1:
        raise InvalidBlock(f"block {header.number} does not follow block {parent.number}")
    if header.parent_hash != parent.hash:
        raise InvalidBlock(f"block {header.number}: parent hash 0x{header.parent_hash.hex()} is not block "
                           f"{parent.number}'s 0x{parent.hash.hex()}")
    if header.timestamp < parent.timestamp:
        raise InvalidBlock(f"block {header.number}: timestamp {header.timestamp} is before its parent's "
                           f"{parent.timestamp}")
    if header.timestamp > now + MAX_FUTURE_DRIFT:
        raise InvalidBlock(f"block {header.number}: timestamp {header.timestamp} is {header.timestamp - now:.0f} s "
                           f"in the future (at most {MAX_FUTURE_DRIFT} s)")
    if header.gas_limit != params.block_gas_limit:
        raise InvalidBlock(f"block {header.number}: gas limit {header.gas_limit}, the chain's is "
                           f"{params.block_gas_limit}")
    if header.gas_used > header.gas_limit:
        raise InvalidBlock(f"block {header.number}: gas used {header.gas_used} exceeds its gas limit "
                           f"{header.gas_limit}")
    if len(header.extra_data) > MAX_EXTRA_DATA:
        raise InvalidBlock(f"block {header.number}: {len(header.extra_data)} bytes of extra data "
                           f"(at most {MAX_EXTRA_DATA})")


KnownTransactions = Callable[[bytes], Transaction | None]  # tx hash -> one already decoded and checked


def decode_body(block: Block, params: ChainParams, known: KnownTransactions | None = None) -> list[Transaction]:
    """Step 2's first half: the block's transactions, each well-formed and valid without
    state. `known` gives the ones this node has already decoded and checked."""
    txs = []
    for index, raw in enumerate(block.transactions):
        held = known(keccak256(raw)) if known is not None else None
        if held is not None and held.raw == raw:
            txs.append(held)
            continue
        try:
            tx = decode_transaction(raw)
            validate_stateless(tx, params)
        except InvalidTransaction as err:
            raise InvalidBlock(f"block {block.number}: transaction {index} is invalid: {err.reason}: {err}") from None
        txs.append(tx)
    return txs


def decode_deliveries(block: Block, params: ChainParams, sources: FinalSources | None) -> list[Delivery]:
    """Step 2's deliveries: each well-formed, for this shard, and proven by a final
    block of its source shard."""
    if len(block.deliveries) > MAX_DELIVERIES:  # before any of them costs a lookup
        raise InvalidBlock(f"block {block.number}: {len(block.deliveries)} deliveries (at most {MAX_DELIVERIES})")
    deliveries = []
    for index, raw in enumerate(block.deliveries):
        try:
            delivery = Delivery.decode(raw)
            check_delivery(delivery, params, sources)
        except SourceNotFinal as err:
            raise NotYetVerifiable(f"block {block.number}: delivery {index} cannot be checked yet: {err}") from None
        except (MalformedReceipt, InvalidDelivery) as err:
            raise InvalidBlock(f"block {block.number}: delivery {index} is invalid: {err}") from None
        deliveries.append(delivery)
    return deliveries


def check_execution(block: Block, execution: BlockExecution) -> None:
    """Step 2's second half: every transaction and delivery ran, none was refused by the state."""
    if execution.excluded:
        tx, err = execution.excluded[0]
        index = next(i for i, raw in enumerate(block.transactions) if raw == tx.raw)
        raise InvalidBlock(f"block {block.number}: transaction {index} (0x{tx.hash.hex()}) is invalid where it "
                           f"stands: {err.reason}: {err}")
    if execution.refused_deliveries:
        delivery, reason = execution.refused_deliveries[0]
        index = next((i for i, raw in enumerate(block.deliveries) if raw == delivery.encode()), "?")
        raise InvalidBlock(f"block {block.number}: delivery {index} is invalid where it stands: {reason}")


def execution_roots(execution: BlockExecution) -> tuple[bytes, bytes, bytes, bytes]:
    """(transactions, receipts, outgoing receipts, deliveries) roots of an executed block."""
    return (transactions_root([tx.hash for tx in execution.included]),
            list_root([receipt.encode() for receipt in execution.receipts]),
            outgoing_root(execution.outgoing),
            list_root([done.delivery.encode() for done in execution.deliveries]))


def check_outcome(header: Header, execution: BlockExecution, state_root: bytes) -> None:
    """Step 3: what execution produced is what the header claims."""
    tx_root, receipts_root, sent_root, delivered_root = execution_roots(execution)
    for name, claimed, actual in (("gas used", header.gas_used, execution.gas_used),
                                  ("state root", header.state_root, state_root),
                                  ("transactions root", header.transactions_root, tx_root),
                                  ("receipts root", header.receipts_root, receipts_root),
                                  ("outgoing receipts root", header.outgoing_receipts_root, sent_root),
                                  ("deliveries root", header.deliveries_root, delivered_root)):
        if claimed != actual:
            shown = (lambda v: f"0x{v.hex()}") if isinstance(claimed, bytes) else str
            raise InvalidBlock(f"block {header.number}: the header's {name} is {shown(claimed)}, executing the "
                               f"block gives {shown(actual)}")
