"""Import module `shard`: receipts a contract sends, and the receipt a delivery reads."""

from __future__ import annotations

import pytest

from ewasm_runtime import Environment, IncomingReceipt, Message, SentReceipt, Status, execute
from ewasm_runtime.gas import MAX_RECEIPT_PAYLOAD
from ewasm_runtime.shard_host import SHARD_EEI
from tests.ewasm_runtime.helpers import SENDER, A, B, World, bytes_data, wat

DEST = bytes.fromhex("f0" + "11" * 19)  # on the other shard of two
REFUND_ELSEWHERE = bytes.fromhex("f1" + "22" * 19)


def _imports() -> str:
    lines = ['(import "ethereum" "finish" (func $finish (param i32 i32)))',
             '(import "ethereum" "revert" (func $revert (param i32 i32)))',
             '(import "ethereum" "call" (func $call (param i64 i32 i32 i32 i32) (result i32)))',
             '(import "ethereum" "callStatic" (func $callStatic (param i64 i32 i32 i32) (result i32)))']
    for name, (params, results, _impl) in SHARD_EEI.items():
        p = f" (param {' '.join(params)})" if params else ""
        r = f" (result {' '.join(results)})" if results else ""
        lines.append(f'(import "shard" "{name}" (func ${name}{p}{r}))')
    return "\n".join(lines)


def module(body: str, data: str = "") -> bytes:
    return wat(f'(module {_imports()} (memory (export "memory") 1) {data} (func (export "main") {body}))')


# memory: 0 destination, 32 value (u128 LE), 64 payload "hi", 96 refund address, 128 result
SEND = ("(i32.store (i32.const 128) (call $sendReceipt"
        " (i32.const -1) (i32.const 0) (i32.const 32) (i32.const 64) (i32.const 2) (i32.const 96)))")
SEND_DATA = (bytes_data(DEST, 0) + bytes_data((500).to_bytes(16, "little"), 32) + bytes_data(b"hi", 64)
             + bytes_data(A, 96))
FINISH_RESULT = "(call $finish (i32.const 128) (i32.const 4))"


def sharded_world(shard: int = 0) -> World:
    """Two shards split at 0xe0 (the chain's ShardLayout splits evenly; the VM only asks)."""
    world = World()
    world.env = Environment(number=7, shards=TwoShards(shard))
    return world


class TwoShards:
    def __init__(self, shard_id: int):
        self.shard_id = shard_id

    def holds(self, address: bytes) -> bool:
        return address[0] < 0xe0 if self.shard_id == 0 else address[0] >= 0xe0

    def shard_of(self, address: bytes) -> int:
        return 1 if address[0] >= 0xe0 else 0

    def destination(self, to: bytes, requested: int) -> int | None:
        return (1 if to[0] >= 0xe0 else 0) if requested == -1 else (requested if requested in (0, 1) else None)


def test_a_sent_receipt_takes_the_value_from_the_frame_and_comes_out_of_the_transaction():
    world = sharded_world()
    world.deploy(A, module(SEND + FINISH_RESULT, SEND_DATA), balance=800)
    result = world.call(A)
    assert result.status is Status.SUCCESS, result.error
    assert result.output == bytes(4)
    assert result.receipts == (SentReceipt(source=A, dest_shard=1, to=DEST, value=500, payload=b"hi", refund_to=A),)
    assert world.state.get_balance(A) == 300


def test_a_receipt_the_frame_cannot_pay_for_is_not_sent_and_says_so():
    world = sharded_world()
    world.deploy(A, module(SEND + FINISH_RESULT, SEND_DATA), balance=499)
    result = world.call(A)
    assert result.status is Status.SUCCESS
    assert result.output == (1).to_bytes(4, "little")
    assert result.receipts == ()
    assert world.state.get_balance(A) == 499


def test_a_reverted_frame_takes_its_receipts_back():
    world = sharded_world()
    world.deploy(A, module(SEND + "(call $revert (i32.const 0) (i32.const 0))", SEND_DATA), balance=800)
    result = world.call(A)
    assert result.status is Status.REVERT
    assert result.receipts == ()
    assert world.state.get_balance(A) == 800


def test_a_nested_frame_that_fails_loses_only_its_own_receipts():
    world = sharded_world()
    world.deploy(B, module(SEND + "(call $revert (i32.const 0) (i32.const 0))", SEND_DATA), balance=800)
    call_b = "(drop (call $call (i64.const 100000) (i32.const 200) (i32.const 300) (i32.const 0) (i32.const 0)))"
    caller = module(SEND + call_b + FINISH_RESULT, SEND_DATA + bytes_data(B, 200))
    world.deploy(A, caller, balance=800)
    result = world.call(A)
    assert result.status is Status.SUCCESS
    assert [r.source for r in result.receipts] == [A]
    assert world.state.get_balance(B) == 800


@pytest.mark.parametrize("case,expected", [
    ("unsharded", "this chain has no shards"),
    ("refund elsewhere", "is not on shard 0"),
    ("static", "not allowed in a static call"),
    ("huge payload", "above the limit"),
    ("no such shard", "can go to shard 7"),
])
def test_a_receipt_that_cannot_be_sent_traps_with_the_reason(case, expected):
    world = World() if case == "unsharded" else sharded_world()
    data = SEND_DATA
    body = SEND
    if case == "refund elsewhere":
        data = SEND_DATA + bytes_data(REFUND_ELSEWHERE, 96)
    if case == "no such shard":
        body = SEND.replace("(i32.const -1)", "(i32.const 7)")
    if case == "huge payload":
        body = SEND.replace("(i32.const 64) (i32.const 2)", f"(i32.const 64) (i32.const {MAX_RECEIPT_PAYLOAD + 1})")
    world.deploy(B, module(body, data), balance=800)
    if case == "static":
        world.deploy(A, module("(i32.store (i32.const 0) (call $callStatic (i64.const 100000) (i32.const 200) "
                               "(i32.const 0) (i32.const 0))) (call $finish (i32.const 0) (i32.const 4))",
                               bytes_data(B, 200)))
        result = world.call(A)
        assert result.output == (1).to_bytes(4, "little")  # the static call failed
        world.deploy(A, module(body, data), balance=800)
        msg = Message(SENDER, B, b"", gas=100_000)
        assert execute(msg, world.state, world.env, world.runtime).status is Status.SUCCESS
        return
    result = world.call(B)
    assert result.status is Status.TRAP
    assert expected in result.error


READ_RECEIPT = ("(i32.store (i32.const 0) (call $getReceiptSourceShard))"
                "(call $getReceiptSource (i32.const 4)) (call $getReceiptSender (i32.const 24))"
                "(call $getReceiptValue (i32.const 44)) (call $getReceiptId (i32.const 60))"
                "(i32.store (i32.const 74) (call $isReceiptRefund))"
                "(call $finish (i32.const 0) (i32.const 78))")


def test_a_delivery_top_frame_reads_the_receipt_it_handles():
    world = sharded_world()
    world.deploy(A, module(READ_RECEIPT))
    incoming = IncomingReceipt(id=bytes(range(14)), source_shard=1, source=B, sender=DEST, value=12345,
                               is_refund=True)
    msg = Message(SENDER, A, b"", gas=100_000, incoming=incoming)
    result = execute(msg, world.state, world.env, world.runtime)
    assert result.status is Status.SUCCESS, result.error
    out = result.output
    assert int.from_bytes(out[0:4], "little") == 1
    assert (out[4:24], out[24:44]) == (B, DEST)
    assert int.from_bytes(out[44:60], "little") == 12345
    assert out[60:74] == bytes(range(14))
    assert int.from_bytes(out[74:78], "little") == 1


def test_frames_that_handle_no_receipt_read_minus_one_and_trap_on_its_fields():
    world = sharded_world()
    world.deploy(A, module("(i32.store (i32.const 0) (call $getReceiptSourceShard))"
                           " (call $finish (i32.const 0) (i32.const 4))"))
    assert world.call(A).output == (-1).to_bytes(4, "little", signed=True)
    world.deploy(B, module(READ_RECEIPT))
    result = world.call(B)
    assert result.status is Status.TRAP
    assert "not handling a cross-shard receipt" in result.error


def test_the_shard_id_is_the_environments():
    world = sharded_world(1)
    world.deploy(A, module("(i32.store (i32.const 0) (call $getShardId)) (call $finish (i32.const 0) (i32.const 4))"))
    assert world.call(A).output == (1).to_bytes(4, "little")


def test_a_delivery_sends_no_receipts_of_its_own():
    """A delivery runs on gas the receiver does not pay for: receipts it sent on could
    multiply every block at no one's cost."""
    world = sharded_world()
    world.deploy(A, module(SEND + FINISH_RESULT, SEND_DATA), balance=800)
    incoming = IncomingReceipt(id=bytes(14), source_shard=1, source=B, sender=DEST, value=0)
    result = execute(Message(SENDER, A, b"", gas=100_000, incoming=incoming), world.state, world.env, world.runtime)
    assert result.status is Status.TRAP and "a delivery cannot send receipts on" in result.error
