"""The cross-shard receipt methods, on every shard's endpoint.

- `ewasm_getCrossShardReceipt(txHash)`: each receipt the transaction sent, with where
  it stands on its destination shard (pending, delivered or refunded) and, once the
  source block is final, the encoded delivery that anyone may submit;
- `ewasm_submitReceipt(delivery)`: hold a receipt for delivery in this shard's next
  block (the relay does this by itself; this is the manual path);
- `ewasm_getReceiptStatus(id)`: whether this shard consumed a receipt, how and where;
- `ewasm_getOutgoingReceipts(destShard, fromBlock, limit)`: final blocks from
  `fromBlock` on, each with its hash, outgoing receipts root and the deliveries it holds
  for `destShard` (what the other shards' relays read).
"""

from __future__ import annotations

from typing import Protocol

from chain.core.cross_shard import CrossShardReceipt, Delivery, MalformedReceipt
from chain.core.keys import to_checksum_address
from chain.ledger.receipt_sources import InvalidDelivery
from chain.rpc.codec import INVALID_PARAMS, RESOURCE_UNAVAILABLE, TRANSACTION_REJECTED, RpcError
from chain.rpc.values import data, parse_data, parse_quantity, quantity
from chain.state.store import Store

MAX_SCAN_BLOCKS = 256


class ReceiptChain(Protocol):
    """What the methods read of this shard's chain (a Blockchain)."""

    store: Store

    @property
    def finalized(self) -> int: ...

    def outgoing_deliveries(self, number: int, dest_shard: int | None = None) -> list[Delivery]: ...

    def consumed(self, receipt_id: bytes) -> tuple[str, int] | None: ...


class ReceiptGateway(Protocol):
    """Where receipts go in, and how other shards are asked (the node)."""

    def submit_delivery(self, delivery: Delivery) -> bytes:
        """Hold a checked delivery; its receipt id, or InvalidDelivery."""

    def receipt_status(self, shard: int, receipt_id: bytes) -> tuple[str, int] | None:
        """(outcome, block) on `shard`, None while pending; ShardUnavailable if it cannot tell."""


def receipt_methods(chain: ReceiptChain, gateway: ReceiptGateway, shard_count: int):
    """The method table entries: name -> (function of the params list, max params)."""

    def get_cross_shard_receipt(params: list):
        tx_hash = parse_data(_param(params, 0, "txHash"), "txHash", 32)
        location = chain.store.transaction(tx_hash)
        if location is None:
            return None
        number = location.block_number
        sent = [CrossShardReceipt.decode(raw) for origin, raw in chain.store.outgoing(number) if origin == tx_hash]
        final = sent and number <= chain.finalized
        proofs = {d.receipt.id: d for d in chain.outgoing_deliveries(number)} if final else {}
        return [_render(receipt, _status(receipt), proofs.get(receipt.id)) for receipt in sent]

    def _status(receipt: CrossShardReceipt) -> tuple[str, int] | None:
        try:
            return gateway.receipt_status(receipt.dest_shard, receipt.id)
        except RuntimeError as err:  # ShardUnavailable: the destination shard is restarting
            raise RpcError(RESOURCE_UNAVAILABLE, f"shard {receipt.dest_shard} cannot say: {err}") from None

    def submit_receipt(params: list):
        raw = parse_data(_param(params, 0, "delivery"), "delivery")
        try:
            delivery = Delivery.decode(raw)
        except MalformedReceipt as err:
            raise RpcError(INVALID_PARAMS, f"delivery: {err}") from None
        try:
            return data(gateway.submit_delivery(delivery))
        except InvalidDelivery as err:
            raise RpcError(TRANSACTION_REJECTED, f"receipt refused: {err}") from None

    def get_receipt_status(params: list):
        rid = parse_data(_param(params, 0, "receiptId"), "receiptId", 14)
        consumed = chain.consumed(rid)
        if consumed is None:
            return {"status": "pending", "block": None}
        return {"status": consumed[0], "block": quantity(consumed[1])}

    def get_outgoing_receipts(params: list):
        dest = parse_quantity(_param(params, 0, "destShard"), "destShard")
        if dest >= shard_count:
            raise RpcError(INVALID_PARAMS, f"destShard: this chain has shards 0 to {shard_count - 1}, not {dest}")
        first = max(1, parse_quantity(_param(params, 1, "fromBlock"), "fromBlock"))
        limit = parse_quantity(_param(params, 2, "limit", hex(MAX_SCAN_BLOCKS)), "limit")
        if not 1 <= limit <= MAX_SCAN_BLOCKS:
            raise RpcError(INVALID_PARAMS, f"limit: expected 1 to {MAX_SCAN_BLOCKS} blocks, got {limit}")
        finalized = chain.finalized
        blocks = []
        for number in range(first, min(finalized, first + limit - 1) + 1):
            header = chain.store.header(number)
            blocks.append({"number": quantity(number), "hash": data(header.hash),
                           "outgoingRoot": data(header.outgoing_receipts_root),
                           "deliveries": [data(d.encode()) for d in chain.outgoing_deliveries(number, dest)]})
        return {"finalized": quantity(finalized), "blocks": blocks}

    return {
        "ewasm_getCrossShardReceipt": (get_cross_shard_receipt, 1),
        "ewasm_submitReceipt": (submit_receipt, 1),
        "ewasm_getReceiptStatus": (get_receipt_status, 1),
        "ewasm_getOutgoingReceipts": (get_outgoing_receipts, 3),
    }


def _param(params: list, index: int, name: str, default=...):
    if index < len(params):
        return params[index]
    if default is ...:
        raise RpcError(INVALID_PARAMS, f"missing parameter {index + 1} ({name})")
    return default


def _render(receipt: CrossShardReceipt, status: tuple[str, int] | None, delivery: Delivery | None) -> dict:
    return {"id": data(receipt.id), "sourceShard": quantity(receipt.source_shard),
            "destShard": quantity(receipt.dest_shard), "sourceBlock": quantity(receipt.block),
            "from": to_checksum_address(receipt.source), "to": to_checksum_address(receipt.to),
            "value": quantity(receipt.value), "refundTo": to_checksum_address(receipt.refund_to),
            "status": "pending" if status is None else status[0],
            "deliveredIn": None if status is None else quantity(status[1]),
            "delivery": None if delivery is None else data(delivery.encode())}
