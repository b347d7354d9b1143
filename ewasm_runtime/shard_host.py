"""Import module `shard`: cross-shard receipts, for contracts on a sharded chain.

Plain ewasm contracts import only `ethereum` and never see these. A contract sends
value (and a payload) to an address on another shard with `sendReceipt`: the value
leaves its balance at once, and the chain delivers the receipt on the destination
shard once the sending block is final. While a delivery runs, its top frame reads the
receipt it is handling with the `getReceipt*` functions; every other frame, and every
ordinary transaction, sees none (`getReceiptSourceShard` answers -1). A delivery, which
runs on gas the receiver does not pay for, sends no receipts of its own.

Signatures and conventions are those of the `ethereum` module (eei.py): values are
128-bit little-endian, addresses 20 bytes, pointers into linear memory are checked.
"""

from __future__ import annotations

import ctypes
from typing import Callable

from ewasm_runtime import gas as G
from ewasm_runtime.eei import I32, U32, HostTrap, _charge, _no_writes, _read, _u128, _write
from ewasm_runtime.frame import Frame
from ewasm_runtime.message import IncomingReceipt, SentReceipt

MODULE = "shard"


def sendReceipt(f, a):
    """sendReceipt(shard, toOffset, valueOffset, dataOffset, dataLength, refundToOffset) -> i32:
    0 when sent, 1 when the frame's balance cannot cover the value.

    `shard` -1 sends to the shard of `to`. An address that exists on every shard (a
    system address, such as a contract placed on each shard) needs it named."""
    length = a[8] & U32
    _charge(f, G.SEND_RECEIPT + G.RECEIPT_PAYLOAD_BYTE * length)
    _no_writes(f, "sendReceipt")
    shards = f.tx.env.shards
    if shards is None:
        raise HostTrap("this chain has no shards")
    if f.tx.incoming is not None:
        # A delivery runs on gas nobody paid for: receipts it sent on could multiply
        # without end, every block, at no one's cost.
        raise HostTrap("a delivery cannot send receipts on")
    if length > G.MAX_RECEIPT_PAYLOAD:
        raise HostTrap(f"a payload of {length} bytes is above the limit of {G.MAX_RECEIPT_PAYLOAD}")
    requested = int(ctypes.c_int32(a[0] & U32).value)
    to = _read(f, a[2] & U32, 20)
    value = int.from_bytes(_read(f, a[4] & U32, 16), "little")
    payload = _read(f, a[6] & U32, length)
    refund_to = _read(f, a[10] & U32, 20)
    dest = shards.destination(to, requested)
    if dest is None:
        raise HostTrap(f"no receipt for 0x{to.hex()} can go to shard {requested}")
    if not shards.holds(refund_to):
        raise HostTrap(f"the refund address 0x{refund_to.hex()} is not on shard {shards.shard_id}")
    journal = f.tx.journal
    balance = journal.get_balance(f.address)
    if balance < value:
        a[0] = 1
        return
    journal.set_balance(f.address, balance - value)
    journal.add_receipt(SentReceipt(f.address, dest, to, value, payload, refund_to))
    a[0] = 0


def getShardId(f, a):
    _charge(f, G.BASE)
    shards = f.tx.env.shards
    a[0] = 0 if shards is None else shards.shard_id


def getShardOf(f, a):
    """getShardOf(addressOffset) -> i32: the shard an address lives on (-1: on all)."""
    _charge(f, G.BASE)
    address = _read(f, a[0] & U32, 20)
    shards = f.tx.env.shards
    a[0] = 0 if shards is None else shards.shard_of(address)


def _incoming(f: Frame) -> IncomingReceipt | None:
    """The receipt the frame handles: only a delivery's top frame handles one."""
    return f.tx.incoming if f.depth == 0 else None


def _required(f: Frame, what: str) -> IncomingReceipt:
    incoming = _incoming(f)
    if incoming is None:
        raise HostTrap(f"{what}: this frame is not handling a cross-shard receipt")
    return incoming


def getReceiptSourceShard(f, a):
    _charge(f, G.BASE)
    incoming = _incoming(f)
    a[0] = -1 if incoming is None else incoming.source_shard


def getReceiptSource(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, _required(f, "getReceiptSource").source)


def getReceiptSender(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, _required(f, "getReceiptSender").sender)


def getReceiptValue(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, _u128(_required(f, "getReceiptValue").value))


def getReceiptId(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, _required(f, "getReceiptId").id)


def isReceiptRefund(f, a):
    _charge(f, G.BASE)
    a[0] = int(_required(f, "isReceiptRefund").is_refund)


SHARD_EEI: dict[str, tuple[tuple[str, ...], tuple[str, ...], Callable]] = {
    "sendReceipt": ((I32, I32, I32, I32, I32, I32), (I32,), sendReceipt),
    "getShardId": ((), (I32,), getShardId),
    "getShardOf": ((I32,), (I32,), getShardOf),
    "getReceiptSourceShard": ((), (I32,), getReceiptSourceShard),
    "getReceiptSource": ((I32,), (), getReceiptSource),
    "getReceiptSender": ((I32,), (), getReceiptSender),
    "getReceiptValue": ((I32,), (), getReceiptValue),
    "getReceiptId": ((I32,), (), getReceiptId),
    "isReceiptRefund": ((), (I32,), isReceiptRefund),
}

__all__ = ["MODULE", "SHARD_EEI", "SentReceipt", "IncomingReceipt"]
