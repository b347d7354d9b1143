"""Each EEI function: its result, its exact gas, and its failure paths (unmetered mode,
so the gas of a call is intrinsic gas plus host charges only)."""

from __future__ import annotations

import pytest

from ewasm_runtime import EEI, Status
from tests.ewasm_runtime.helpers import (
    A, B, COINBASE, SENDER, World, bytes_data, contract, wat, word,
)

TX = 21000


def run(body: str, *, data: bytes = b"", value: int = 0, gas: int = 1_000_000, gas_price: int = 0,
        setup=None, extra: str = ""):
    w = World()
    w.deploy(A, contract(body, data=extra))
    if setup:
        setup(w)
    return w, w.call(A, data, value=value, gas=gas, gas_price=gas_price)


def intrinsic(data: bytes) -> int:
    return TX + sum(4 if b == 0 else 68 for b in data)


def test_the_interface_has_exactly_the_33_ewasm_functions_with_their_signatures():
    expected = {
        "useGas": ("i64",), "getAddress": ("i32",), "getCaller": ("i32",), "getCallValue": ("i32",),
        "getBlockCoinbase": ("i32",), "getBlockDifficulty": ("i32",), "getTxGasPrice": ("i32",),
        "getTxOrigin": ("i32",), "getExternalBalance": ("i32", "i32"), "storageStore": ("i32", "i32"),
        "storageLoad": ("i32", "i32"), "finish": ("i32", "i32"), "revert": ("i32", "i32"),
        "selfDestruct": ("i32",), "getBlockHash": ("i64", "i32"), "call": ("i64", "i32", "i32", "i32", "i32"),
        "callCode": ("i64", "i32", "i32", "i32", "i32"), "callDelegate": ("i64", "i32", "i32", "i32"),
        "callStatic": ("i64", "i32", "i32", "i32"), "create": ("i32", "i32", "i32", "i32"),
        "callDataCopy": ("i32", "i32", "i32"), "codeCopy": ("i32", "i32", "i32"),
        "returnDataCopy": ("i32", "i32", "i32"), "externalCodeCopy": ("i32", "i32", "i32", "i32"),
        "getExternalCodeSize": ("i32",), "getCallDataSize": (), "getCodeSize": (), "getReturnDataSize": (),
        "getGasLeft": (), "getBlockGasLimit": (), "getBlockNumber": (), "getBlockTimestamp": (),
        "log": ("i32",) * 7,
    }
    results = {"getBlockHash": ("i32",), "call": ("i32",), "callCode": ("i32",), "callDelegate": ("i32",),
               "callStatic": ("i32",), "create": ("i32",), "getExternalCodeSize": ("i32",),
               "getCallDataSize": ("i32",), "getCodeSize": ("i32",), "getReturnDataSize": ("i32",),
               "getGasLeft": ("i64",), "getBlockGasLimit": ("i64",), "getBlockNumber": ("i64",),
               "getBlockTimestamp": ("i64",)}
    assert len(EEI) == 33
    assert {name: params for name, (params, _r, _f) in EEI.items()} == expected
    assert {name: r for name, (_p, r, _f) in EEI.items() if r} == results


FINISH = "(call $finish (i32.const 0) (i32.const {n}))"


@pytest.mark.parametrize("body, n, expected", [
    ("(call $getAddress (i32.const 0))", 20, A),
    ("(call $getCaller (i32.const 0))", 20, SENDER),
    ("(call $getTxOrigin (i32.const 0))", 20, SENDER),
    ("(call $getBlockCoinbase (i32.const 0))", 20, COINBASE),
    ("(call $getCallValue (i32.const 0))", 16, (7).to_bytes(16, "little")),
    ("(call $getTxGasPrice (i32.const 0))", 16, (3).to_bytes(16, "little")),
    ("(call $getBlockDifficulty (i32.const 0))", 32, (131072).to_bytes(32, "little")),
    ("(i64.store (i32.const 0) (call $getBlockNumber))", 8, (100).to_bytes(8, "little")),
    ("(i64.store (i32.const 0) (call $getBlockTimestamp))", 8, (1_700_000_000).to_bytes(8, "little")),
    ("(i64.store (i32.const 0) (call $getBlockGasLimit))", 8, (8_000_000).to_bytes(8, "little")),
    ("(i32.store (i32.const 0) (call $getCallDataSize))", 4, (3).to_bytes(4, "little")),
    ("(i32.store (i32.const 0) (call $getReturnDataSize))", 4, bytes(4)),
])
def test_environment_getters_write_their_value_and_cost_two_gas(body, n, expected):
    _, r = run(body + FINISH.format(n=n), data=b"\x01\x02\x03", value=7, gas_price=3)
    assert r.status is Status.SUCCESS, r.error
    assert r.output == expected
    assert r.gas_used == intrinsic(b"\x01\x02\x03") + 2


def test_get_code_size_reports_the_running_code():
    w, r = run("(i32.store (i32.const 0) (call $getCodeSize))" + FINISH.format(n=4))
    assert int.from_bytes(r.output, "little") == len(w.state.get_code(A))


def test_get_gas_left_charges_its_two_gas_before_reading():
    _, r = run("(i64.store (i32.const 0) (call $getGasLeft))" + FINISH.format(n=8), gas=100_000)
    assert int.from_bytes(r.output, "little") == 100_000 - TX - 2


def test_use_gas_charges_what_it_is_given():
    _, r = run("(call $useGas (i64.const 12345))")
    assert r.status is Status.SUCCESS and r.gas_used == TX + 12345


def test_use_gas_beyond_the_gas_left_is_out_of_gas_and_consumes_everything():
    _, r = run("(call $useGas (i64.const 999999999))", gas=50_000)
    assert r.status is Status.OUT_OF_GAS and r.gas_used == 50_000


def test_use_gas_with_a_negative_amount_traps():
    _, r = run("(call $useGas (i64.const -1))", gas=50_000)
    assert r.status is Status.TRAP and r.gas_used == 50_000


def test_call_data_copy_copies_a_range_for_three_plus_three_per_word():
    data = bytes(range(1, 41))
    _, r = run("(call $callDataCopy (i32.const 0) (i32.const 2) (i32.const 33))" + FINISH.format(n=33), data=data)
    assert r.output == data[2:35]
    assert r.gas_used == intrinsic(data) + 3 + 3 * 2


def test_call_data_copy_past_the_end_of_the_call_data_traps():
    _, r = run("(call $callDataCopy (i32.const 0) (i32.const 2) (i32.const 3))", data=b"\x01\x02\x03", gas=60_000)
    assert r.status is Status.TRAP and r.gas_used == 60_000


def test_code_copy_copies_the_running_code():
    w, r = run("(call $codeCopy (i32.const 0) (i32.const 0) (i32.const 8))" + FINISH.format(n=8))
    assert r.output == w.state.get_code(A)[:8] == b"\0asm\x01\0\0\0"


def test_code_copy_past_the_end_of_the_code_traps():
    _, r = run("(call $codeCopy (i32.const 0) (i32.const 0) (i32.const 100000))")
    assert r.status is Status.TRAP


def setup_b(w):
    w.state.put(B, balance=12345, code=b"\0asm\x01\0\0\0extra")


def test_external_balance_is_128_bit_little_endian_for_400_gas():
    _, r = run("(call $getExternalBalance (i32.const 100) (i32.const 0))" + FINISH.format(n=16),
               setup=setup_b, extra=bytes_data(B, 100))
    assert r.output == (12345).to_bytes(16, "little")
    assert r.gas_used == TX + 400


def test_external_code_size_and_copy_cost_700_and_read_the_other_account():
    body = ("(i32.store (i32.const 0) (call $getExternalCodeSize (i32.const 100)))"
            "(call $externalCodeCopy (i32.const 100) (i32.const 4) (i32.const 8) (i32.const 5))"
            + FINISH.format(n=9))
    _, r = run(body, setup=setup_b, extra=bytes_data(B, 100))
    assert r.output == (13).to_bytes(4, "little") + b"extra"
    assert r.gas_used == TX + 700 + 700 + 3


def test_external_code_copy_past_the_end_of_that_code_traps():
    _, r = run("(call $externalCodeCopy (i32.const 100) (i32.const 0) (i32.const 10) (i32.const 5))",
               setup=setup_b, extra=bytes_data(B, 100))
    assert r.status is Status.TRAP


@pytest.mark.parametrize("number, found", [(99, True), (50, True), (98, False), (100, False), (-1, False)])
def test_block_hash_returns_zero_and_the_hash_or_one_and_leaves_memory_alone(number, found):
    body = (f"(i32.store (i32.const 0) (call $getBlockHash (i64.const {number}) (i32.const 4)))"
            + FINISH.format(n=36))
    _, r = run(body)
    assert r.gas_used == TX + 800  # the EEI specification's price (Byzantium's BLOCKHASH is 20)
    if found:
        assert r.output[:4] == bytes(4) and r.output[4:] == bytes([0x99 if number == 99 else 0x50]) * 32
    else:
        assert r.output == (1).to_bytes(4, "little") + bytes(32)


def test_storage_costs_20000_to_set_5000_to_reset_and_refunds_15000_on_clearing():
    w = World()
    w.deploy(A, contract("(call $callDataCopy (i32.const 32) (i32.const 0) (i32.const 32))"
                         "(call $storageStore (i32.const 0) (i32.const 32))"))
    r = w.call(A, word(5))
    assert r.gas_used == intrinsic(word(5)) + 3 + 3 + 20000
    assert w.storage(A, 0) == word(5)
    r = w.call(A, word(6))
    assert r.gas_used == intrinsic(word(6)) + 6 + 5000
    r = w.call(A, word(0))
    spent = intrinsic(word(0)) + 6 + 5000
    assert r.gas_refund == min(15000, spent // 2) and r.gas_used == spent - r.gas_refund
    assert A not in w.state.accounts or not w.state.accounts[A].storage


def test_storage_load_reads_the_stored_word_for_200_gas():
    w = World()
    w.deploy(A, contract("(call $storageLoad (i32.const 0) (i32.const 32))" + "(call $finish (i32.const 32) (i32.const 32))"),
             storage={word(0): word(77)})
    r = w.call(A)
    assert r.output == word(77) and r.gas_used == TX + 200


def test_log_records_topics_and_data_for_375_plus_375_per_topic_plus_8_per_byte():
    body = "(call $log (i32.const 0) (i32.const 5) (i32.const 2) (i32.const 32) (i32.const 64) (i32.const 0) (i32.const 0))"
    extra = bytes_data(b"hello", 0) + bytes_data(b"\x01" * 32, 32) + bytes_data(b"\x02" * 32, 64)
    _, r = run(body, extra=extra)
    assert r.gas_used == TX + 375 + 2 * 375 + 8 * 5
    (log,) = r.logs
    assert log.address == A and log.data == b"hello" and log.topics == (b"\x01" * 32, b"\x02" * 32)


def test_log_with_five_topics_traps():
    _, r = run("(call $log (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))")
    assert r.status is Status.TRAP and not r.logs


def test_finish_returns_data_and_stops_execution():
    _, r = run("(call $finish (i32.const 0) (i32.const 3)) (call $useGas (i64.const 1000))", extra=bytes_data(b"abc", 0))
    assert r.status is Status.SUCCESS and r.output == b"abc" and r.gas_used == TX


def test_revert_returns_data_keeps_the_unused_gas_and_undoes_writes():
    w = World()
    w.deploy(A, contract("(call $storageStore (i32.const 0) (i32.const 0)) (i32.store8 (i32.const 40) (i32.const 1))"
                         "(call $storageStore (i32.const 32) (i32.const 32)) (call $revert (i32.const 0) (i32.const 4))",
                         data=bytes_data(b"nope", 0)))
    r = w.call(A, gas=100_000)
    assert r.status is Status.REVERT and r.output == b"nope"
    assert r.gas_used == TX + 20000 + 20000
    assert w.storage(A, b"nope".ljust(32, b"\0")) == bytes(32)


def test_self_destruct_sends_the_balance_deletes_the_account_and_refunds():
    w = World()
    w.deploy(A, contract("(call $selfDestruct (i32.const 0))", data=bytes_data(B, 0)), balance=1000)
    w.state.put(B, balance=1)
    r = w.call(A, gas=100_000)
    assert r.status is Status.SUCCESS
    assert A not in w.state.accounts and w.state.get_balance(B) == 1001
    assert r.gas_refund == min(24000, (TX + 5000) // 2)


def test_return_data_of_the_last_call_can_be_sized_and_copied():
    w = World()
    w.deploy(B, contract("(call $finish (i32.const 0) (i32.const 6))", data=bytes_data(b"answer", 0)))
    w.deploy(A, contract(
        "(drop (call $call (i64.const 50000) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 0)))"
        "(i32.store (i32.const 0) (call $getReturnDataSize))"
        "(call $returnDataCopy (i32.const 4) (i32.const 1) (i32.const 5))" + FINISH.format(n=9),
        data=bytes_data(B, 100)))
    r = w.call(A)
    assert r.output == (6).to_bytes(4, "little") + b"nswer"


def test_return_data_copy_past_the_end_traps():
    _, r = run("(call $returnDataCopy (i32.const 0) (i32.const 0) (i32.const 1))")
    assert r.status is Status.TRAP


OUT = "(i32.const 0xfffffff0)"


@pytest.mark.parametrize("call", [
    f"(call $getAddress {OUT})", f"(call $getCaller {OUT})", f"(call $getCallValue {OUT})",
    f"(call $getTxOrigin {OUT})", f"(call $getTxGasPrice {OUT})", f"(call $getBlockCoinbase {OUT})",
    f"(call $getBlockDifficulty {OUT})", f"(call $getExternalBalance {OUT} (i32.const 0))",
    f"(call $getExternalBalance (i32.const 0) {OUT})", f"(call $storageStore {OUT} (i32.const 0))",
    f"(call $storageLoad (i32.const 0) {OUT})", f"(call $finish {OUT} (i32.const 32))",
    f"(call $revert (i32.const 0) (i32.const 0x10001))", f"(call $selfDestruct {OUT})",
    f"(drop (call $getBlockHash (i64.const 99) {OUT}))", f"(drop (call $getBlockHash (i64.const 98) {OUT}))",
    f"(call $callDataCopy {OUT} (i32.const 0) (i32.const 1))", f"(call $codeCopy {OUT} (i32.const 0) (i32.const 1))",
    f"(call $externalCodeCopy {OUT} (i32.const 0) (i32.const 0) (i32.const 0))",
    f"(drop (call $getExternalCodeSize {OUT}))",
    f"(call $log {OUT} (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))",
    f"(call $log (i32.const 0) (i32.const 0) (i32.const 1) {OUT} (i32.const 0) (i32.const 0) (i32.const 0))",
    f"(drop (call $call (i64.const 0) {OUT} (i32.const 0) (i32.const 0) (i32.const 0)))",
    f"(drop (call $call (i64.const 0) (i32.const 0) {OUT} (i32.const 0) (i32.const 0)))",
    f"(drop (call $callStatic (i64.const 0) (i32.const 0) {OUT} (i32.const 1)))",
    f"(drop (call $callDelegate (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0x20000)))",
    f"(drop (call $callCode (i64.const 0) {OUT} (i32.const 0) (i32.const 0) (i32.const 0)))",
    f"(drop (call $create (i32.const 0) (i32.const 0) (i32.const 0) {OUT}))",
    f"(drop (call $create {OUT} (i32.const 0) (i32.const 0) (i32.const 0)))",
])
def test_a_pointer_outside_memory_is_a_trap_of_the_contract(call):
    _, r = run(call, data=b"\x01", gas=300_000)
    assert r.status is Status.TRAP, r.error
    assert r.gas_used == 300_000


def test_a_module_importing_outside_the_eei_is_invalid_and_consumes_all_gas():
    w = World()
    w.state.put(A, code=wat('(module (import "env" "abort" (func)) (memory (export "memory") 1) (func (export "main")))'))
    r = w.call(A, gas=70_000)
    assert r.status is Status.INVALID_CODE and r.gas_used == 70_000
    assert "outside the EEI" in r.error


@pytest.mark.parametrize("text", [
    '(module (import "ethereum" "getAddress" (func (param i64))) (memory (export "memory") 1) (func (export "main")))',
    '(module (import "ethereum" "noSuchFunction" (func)) (memory (export "memory") 1) (func (export "main")))',
    '(module (memory (export "memory") 1) (func (export "start")))',
    '(module (memory 1) (func (export "main")))',
    '(module (memory (export "memory") 1) (func $s) (start $s) (func (export "main")))',
])
def test_modules_breaking_the_conventions_are_invalid_code(text):
    w = World()
    w.state.put(A, code=wat(text))
    r = w.call(A, gas=70_000)
    assert r.status is Status.INVALID_CODE and r.gas_used == 70_000


def test_bytes_that_are_not_wasm_are_invalid_code():
    w = World()
    w.state.put(A, code=b"\x60\x00\x60\x00")
    assert w.call(A, gas=70_000).status is Status.INVALID_CODE


def test_coinbase_receives_gas_used_times_gas_price_and_the_sender_pays_it():
    w, r = run("(call $useGas (i64.const 1000))", gas=100_000, gas_price=7)
    assert w.state.get_balance(COINBASE) == r.gas_used * 7
    assert w.state.get_balance(SENDER) == 10**30 - r.gas_used * 7
    assert w.state.get_nonce(SENDER) == 1


def test_a_zero_gas_price_leaves_a_missing_coinbase_missing_and_an_existing_one_unchanged():
    w, r = run("(call $useGas (i64.const 1000))", gas=100_000, gas_price=0)
    assert r.status is Status.SUCCESS
    assert COINBASE not in w.state.accounts
    w.state.put(COINBASE, balance=5)
    assert w.call(A, gas=100_000).status is Status.SUCCESS
    assert w.state.get_balance(COINBASE) == 5 and COINBASE in w.state.accounts


def test_get_block_hash_costs_800_from_default_v2_on_and_20_under_default_v1():
    import metering
    from ewasm_runtime import Runtime

    body = "(drop (call $getBlockHash (i64.const 99) (i32.const 4)))"
    for version, price in (("default-v1", 20), ("default-v2", 800)):
        w = World(runtime=Runtime(metering=False, costs=metering.load_costs(version)))
        w.deploy(A, contract(body))
        assert w.call(A).gas_used == TX + price, version
