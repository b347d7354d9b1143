"""Measure instruction classes on wasmtime and propose cost-table weights.

Each class is timed as a long dependent chain of its representative instruction inside
a loop, on un-metered wasmtime, minus the same loop with an empty body. Weights are the
measured times in units of the cheapest ALU operation, so that one gas is a stable
amount of machine time. `--write` stores the proposal as the default table (keeping the
dynamic charges and limits, which are policy, not measurement).

    python tools/calibrate_costs.py [--repeat 5] [--write] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

import wasmtime
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metering.costs import DEFAULT_PATH  # noqa: E402

CHAIN = 64  # instructions per loop iteration
ITERATIONS = 2_000_000

# class -> (setup before the chain, one link of the chain, instructions of the class per
# link, ALU instructions per link). Links mix in the loop counter $i so the compiler cannot
# fold the chain into one constant operation; the ALU part is measured and subtracted.
KERNELS: dict[str, tuple[str, str, int, int]] = {
    "alu": ("local.get $x", "local.get $i i32.xor i32.const 5 i32.rotl", 2, 0),
    "mul": ("local.get $x", "local.get $i i32.mul local.get $i i32.xor", 1, 1),
    "div": ("local.get $x", "i32.const 7 i32.div_u local.get $i i32.xor", 1, 1),
    "global": ("", "global.get $g local.get $i i32.xor global.set $g", 2, 1),
    "load": ("local.get $x", "i32.load local.get $i i32.xor i32.const 0xfffc i32.and", 1, 2),
    "store": ("", "local.get $i i32.const 0xfffc i32.and local.get $x i32.store", 1, 1),
    "branch": ("", "(block (br_if 0 (i32.eqz (local.get $i))))", 1, 1),
    "br_table": ("", "(block (block (br_table 0 1 (i32.and (local.get $i) (i32.const 1)))))", 1, 1),
    "call": ("", "local.get $x call $id local.get $i i32.xor local.set $x", 1, 1),
    "call_indirect": ("", "local.get $x i32.const 0 call_indirect (type $t) local.get $i i32.xor local.set $x", 1, 1),
    "memory": ("", "memory.size local.get $x i32.add local.set $x", 1, 1),
    "table": ("", "i32.const 0 table.get 0 drop", 1, 0),
}
# Classes priced by policy rather than measurement: they compile to register moves or
# immediates, so they cost what one ALU operation costs.
POLICY = {"const": 1, "local": 1}


def kernel_module(setup: str, link: str, repeat: int) -> bytes:
    """A loop running `repeat` links per iteration, ITERATIONS times."""
    chain = " ".join([link] * repeat)
    produces = setup != ""
    body = f"{setup} {chain} {'local.set $x' if produces else ''}"
    return wasmtime.wat2wasm(f"""(module
      (type $t (func (param i32) (result i32)))
      (memory 1) (global $g (mut i32) (i32.const 0)) (table 1 funcref) (elem (i32.const 0) $id)
      (func $id (param i32) (result i32) (local.get 0))
      (func (export "run") (param $n i32) (result i32) (local $i i32) (local $x i32)
        (local.set $x (i32.const 1))
        (loop $l {body}
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $x)))""")


def time_module(engine: wasmtime.Engine, wasm: bytes, repeat: int) -> float:
    """Median seconds of one run over ITERATIONS."""
    store = wasmtime.Store(engine)
    run = wasmtime.Instance(store, wasmtime.Module(engine, wasm), []).exports(store)["run"]
    run(store, 1000)  # warm up
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        run(store, ITERATIONS)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def measure(repeat: int) -> dict[str, float]:
    """Nanoseconds per instruction of each class."""
    engine = wasmtime.Engine()
    baseline = time_module(engine, kernel_module("", "", 0), repeat)
    per_link_ns = {}
    for name, (setup, link, _, _) in KERNELS.items():
        elapsed = time_module(engine, kernel_module(setup, link, CHAIN), repeat) - baseline
        per_link_ns[name] = max(elapsed, 0.0) / (ITERATIONS * CHAIN) * 1e9
    alu = per_link_ns["alu"] / KERNELS["alu"][2]
    out = {}
    for name, (_, _, count, alu_count) in KERNELS.items():
        out[name] = max(per_link_ns[name] - alu_count * alu, 0.0) / count
    return out


def propose(ns: dict[str, float]) -> dict[str, int]:
    """Weights in units of the ALU operation (at least 1 for any class that does work)."""
    unit = ns["alu"] or min(v for v in ns.values() if v > 0)
    weights = {name: max(1, round(value / unit)) for name, value in ns.items()}
    weights.update(POLICY)
    return weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="store the proposal as metering/costs/default.json")
    parser.add_argument("--json", metavar="OUT", help="write the measurements and proposal as JSON")
    args = parser.parse_args(argv)
    ns = measure(args.repeat)
    weights = propose(ns)
    table = json.loads(DEFAULT_PATH.read_text())
    rows = Table(title=f"instruction classes on wasmtime {metadata.version('wasmtime')}")
    for col in ("class", "ns / instr", "proposed gas", "current gas"):
        rows.add_column(col, justify="right")
    for name in weights:
        measured = f"{ns[name]:.3f}" if name in ns else "policy"
        rows.add_row(name, measured, str(weights[name]), str(table["classes"][name]["gas"]))
    Console().print(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"ns_per_instruction": ns, "proposed": weights}, indent=2))
    if args.write:
        for name, gas in weights.items():
            table["classes"][name]["gas"] = gas
        DEFAULT_PATH.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {DEFAULT_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
