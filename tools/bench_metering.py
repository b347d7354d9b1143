"""Benchmark: what metering costs at run time (vs wasmtime and its fuel) and how fast it meters.

    python tools/bench_metering.py                 # full run, rich table
    python tools/bench_metering.py --quick         # smaller workloads, for a smoke run
    python tools/bench_metering.py --json out.json

Five integer workloads, written in WAT: an arithmetic loop, recursive fib, a br_table state
machine, a memory sieve and call_indirect dispatch. Each runs three ways on real wasmtime:

- plain:  the original module, no accounting at all (the baseline);
- fuel:   the original module on an engine with `consume_fuel`, fuel set ample;
- ours:   the module from `metering.meter` (gas and stack limiter), gas_left set ample.

Each time is the best of several runs of one call on a fresh instance (compilation excluded),
in CPU time of the calling thread (wasmtime runs the call on it), which a busy machine
disturbs far less than wall time.
The table gives each ratio to plain and the geometric mean; the goal is ours <= fuel (stretch:
<= 1.10x). The transpiler's own throughput is measured on a generated ~1 MB module of many
functions of realistic integer code (goal: metered in under 1 s).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import wasmtime

REPO_ROOT = Path(__file__).resolve().parent.parent
AMPLE = 2**62

WORKLOADS: dict[str, tuple[str, int, int]] = {
    # name: (WAT, full-size argument, quick argument); every module exports run(i32) -> i64
    "arith loop": ("""
        (module
          (func (export "run") (param $n i32) (result i64)
            (local $i i32) (local $a i64) (local $b i64)
            (local.set $a (i64.const 0x9E3779B97F4A7C15))
            (local.set $b (i64.const 1))
            (block $done
              (loop $top
                (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $a (i64.add (i64.mul (local.get $a) (i64.const 6364136223846793005))
                                       (i64.const 1442695040888963407)))
                (local.set $b (i64.xor (local.get $b) (i64.shr_u (local.get $a) (i64.const 29))))
                (local.set $b (i64.rotl (local.get $b) (i64.const 7)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $top)))
            (i64.add (local.get $a) (local.get $b))))
    """, 100_000_000, 2_000_000),
    "recursion (fib)": ("""
        (module
          (func $fib (param $n i32) (result i64)
            (if (result i64) (i32.lt_u (local.get $n) (i32.const 2))
              (then (i64.extend_i32_u (local.get $n)))
              (else (i64.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                             (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
          (func (export "run") (param $n i32) (result i64) (call $fib (local.get $n))))
    """, 32, 24),
    "br_table state machine": ("""
        (module
          (func (export "run") (param $n i32) (result i64)
            (local $state i32) (local $acc i64) (local $i i32)
            (block $done
              (loop $next
                (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (block $s5 (block $s4 (block $s3 (block $s2 (block $s1 (block $s0
                  (br_table $s0 $s1 $s2 $s3 $s4 $s5 (local.get $state)))
                  ;; state 0
                  (local.set $acc (i64.add (local.get $acc) (i64.const 3)))
                  (local.set $state (i32.const 2)) (br $next))
                  ;; state 1
                  (local.set $acc (i64.xor (local.get $acc) (i64.const 0x55)))
                  (local.set $state (i32.const 4)) (br $next))
                  ;; state 2
                  (local.set $acc (i64.mul (local.get $acc) (i64.const 5)))
                  (local.set $state (i32.and (i32.wrap_i64 (local.get $acc)) (i32.const 3))) (br $next))
                  ;; state 3
                  (local.set $acc (i64.sub (local.get $acc) (i64.const 1)))
                  (local.set $state (i32.const 5)) (br $next))
                  ;; state 4
                  (local.set $acc (i64.rotl (local.get $acc) (i64.const 3)))
                  (local.set $state (i32.const 1)) (br $next))
                ;; state 5
                (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
                (local.set $state (i32.const 0))
                (br $next)))
            (local.get $acc)))
    """, 50_000_000, 1_000_000),
    "memory sieve": ("""
        (module
          (memory 32 32)
          (func (export "run") (param $n i32) (result i64)
            (local $i i32) (local $j i32) (local $count i64) (local $round i32)
            (if (i32.gt_u (local.get $n) (i32.const 2000000)) (then (local.set $n (i32.const 2000000))))
            (loop $rounds
              (memory.fill (i32.const 0) (i32.const 0) (local.get $n))
              (local.set $count (i64.const 0))
              (local.set $i (i32.const 2))
              (block $done
                (loop $outer
                  (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                  (if (i32.eqz (i32.load8_u (local.get $i)))
                    (then
                      (local.set $count (i64.add (local.get $count) (i64.const 1)))
                      (local.set $j (i32.mul (local.get $i) (local.get $i)))
                      (block $inner_done
                        (loop $inner
                          (br_if $inner_done (i32.ge_u (local.get $j) (local.get $n)))
                          (i32.store8 (local.get $j) (i32.const 1))
                          (local.set $j (i32.add (local.get $j) (local.get $i)))
                          (br $inner)))))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $outer)))
              (local.set $round (i32.add (local.get $round) (i32.const 1)))
              (br_if $rounds (i32.lt_u (local.get $round) (i32.const 16))))
            (local.get $count)))
    """, 2_000_000, 100_000),
    "call_indirect dispatch": ("""
        (module
          (type $op (func (param i64 i32) (result i64)))
          (table 8 funcref)
          (elem (i32.const 0) $f0 $f1 $f2 $f3 $f4 $f5 $f6 $f7)
          (func $f0 (type $op) (i64.add (local.get 0) (i64.extend_i32_u (local.get 1))))
          (func $f1 (type $op) (i64.xor (local.get 0) (i64.const 0x1234)))
          (func $f2 (type $op) (i64.mul (local.get 0) (i64.const 3)))
          (func $f3 (type $op) (i64.sub (local.get 0) (i64.extend_i32_u (local.get 1))))
          (func $f4 (type $op) (i64.rotl (local.get 0) (i64.const 5)))
          (func $f5 (type $op) (i64.add (local.get 0) (i64.const 77)))
          (func $f6 (type $op) (i64.shr_u (local.get 0) (i64.const 1)))
          (func $f7 (type $op) (i64.or (local.get 0) (i64.const 1)))
          (func (export "run") (param $n i32) (result i64)
            (local $i i32) (local $acc i64) (local $rng i32)
            ;; the target comes from an LCG, so no variant gets a lucky run of branch prediction
            (local.set $rng (i32.const 12345))
            (block $done
              (loop $top
                (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $rng (i32.add (i32.mul (local.get $rng) (i32.const 1103515245)) (i32.const 12345)))
                (local.set $acc (call_indirect (type $op) (local.get $acc) (local.get $i)
                                  (i32.shr_u (local.get $rng) (i32.const 29))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $top)))
            (local.get $acc)))
    """, 30_000_000, 600_000),
}


@dataclass
class Row:
    workload: str
    plain_s: float
    fuel_s: float
    ours_s: float
    fuel_ratio: float
    ours_ratio: float
    gas_used: int
    result_agrees: bool


def _engine(fuel: bool) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = fuel
    return wasmtime.Engine(config)


def _run_once(engine: wasmtime.Engine, module: wasmtime.Module, arg: int, mode: str):
    """One call of run(arg) on a fresh instance: (seconds, result, gas used)."""
    store = wasmtime.Store(engine)
    if mode == "fuel":
        store.set_fuel(AMPLE)
    exports = wasmtime.Instance(store, module, []).exports(store)
    if mode == "ours":
        exports["gas_left"].set_value(store, wasmtime.Val.i64(AMPLE))
    start = time.thread_time()
    result = exports["run"](store, arg)
    elapsed = time.thread_time() - start
    gas_used = AMPLE - exports["gas_left"].value(store) if mode == "ours" else 0
    return elapsed, result, gas_used


def bench_workloads(quick: bool = False, reps: int = 5, names: list[str] | None = None) -> list[Row]:
    """Time each workload plain, with wasmtime fuel, and metered by us.

    The three variants run in rotation (plain, fuel, ours, plain, ...) and each keeps its best
    time, so that a noisy neighbour or a frequency change does not favour one column.
    """
    import metering

    plain_engine, fuel_engine = _engine(False), _engine(True)
    rows = []
    for name, (wat, full, small) in WORKLOADS.items():
        if names and name not in names:
            continue
        arg = small if quick else full
        original = wasmtime.wat2wasm(wat)
        variants = {
            "plain": (plain_engine, wasmtime.Module(plain_engine, original)),
            "fuel": (fuel_engine, wasmtime.Module(fuel_engine, original)),
            "ours": (plain_engine, wasmtime.Module(plain_engine, metering.meter(original))),
        }
        best = {k: math.inf for k in variants}
        results, gas = {}, 0
        for _ in range(reps):
            for mode, (engine, module) in variants.items():
                elapsed, results[mode], used = _run_once(engine, module, arg, mode)
                best[mode] = min(best[mode], elapsed)
                gas = used or gas
        rows.append(Row(name, best["plain"], best["fuel"], best["ours"], best["fuel"] / best["plain"],
                        best["ours"] / best["plain"], gas, results["plain"] == results["fuel"] == results["ours"]))
    return rows


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


# ---------------------------------------------------------------------------------------------
# Transpiler throughput


def generate_large_module(target_bytes: int = 1 << 20, seed: int = 1) -> bytes:
    """A binary module of at least `target_bytes`, from generate_large_wat."""
    estimate = target_bytes
    while True:
        wasm = wasmtime.wat2wasm(generate_large_wat(estimate, seed))
        if len(wasm) >= target_bytes:
            return wasm
        estimate = int(estimate * target_bytes / len(wasm) * 1.02) + 1


def generate_large_wat(target_bytes: int = 1 << 20, seed: int = 1) -> str:
    """A module of many functions of realistic integer code (loops, branches, calls, memory)."""
    rng = random.Random(seed)
    funcs = []
    approx = 0
    i = 0
    while approx < target_bytes:
        body = [_random_function_body(rng, i)]
        text = f"(func $f{i} (export \"f{i}\") (param $a i32) (param $b i64) (result i64)\n" \
               f"  (local $x i32) (local $y i64) (local $k i32)\n{''.join(body)})\n"
        funcs.append(text)
        approx += len(text) // 3  # binary is roughly a third of the text
        i += 1
    table = " ".join(f"$f{j}" for j in range(min(i, 64)))
    return (f"(module (type $sig (func (param i32 i64) (result i64))) (memory 1 16) (table {min(i, 64)} funcref)"
            f" (elem (i32.const 0) {table})\n" + "".join(funcs) + ")")


def _random_function_body(rng: random.Random, index: int) -> str:
    parts = []
    for _ in range(rng.randint(6, 14)):
        kind = rng.randrange(6)
        c = rng.randint(1, 1 << 20)
        if kind == 0:
            parts.append(f"(local.set $y (i64.add (i64.mul (local.get $y) (i64.const {c})) (local.get $b)))")
        elif kind == 1:
            parts.append(
                f"(block $out (loop $l (br_if $out (i32.ge_u (local.get $k) (i32.const {c % 64})))"
                f" (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $k) (i32.const 3))))"
                f" (local.set $k (i32.add (local.get $k) (i32.const 1))) (br $l)))")
        elif kind == 2:
            parts.append(
                f"(if (i32.lt_s (local.get $a) (i32.const {c})) (then (local.set $x (i32.add (local.get $x) (i32.const 7))))"
                f" (else (local.set $y (i64.rotl (local.get $y) (i64.const 9)))))")
        elif kind == 3:
            parts.append(
                f"(i32.store (i32.and (local.get $x) (i32.const 0xfffc)) (i32.add (local.get $a) (i32.const {c})))"
                f" (local.set $x (i32.load (i32.and (local.get $a) (i32.const 0xfffc))))")
        elif kind == 4 and index > 0:
            callee = rng.randrange(index)
            parts.append(f"(local.set $y (i64.add (local.get $y) (call $f{callee} (local.get $x) (local.get $y))))")
        else:
            parts.append(
                f"(block $b0 (block $b1 (block $b2 (br_table $b0 $b1 $b2 (i32.and (local.get $x) (i32.const 3))))"
                f" (local.set $x (i32.const {c}))) (local.set $y (i64.const {c}))) (drop (local.get $x))")
    parts.append("(i64.add (local.get $y) (i64.extend_i32_u (local.get $x)))")
    return "  " + "\n  ".join(parts) + "\n"


@dataclass
class Throughput:
    module_bytes: int
    functions: int
    best_seconds: float
    mb_per_s: float
    output_bytes: int


def bench_throughput(target_bytes: int = 1 << 20, reps: int = 3) -> Throughput:
    """Meter a generated ~target_bytes module; best of `reps`."""
    import metering

    wasm = generate_large_module(target_bytes)
    best, out = math.inf, b""
    for _ in range(reps):
        start = time.perf_counter()
        out = metering.meter(wasm)
        best = min(best, time.perf_counter() - start)
    wasmtime.Module(wasmtime.Engine(), out)  # the output is a valid module
    functions = len(wasmtime.Module(wasmtime.Engine(), wasm).exports)
    return Throughput(len(wasm), functions, best, len(wasm) / best / 1e6, len(out))


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (a smoke run, not figures)")
    parser.add_argument("--reps", type=int, default=7, help="runs per measurement; the best counts")
    parser.add_argument("--size", type=int, default=1 << 20, help="bytes of the throughput module")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    args = parser.parse_args(argv)
    console = Console()
    rows = bench_workloads(args.quick, args.reps)
    table = Table(title="metering run-time overhead (best of %d, CPU seconds; ratio to plain)" % args.reps)
    for col in ("workload", "plain", "wasmtime fuel", "ours", "fuel ×", "ours ×", "gas used", "same result"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    for r in rows:
        table.add_row(r.workload, f"{r.plain_s:.4f}", f"{r.fuel_s:.4f}", f"{r.ours_s:.4f}", f"{r.fuel_ratio:.3f}",
                      f"{r.ours_ratio:.3f}", f"{r.gas_used:,}", "yes" if r.result_agrees else "[red]NO[/red]")
    fuel_gm = geomean([r.fuel_ratio for r in rows])
    ours_gm = geomean([r.ours_ratio for r in rows])
    table.add_row("geometric mean", "", "", "", f"{fuel_gm:.3f}", f"{ours_gm:.3f}", "", "", style="bold")
    console.print(table)
    tp = bench_throughput(args.size)
    console.print(f"transpiler: {tp.module_bytes:,} bytes ({tp.functions} functions) metered in "
                  f"{tp.best_seconds:.3f} s = {tp.mb_per_s:.2f} MB/s (output {tp.output_bytes:,} bytes)")
    goal = ours_gm <= fuel_gm
    console.print(f"goal ours <= fuel: {'met' if goal else 'NOT met'} ({ours_gm:.3f} vs {fuel_gm:.3f}); "
                  f"stretch <= 1.10: {'met' if ours_gm <= 1.10 else 'not met'}; "
                  f"1 MB in < 1 s: {'met' if tp.best_seconds < 1 and tp.module_bytes >= 1 << 20 else 'not met'}")
    if args.json:
        args.json.write_text(json.dumps({
            "rows": [asdict(r) for r in rows], "geomean": {"fuel": fuel_gm, "ours": ours_gm},
            "throughput": asdict(tp), "quick": args.quick, "reps": args.reps,
        }, indent=1))
    return 0 if all(r.result_agrees for r in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
