"""Benchmark the contract VM: µs per call for a token transfer, a balanceOf view and an
empty call, end to end through `ewasm_runtime.execute` (metering on, as on the chain),
and where the time goes.

    python tools/bench_vm.py [--iterations N] [--json FILE] [--profile]

The token is the C token of contracts/examples (deployed through its init module) when
it is there, else an inline WAT token with the same storage pattern (2 reads, 2 writes,
1 log per transfer).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from ewasm_runtime import MemoryState, Message, Runtime, Status, execute  # noqa: E402
from ewasm_runtime import capi  # noqa: E402
from contracts.token import balance_of_data, transfer_data  # noqa: E402

SENDER = bytes.fromhex("5e4de70000000000000000000000000000000001")
EMPTY_ADDR = bytes.fromhex("00000000000000000000000000000000000e4717")
WAT_TOKEN_ADDR = bytes.fromhex("00000000000000000000000000000000000070c3")

WAT_TOKEN = r"""
(module
  (import "ethereum" "getCallDataSize" (func $cds (result i32)))
  (import "ethereum" "callDataCopy" (func $cdc (param i32 i32 i32)))
  (import "ethereum" "getCaller" (func $caller (param i32)))
  (import "ethereum" "storageLoad" (func $sload (param i32 i32)))
  (import "ethereum" "storageStore" (func $sstore (param i32 i32)))
  (import "ethereum" "log" (func $log (param i32 i32 i32 i32 i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (import "ethereum" "revert" (func $revert (param i32 i32)))
  (memory (export "memory") 1)
  (func $bswap (param $x i64) (result i64) (local $r i64) (local $i i32)
    (loop $l
      (local.set $r (i64.or (i64.shl (local.get $r) (i64.const 8)) (i64.and (local.get $x) (i64.const 255))))
      (local.set $x (i64.shr_u (local.get $x) (i64.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 8))))
    (local.get $r))
  (func (export "main") (local $amt i64) (local $bal i64)
    (if (i32.lt_u (call $cds) (i32.const 36)) (then (call $revert (i32.const 0) (i32.const 0))))
    (call $cdc (i32.const 0) (i32.const 0) (i32.const 36))
    (if (i32.eq (i32.load (i32.const 0)) (i32.const 0x3182a070)) ;; balanceOf(address)
      (then (memory.copy (i32.const 160) (i32.const 4) (i32.const 32))
            (call $sload (i32.const 160) (i32.const 224))
            (i64.store (i32.const 408) (call $bswap (i64.load (i32.const 224))))
            (call $finish (i32.const 384) (i32.const 32))))
    (if (i32.lt_u (call $cds) (i32.const 68)) (then (call $revert (i32.const 0) (i32.const 0))))
    (call $cdc (i32.const 0) (i32.const 0) (i32.const 68))
    (call $caller (i32.const 140))
    (memory.copy (i32.const 160) (i32.const 4) (i32.const 32))
    (call $sload (i32.const 128) (i32.const 192))
    (local.set $amt (call $bswap (i64.load (i32.const 60))))
    (local.set $bal (i64.load (i32.const 192)))
    (if (i64.lt_u (local.get $bal) (local.get $amt)) (then (call $revert (i32.const 0) (i32.const 0))))
    (i64.store (i32.const 192) (i64.sub (local.get $bal) (local.get $amt)))
    (call $sload (i32.const 160) (i32.const 224))
    (i64.store (i32.const 224) (i64.add (i64.load (i32.const 224)) (local.get $amt)))
    (call $sstore (i32.const 128) (i32.const 192))
    (call $sstore (i32.const 160) (i32.const 224))
    (memory.copy (i32.const 256) (i32.const 36) (i32.const 32))
    (memory.copy (i32.const 320) (i32.const 128) (i32.const 32))
    (memory.copy (i32.const 352) (i32.const 160) (i32.const 32))
    (call $log (i32.const 256) (i32.const 32) (i32.const 3) (i32.const 288) (i32.const 320) (i32.const 352) (i32.const 0))
    (i32.store8 (i32.const 415) (i32.const 1))
    (call $finish (i32.const 384) (i32.const 32))))
"""
EMPTY = '(module (memory (export "memory") 1) (func (export "main")))'


def setup(runtime: Runtime):
    """State with a funded sender, a token holding the sender's balance, an empty contract."""
    import wasmtime

    state = MemoryState()
    state.put(SENDER, balance=10**30)
    state.put(EMPTY_ADDR, code=runtime.meter(bytes(wasmtime.wat2wasm(EMPTY))))
    deploy = ROOT / "contracts" / "examples" / "token.deploy.wasm"
    if deploy.exists():
        r = execute(Message(SENDER, None, deploy.read_bytes(), gas=50_000_000), state, runtime=runtime)
        if r.status is not Status.SUCCESS:
            raise SystemExit(f"deploying {deploy} failed: {r.status} {r.error}")
        return state, r.created_address, f"C token ({deploy.relative_to(ROOT)})"
    code = runtime.meter(bytes(wasmtime.wat2wasm(WAT_TOKEN)))
    state.put(WAT_TOKEN_ADDR, code=code,
              storage={bytes(12) + SENDER: (10**24).to_bytes(8, "little") + bytes(24)})
    return state, WAT_TOKEN_ADDR, "inline WAT token"


def timed(fn, iterations: int, repeats: int = 5) -> dict:
    """Median and best of `repeats` runs of `iterations` calls, in µs per call."""
    for _ in range(min(200, iterations)):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        runs.append((time.perf_counter() - t0) / iterations * 1e6)
    return {"median_us": round(statistics.median(runs), 2), "best_us": round(min(runs), 2)}


def instantiate_cost(runtime: Runtime, code: bytes, iterations: int) -> dict:
    """Store + instantiate from the InstancePre + store teardown, no Python frame work."""
    import ctypes

    compiled = runtime.compiled(code)
    buf = ctypes.create_string_buffer(64)
    b = ctypes.addressof(buf)

    def once():
        store = capi.store_new(runtime.engine_address, None, None)
        capi.instantiate(compiled.pre_address, capi.store_context(store), b, b + 16)
        capi.store_delete(store)

    return timed(once, iterations)


def host_call_cost(runtime: Runtime, iterations: int) -> dict:
    """Per host call: a metered loop of 1000 storageLoad calls, minus an empty call."""
    import wasmtime

    loop = runtime.meter(bytes(wasmtime.wat2wasm('''(module
      (import "ethereum" "storageLoad" (func $sl (param i32 i32)))
      (memory (export "memory") 1)
      (func (export "main") (local i32)
        (loop $l (call $sl (i32.const 0) (i32.const 32))
          (local.set 0 (i32.add (local.get 0) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get 0) (i32.const 1000))))))''')))
    state = MemoryState()
    state.put(SENDER, balance=10**30)
    addr = b"\x10" * 20
    state.put(addr, code=loop)
    msg = Message(SENDER, addr, b"", gas=10_000_000)
    t = timed(lambda: execute(msg, state, runtime=runtime), max(1, iterations // 50))
    return {k: round(v / 1000, 3) for k, v in t.items()}


TRANSFER_HOST_CALLS = 9  # getCallDataSize, callDataCopy, getCaller, 2 storageLoad, 2 storageStore, log, finish


def print_breakdown(console: Console, results: dict, gas: int) -> None:
    """Split a transfer's median time into instantiate, host calls and the rest (Python)."""
    t = results["transfer"]["median_us"]
    inst = results["store+instantiate+teardown"]["median_us"]
    host = TRANSFER_HOST_CALLS * results["one host call (storageLoad)"]["median_us"]
    fixed = results["empty call"]["median_us"] - inst
    rest = t - inst - host
    table = Table(title="where a transfer's time goes (medians)")
    table.add_column("part")
    table.add_column("µs", justify="right")
    table.add_column("share", justify="right")
    rows = [
        ("store + instantiate + teardown (wasmtime)", inst),
        (f"{TRANSFER_HOST_CALLS} host calls (≈ {TRANSFER_HOST_CALLS} × one storageLoad)", host),
        ("Python: journal, fee, commit, frame setup, contract code", rest),
    ]
    for name, us in rows:
        table.add_row(name, f"{us:.1f}", f"{100 * us / t:.0f}%")
    table.add_row("total (transfer)", f"{t:.1f}", "100%")
    console.print(table)
    console.print(f"of the Python part, {fixed:.1f} µs is fixed per transaction (an empty call minus "
                  f"instantiate); {gas} gas per transfer.")


def profile_transfers(console: Console, transfer, iterations: int) -> None:
    """Profile the transfer loop: pyinstrument's call tree when installed, else cProfile."""
    try:
        import pyinstrument
    except ImportError:
        pyinstrument = None
    if pyinstrument is not None:
        profiler = pyinstrument.Profiler(interval=0.0001)
        profiler.start()
        for _ in range(iterations):
            transfer()
        profiler.stop()
        console.print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    console.print("pyinstrument is not installed (pip install pyinstrument); using cProfile")
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(iterations):
        transfer()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    console.print(out.getvalue())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--profile", action="store_true", help="profile the transfer loop (pyinstrument when installed, else cProfile)")
    args = parser.parse_args(argv)
    console = Console()

    runtime = Runtime(metering=True)
    state, token, token_name = setup(runtime)
    recipients = [bytes([0x70, i]) + bytes(18) for i in range(16)]
    transfers = [Message(SENDER, token, transfer_data(r, 1), gas=200_000) for r in recipients]
    check = execute(transfers[0], state, runtime=runtime)
    if check.status is not Status.SUCCESS or len(check.logs) != 1:
        raise SystemExit(f"the transfer does not work: {check.status} {check.error}")
    balance_of = Message(SENDER, token, balance_of_data(SENDER), gas=200_000)
    empty = Message(SENDER, EMPTY_ADDR, b"", gas=200_000)
    counter = iter(range(10**12))

    def transfer():
        execute(transfers[next(counter) & 15], state, runtime=runtime)

    results = {
        "token": token_name,
        "transfer": timed(transfer, args.iterations),
        "balanceOf": timed(lambda: execute(balance_of, state, runtime=runtime), args.iterations),
        "empty call": timed(lambda: execute(empty, state, runtime=runtime), args.iterations),
        "store+instantiate+teardown": instantiate_cost(runtime, state.get_code(token), args.iterations),
        "one host call (storageLoad)": host_call_cost(runtime, args.iterations),
        "gas per transfer": check.gas_used,
    }
    table = Table(title=f"ewasm VM, metering on, {token_name}")
    table.add_column("what")
    table.add_column("median µs", justify="right")
    table.add_column("best µs", justify="right")
    for name in ("transfer", "balanceOf", "empty call", "store+instantiate+teardown", "one host call (storageLoad)"):
        table.add_row(name, f"{results[name]['median_us']:.2f}", f"{results[name]['best_us']:.2f}")
    console.print(table)
    print_breakdown(console, results, check.gas_used)
    if args.profile:
        profile_transfers(console, transfer, args.iterations)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
