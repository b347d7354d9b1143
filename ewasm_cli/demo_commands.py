"""`ewasm demo`: the main job — meter a sample contract, run it on wasmtime, show its gas."""

from __future__ import annotations

import time

import wasmtime
from rich.console import Console
from rich.table import Table

import metering
from ewasm_cli.arguments import integer

SAMPLE = """(module
  (memory (export "memory") 1)
  ;; sum of squares mod 2^64 of 1..n, the arithmetic-loop workload of the benchmarks
  (func (export "sum_of_squares") (param $n i64) (result i64) (local $i i64) (local $acc i64)
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (local.set $acc (i64.add (local.get $acc) (i64.mul (local.get $i) (local.get $i))))
        (br $next)))
    (local.get $acc)))"""


def register(sub) -> None:
    p = sub.add_parser("demo", help="meter a sample contract, run it and print its gas")
    p.add_argument("--n", type=integer(0, 100_000_000), default=100_000,
                   help="loop count of the sample (default 100000, at most 100000000)")
    p.set_defaults(handler=cmd_demo)


def _run(engine, wasm: bytes, n: int, gas: int | None):
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, wasmtime.Module(engine, wasm), []).exports(store)
    if gas is not None:
        exports["gas_left"].set_value(store, wasmtime.Val.i64(gas))
    started = time.perf_counter()
    try:
        value, status = exports["sum_of_squares"](store, n), "ok"
    except wasmtime.Trap:
        value, status = None, "out of gas" if exports["gas_left"].value(store) == -1 else "trap"
    elapsed = time.perf_counter() - started
    left = exports["gas_left"].value(store) if gas is not None else None
    return value, status, left, elapsed


def cmd_demo(args) -> int:
    console = Console()
    costs = metering.load_costs()
    original = wasmtime.wat2wasm(SAMPLE)
    started = time.perf_counter()
    metered = metering.meter(original, costs=costs)
    meter_ms = (time.perf_counter() - started) * 1e3
    console.print(f"metered the sample contract in {meter_ms:.1f} ms: {len(original)} → {len(metered)} bytes, cost table {costs.version} ({costs.hash[:16]}…)")
    engine = wasmtime.Engine()
    plain_value, _, _, plain_s = _run(engine, original, args.n, None)
    ample = 10**12
    value, status, left, metered_s = _run(engine, metered, args.n, ample)
    used = ample - left
    exact = _run(engine, metered, args.n, used)
    short = _run(engine, metered, args.n, used - 1)
    table = Table(title=f"sum_of_squares({args.n})")
    for col in ("run", "gas limit", "status", "result", "gas used", "time"):
        table.add_column(col, justify="right")
    table.add_row("un-metered", "-", "ok", str(plain_value), "-", f"{plain_s * 1e3:.2f} ms")
    table.add_row("metered", str(ample), status, str(value), str(used), f"{metered_s * 1e3:.2f} ms")
    table.add_row("exact gas", str(used), exact[1], str(exact[0]), str(used - exact[2]), f"{exact[3] * 1e3:.2f} ms")
    table.add_row("one gas short", str(used - 1), short[1], "-", str(used - 1), f"{short[3] * 1e3:.2f} ms")
    console.print(table)
    agree = value == plain_value == exact[0] and short[1] == "out of gas"
    console.print("[green]metered and original agree; gas is exact[/green]" if agree else "[red]mismatch[/red]")
    return 0 if agree else 1
