"""The native host interface does what the reference EEI does, to the bit.

Every World in this package already runs each transaction through both (helpers.py).
Here hypothesis writes the contracts: random sequences of host calls with pointers at
and past the end of memory, lengths up to 4 GiB, gas that runs out inside a host call,
calls with and without value into precompiles and into a contract that writes storage
and logs, and a static proxy in front, with metering on and off.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ewasm_runtime import EEI, Runtime, Status, native
from tests.ewasm_runtime.helpers import A, B, C, World, bytes_data, contract, word

pytestmark = pytest.mark.skipif(not native.available(), reason=f"native EEI {native.why_unavailable()}")

# Memory layout of the generated contract's data: addresses to call, and 16-byte values.
TARGETS = [(2).to_bytes(20, "big"), (3).to_bytes(20, "big"), (4).to_bytes(20, "big"), (9).to_bytes(20, "big"),
           (1).to_bytes(20, "big"), B, C, (0x400).to_bytes(20, "big")]
TARGET_AT = [20 * i for i in range(len(TARGETS))]  # 0, 20, ... 140
ZERO_VALUE_AT, ONE_VALUE_AT, HUGE_VALUE_AT = 160, 176, 192
DATA = (bytes_data(b"".join(TARGETS), 0) + bytes_data(bytes(16), ZERO_VALUE_AT)
        + bytes_data((1).to_bytes(16, "little"), ONE_VALUE_AT) + bytes_data(b"\xff" * 16, HUGE_VALUE_AT)
        + bytes_data(bytes(range(256)) * 4, 256))

# Two draws in three are in bounds, so that sequences get past their first host call.
POINTERS = st.one_of(
    st.integers(0, 1024), st.integers(0, 2048),
    st.sampled_from([0, 1, 31, 32, 160, 176, 192, 256, 65_504, 65_516, 65_535, 65_536, 0xFFFF_FFF0, 0xFFFF_FFFF]),
)
ADDRESS_POINTERS = st.one_of(st.sampled_from(TARGET_AT), POINTERS)
VALUE_POINTERS = st.one_of(st.sampled_from([ZERO_VALUE_AT, ONE_VALUE_AT, HUGE_VALUE_AT]), POINTERS)
# Storage keys and values: the word at 256 (bytes 0..31) and a zero word, both stored keys.
KEY_AT, ZERO_WORD_AT = 256, 4096
STORAGE_POINTERS = st.one_of(st.sampled_from([KEY_AT, ZERO_WORD_AT]), POINTERS)
LENGTHS = st.one_of(st.integers(0, 64), st.integers(0, 300),
                    st.sampled_from([0, 1, 20, 32, 33, 64, 1024, 65_536, 0xFFFF_FFFF]))
I64S = st.sampled_from([0, 1, 2, 100, 5000, -1, 2**40, 2**62, 2**63 - 1])
TOPICS = st.one_of(st.integers(0, 4), st.sampled_from([4, 5, 0xFFFF_FFFF]))

# What each parameter of each EEI function draws from, by position.
ROLES = {
    "useGas": [I64S], "getGasLeft": [], "getAddress": [POINTERS], "getCaller": [POINTERS],
    "getCallValue": [POINTERS], "getCallDataSize": [], "getCodeSize": [], "getReturnDataSize": [],
    "callDataCopy": [POINTERS, LENGTHS, LENGTHS], "codeCopy": [POINTERS, LENGTHS, LENGTHS],
    "returnDataCopy": [POINTERS, LENGTHS, LENGTHS], "getTxOrigin": [POINTERS], "getTxGasPrice": [POINTERS],
    "getBlockCoinbase": [POINTERS], "getBlockDifficulty": [POINTERS], "getBlockGasLimit": [],
    "getBlockNumber": [], "getBlockTimestamp": [], "getBlockHash": [I64S, POINTERS],
    "getExternalBalance": [ADDRESS_POINTERS, POINTERS], "getExternalCodeSize": [ADDRESS_POINTERS],
    "externalCodeCopy": [ADDRESS_POINTERS, POINTERS, LENGTHS, LENGTHS],
    "storageLoad": [STORAGE_POINTERS, POINTERS], "storageStore": [STORAGE_POINTERS, STORAGE_POINTERS],
    "log": [POINTERS, LENGTHS, TOPICS, POINTERS, POINTERS, POINTERS, POINTERS],
    "call": [I64S, ADDRESS_POINTERS, VALUE_POINTERS, POINTERS, LENGTHS],
    "callCode": [I64S, ADDRESS_POINTERS, VALUE_POINTERS, POINTERS, LENGTHS],
    "callDelegate": [I64S, ADDRESS_POINTERS, POINTERS, LENGTHS],
    "callStatic": [I64S, ADDRESS_POINTERS, POINTERS, LENGTHS],
    "create": [VALUE_POINTERS, POINTERS, LENGTHS, POINTERS],
    "finish": [POINTERS, LENGTHS], "revert": [POINTERS, LENGTHS], "selfDestruct": [ADDRESS_POINTERS],
}
assert set(ROLES) == set(EEI), "every EEI function has generated arguments"


@st.composite
def host_call(draw) -> str:
    name = draw(st.sampled_from(sorted(ROLES)))
    params, results, _ = EEI[name]
    args = " ".join(f"({kind}.const {draw(role)})" for kind, role in zip(params, ROLES[name]))
    return f"(call ${name} {args})" + (" drop" * len(results))


PROGRAMS = st.lists(host_call(), min_size=1, max_size=10).map(" ".join)

# B writes storage, logs and finishes with its call data; C reverts.
WRITER = contract(
    "(call $storageStore (i32.const 0) (i32.const 32)) (call $log (i32.const 0) (i32.const 4) (i32.const 1)"
    " (i32.const 32) (i32.const 0) (i32.const 0) (i32.const 0)) (call $callDataCopy (i32.const 64) (i32.const 0)"
    " (call $getCallDataSize)) (call $finish (i32.const 64) (call $getCallDataSize))",
    data=bytes_data(b"\x01" * 64, 0))
REVERTER = contract("(call $revert (i32.const 0) (i32.const 7))")
# P calls A statically with nearly all its gas, then returns what A returned.
PROXY_AT = 0x1000
STATIC_PROXY = contract(
    "(drop (call $callStatic (i64.const 100000000) (i32.const 0) (i32.const 0) (i32.const 0)))"
    " (call $returnDataCopy (i32.const 64) (i32.const 0) (call $getReturnDataSize))"
    " (call $finish (i32.const 64) (call $getReturnDataSize))",
    data=bytes_data(A, 0))
P = PROXY_AT.to_bytes(20, "big")

_RUNTIMES: dict[bool, Runtime] = {}


def world(metering: bool) -> World:
    if metering not in _RUNTIMES:  # compiling once per code keeps the examples fast
        _RUNTIMES[metering] = Runtime(metering=metering, native=True)
    return World(runtime=_RUNTIMES[metering])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=PROGRAMS, gas=st.sampled_from([22_000, 30_000, 60_000, 200_000, 3_000_000]),
       calldata=st.binary(max_size=80), value=st.sampled_from([0, 1, 10**6]), via_proxy=st.booleans(),
       metering=st.booleans())
def test_generated_host_call_sequences_agree_between_native_and_reference(body, gas, calldata, value, via_proxy,
                                                                          metering):
    w = world(metering)
    code = contract(body, data=DATA)
    w.deploy(A, code, balance=10**9, storage={bytes(range(32)): word(5), bytes(32): word(7)})
    w.deploy(B, WRITER)
    w.deploy(C, REVERTER)
    w.deploy(P, STATIC_PROXY)
    try:
        w.call(P if via_proxy else A, calldata, gas=gas, value=value)  # World.call asserts agreement
    except Exception as err:  # InvalidTransaction: both raised it, which World.call checked
        assert "gas" in str(err) or "balance" in str(err)


@pytest.mark.parametrize("number,data", [(2, b""), (2, b"abc" * 100), (3, b"x" * 65), (4, b"\x00\x01"),
                                         (9, b""), (9, bytes(range(256)) * 8)])
def test_native_precompiles_match_the_reference_implementations(number, data):
    """sha256, ripemd160, identity and keccak256 through a contract's call, both ways."""
    w = world(True)
    target = number.to_bytes(20, "big")
    code = contract(
        f"(drop (call $call (i64.const 1000000) (i32.const 0) (i32.const 20) (i32.const 64) (i32.const {len(data)})))"
        " (call $returnDataCopy (i32.const 64) (i32.const 0) (call $getReturnDataSize))"
        " (call $finish (i32.const 64) (call $getReturnDataSize))",
        data=bytes_data(target, 0) + bytes_data(data, 64), memory="2")
    w.deploy(A, code)
    r = w.call(A, gas=2_000_000)
    assert r.status is Status.SUCCESS and len(r.output) == (len(data) if number == 4 else 32)
    from ewasm_runtime.precompiles import BUILTINS

    assert r.output == BUILTINS[target].run(data)


def longest_wait_while(worker) -> float:
    """Start `worker` and, until it ends, sleep 1 ms at a time: the longest any sleep took
    is how long this thread waited for the GIL."""
    import time

    worker.start()
    worst = 0.0
    while worker.is_alive():
        started = time.monotonic()
        time.sleep(0.001)
        worst = max(worst, time.monotonic() - started)
    worker.join()
    return worst


def test_a_contract_looping_over_host_calls_lets_other_threads_run():
    """Wasm and the native host functions hold the GIL; they offer it every 256 calls."""
    import threading
    from pathlib import Path

    from ewasm_runtime import MemoryState, Message, execute

    runtime = Runtime(native=True)
    spinner = runtime.meter((Path(__file__).parents[2] / "contracts" / "examples" / "spinner.wasm").read_bytes())
    state = MemoryState()
    state.put(A, balance=10**30)
    state.put(B, code=spinner)
    results = []
    worker = threading.Thread(target=lambda: results.append(
        execute(Message(A, B, b"\x01", gas=30_000_000), state, runtime=runtime)))  # about 0.3 s of getGasLeft
    worst = longest_wait_while(worker)
    assert results[0].status is Status.OUT_OF_GAS
    assert worst < 0.1, f"this thread waited {worst:.3f} s for the GIL"


def test_unmetered_wasm_runs_without_the_gil_so_a_long_loop_stalls_no_other_thread():
    """Unmetered code (conformance runs) is not bounded by gas: like the reference's ctypes
    call, the native path lets other threads run while its wasm does."""
    import threading

    from ewasm_runtime import MemoryState, Message, execute

    runtime = Runtime(metering=False, native=True)
    spin = contract("(local i64) (loop $l (local.set 0 (i64.add (local.get 0) (i64.const 1)))"
                    " (br_if $l (i64.lt_u (local.get 0) (i64.const 300000000))))", locals_="")
    state = MemoryState()
    state.put(A, balance=10**30)
    state.put(B, code=spin)
    worker = threading.Thread(target=lambda: execute(Message(A, B, b"", gas=10**9), state, runtime=runtime))
    worst = longest_wait_while(worker)
    assert worst < 0.1, f"this thread waited {worst:.3f} s for the GIL"
