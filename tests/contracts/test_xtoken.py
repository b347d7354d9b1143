"""The cross-shard token (contracts/examples/xtoken.c) on two shard chains, real lmdb and
the real VM: the same code at the same system address on both shards; tokens sent
across are burnt on one and minted on the other by the receipt handler; a mint that
fails comes back as a refund that mints them to the sender again; the handler takes
receipts only from itself; and the supply over both shards plus what is in flight
never changes."""

from __future__ import annotations

import pytest
import wasmtime
from eth_abi import decode, encode

from chain.core.keys import to_checksum_address
from chain.execution.deliveries import DELIVERED, REFUNDED
from chain.tx.codec import decode_transaction
from contracts import load_example, outbox_accounts
from tests.chain.ledger.test_cross_shard_receipts import ALICE, BOB, CAROL, CHAIN_ID, PROPOSER, Shards, address
from tests.ewasm_runtime.helpers import bytes_data

XTOKEN = bytes(18) + b"\xff\x10"  # a system address: the token exists on every shard
SUPPLY = 10**24
TRANSFER_CROSS_SHARD = bytes.fromhex("b1f74c4a")
BALANCE_OF = bytes.fromhex("70a08231")
TOTAL_SUPPLY = bytes.fromhex("18160ddd")


FULL = bytes.fromhex("f0" + "ee" * 19)  # on shard 1, holding the most tokens a balance can: a mint to it fails


FORGER = b"\x10" + bytes(18) + b"\x01"  # on shard 0: sends the token on shard 1 a mint of its own making
_FORGED = XTOKEN + address(BOB) + (10**6).to_bytes(32, "big") + address(BOB)
FORGER_CODE = bytes(wasmtime.wat2wasm(f"""(module
  (import "shard" "sendReceipt" (func $send (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  {bytes_data(_FORGED, 0)} {bytes_data(FORGER, 200)}
  (func (export "main")
    (drop (call $send (i32.const 1) (i32.const 0) (i32.const 300) (i32.const 20) (i32.const 72) (i32.const 200)))))"""))


def balance_slot(holder: bytes) -> str:
    return "0x" + (b"\x01" + bytes(11) + holder).hex()


def word(n: int) -> str:
    return "0x" + n.to_bytes(32, "big").hex()


def spec() -> dict:
    # Genesis storage is the same on every shard: each shard starts with SUPPLY, held by
    # ALICE on shard 0 and by BOB on shard 1 (their entries on the other shard stay idle).
    storage = {word(0): word(SUPPLY), balance_slot(address(ALICE)): word(SUPPLY // 2),
               balance_slot(address(BOB)): word(SUPPLY // 2), balance_slot(FULL): word(2**256 - 1)}
    return {"name": "xtoken", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID}, "shards": {"count": 2},
            "accounts": {**{a.address: {"balance": str(10**21)} for a in (ALICE, CAROL, BOB)}, **outbox_accounts(),
                         "0x" + XTOKEN.hex(): {"code": "0x" + load_example("xtoken.wasm").hex(), "nonce": 1,
                                               "storage": storage},
                         "0x" + FORGER.hex(): {"code": "0x" + FORGER_CODE.hex(), "nonce": 1}}}


@pytest.fixture
def shards(tmp_path):
    made = Shards(tmp_path, raw=spec())
    yield made
    made.close()


def call_contract(sender, contract: bytes, data: bytes = b"", *, nonce: int = 0):
    shard = int(sender.address[2:4], 16) * 2 // 256
    signed = sender.sign_transaction({"type": 2, "chainId": CHAIN_ID + shard, "nonce": nonce, "gas": 300_000,
                                      "maxFeePerGas": 1, "maxPriorityFeePerGas": 1, "to": to_checksum_address(contract),
                                      "data": "0x" + data.hex(), "value": 0,
                                      "accessList": [{"address": sender.address, "storageKeys": []},
                                                     {"address": to_checksum_address(contract), "storageKeys": []}]})
    return decode_transaction(bytes(signed.raw_transaction))


def call_token(sender, data: bytes, *, nonce: int):
    return call_contract(sender, XTOKEN, data, nonce=nonce)


def send_tokens(to: bytes, amount: int) -> bytes:
    return TRANSFER_CROSS_SHARD + encode(["address", "uint256"], ["0x" + to.hex(), amount])


def read(chain, data: bytes) -> int:
    result = chain.call(sender=bytes(20), to=XTOKEN, data=data)
    assert result.status == "SUCCESS", result.error
    return decode(["uint256"], result.output)[0]


def balance_of(chain, holder: bytes) -> int:
    return read(chain, BALANCE_OF + encode(["address"], ["0x" + holder.hex()]))


def test_tokens_sent_across_are_burnt_here_and_minted_there(shards):
    zero, one = shards.chains
    block, execution = zero.build_block([call_token(ALICE, send_tokens(address(BOB), 5000), nonce=0)], PROPOSER)
    assert execution.receipts[0].status == 1, execution.receipts[0].error
    [sent] = execution.outgoing
    assert (sent.source, sent.to, sent.dest_shard, sent.value) == (XTOKEN, XTOKEN, 1, 0)
    assert balance_of(zero, address(ALICE)) == SUPPLY // 2 - 5000 and read(zero, TOTAL_SUPPLY) == SUPPLY - 5000
    _, done = one.build_block([], PROPOSER, deliveries=zero.outgoing_deliveries(block.number, 1))
    assert [(d.outcome, d.error) for d in done.deliveries] == [(DELIVERED, "")]
    assert balance_of(one, address(BOB)) == SUPPLY // 2 + 5000 and read(one, TOTAL_SUPPLY) == SUPPLY + 5000


def test_a_mint_that_fails_refunds_the_sender_on_the_source_shard(shards):
    zero, one = shards.chains
    block, execution = zero.build_block([call_token(ALICE, send_tokens(FULL, 700), nonce=0)], PROPOSER)
    assert execution.receipts[0].status == 1 and balance_of(zero, address(ALICE)) == SUPPLY // 2 - 700
    landed, done = one.build_block([], PROPOSER, deliveries=zero.outgoing_deliveries(block.number, 1))
    assert done.deliveries[0].outcome == REFUNDED and "REVERT" in done.deliveries[0].error
    assert read(one, TOTAL_SUPPLY) == SUPPLY
    _, refunded = zero.build_block([], PROPOSER, deliveries=one.outgoing_deliveries(landed.number, 0))
    assert [(d.outcome, d.error) for d in refunded.deliveries] == [(DELIVERED, "")]
    assert balance_of(zero, address(ALICE)) == SUPPLY // 2 and read(zero, TOTAL_SUPPLY) == SUPPLY


def test_tokens_for_a_system_address_are_refused_at_once(shards):
    zero, _ = shards.chains
    _, execution = zero.build_block([call_token(ALICE, send_tokens(bytes(19) + b"\x05", 1), nonce=0)], PROPOSER)
    assert execution.receipts[0].status == 0 and execution.outgoing == []
    assert balance_of(zero, address(ALICE)) == SUPPLY // 2


def test_the_handler_takes_receipts_only_from_the_token_itself(shards):
    """A receipt for the token from another contract, with a mint's payload, is refused
    by the handler (and so refunded), not minted."""
    zero, one = shards.chains
    block, execution = zero.build_block([call_contract(ALICE, FORGER)], PROPOSER)
    assert [r.source for r in execution.outgoing] == [FORGER]
    _, done = one.build_block([], PROPOSER, deliveries=zero.outgoing_deliveries(block.number, 1))
    assert done.deliveries[0].outcome == REFUNDED
    assert balance_of(one, address(BOB)) == SUPPLY // 2 and read(one, TOTAL_SUPPLY) == SUPPLY


def test_the_supply_over_both_shards_and_in_flight_is_constant(shards):
    zero, one = shards.chains
    a, _ = zero.build_block([call_token(ALICE, send_tokens(address(BOB), 11), nonce=0),
                             call_token(ALICE, send_tokens(address(CAROL), 22), nonce=1)], PROPOSER)
    b, _ = one.build_block([call_token(BOB, send_tokens(address(ALICE), 33), nonce=0)], PROPOSER)

    def in_flight() -> int:
        total = 0
        for chain in shards.chains:
            for number in range(1, chain.head().number + 1):
                for d in chain.outgoing_deliveries(number):
                    if shards.chains[d.receipt.dest_shard].consumed(d.receipt.id) is None:
                        total += int.from_bytes(d.receipt.payload[20:52], "big")
        return total

    def supply() -> int:
        return read(zero, TOTAL_SUPPLY) + read(one, TOTAL_SUPPLY) + in_flight()

    assert supply() == 2 * SUPPLY and in_flight() == 66
    one.build_block([], PROPOSER, deliveries=zero.outgoing_deliveries(a.number, 1))
    assert supply() == 2 * SUPPLY
    back = one.outgoing_deliveries(b.number, 0) + zero.outgoing_deliveries(a.number, 0)
    zero.build_block([], PROPOSER, deliveries=back)
    assert supply() == 2 * SUPPLY and in_flight() == 0
    assert balance_of(zero, address(CAROL)) == 22 and balance_of(one, address(BOB)) == SUPPLY // 2 - 33 + 11
