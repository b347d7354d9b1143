"""How much native stack wasmtime uses per unit of the deterministic stack limit.

The transpiler charges each activation its frame cost in stack units (per-frame
constant, params, locals, peak operand height, slack: metering/stack_limit.py), and the
limit must fire before wasmtime's own `max_wasm_stack` would, on every machine, with a
margin. This measures the other side of that bargain, on the chain's engine settings:

1. bytes per unit, by recursion pattern: each pattern recurses (metered, with no
   deterministic limit) until wasmtime's native limit traps, and the depth it reached
   gives bytes per frame (max_wasm_stack / depth) and per unit. Params, locals and
   operands are made live across the call, so the compiler cannot fold them away;
2. bytes per nested contract call: a contract that calls itself N levels deep through
   the host, then recurses in wasm as deep as the stack allows (binary search). What N
   levels take from the bottom's depth is what each level's host frames cost;
3. a host call at the bottom: the same recursion ending in a host function that runs
   Python (getExternalBalance), against one ending in nothing.

From all three, the largest stack limit (in units) that still fires first with a margin
of 2x when 1,024 levels of nested calls share the stack and the deepest frame calls the
host, and how deep a small recursive function may then go. The units are those of the
cost table given (`--costs`, a file or a shipped version; the default table without).
Prints a table; `--json FILE` writes the figures.

    python tools/measure_stack.py [--levels 1000] [--costs default-v1] [--json stack.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wasmtime  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import metering  # noqa: E402
from ewasm_runtime import Environment, MemoryState, Message, Runtime, Status, execute  # noqa: E402
from ewasm_runtime.engine import MAX_WASM_STACK, make_config  # noqa: E402
from metering.transpile import decode, function_frame_costs  # noqa: E402

MAX_CALL_DEPTH = 1024
MARGIN = 2


def recursion(params: int = 1, locals_: int = 0, operands: int = 0) -> tuple[str, int]:
    """A function that counts its depth in a global and calls itself with every param,
    local and operand live across the call (loaded from memory, summed after)."""
    param_types = " ".join(["i64"] * params)
    local_decl = f"(local {' '.join(['i64'] * locals_)})" if locals_ else ""
    fill = " ".join(f"(local.set {params + i} (i64.load offset={8 * i} (i32.const 0)))" for i in range(locals_))
    args = " ".join(f"(i64.add (local.get {i}) (i64.const 1))" for i in range(params))
    pushes = " ".join(f"(i64.load offset={8 * i} (i32.const 0))" for i in range(operands))
    adds = " ".join(["(i64.add)"] * operands)
    sums = " ".join(f"(local.get {i}) (i64.add)" for i in range(params + locals_))
    return f'''(module (memory 1) (global $depth (export "depth") (mut i32) (i32.const 0))
      (func $f (export "f") (param {param_types}) (result i64) {local_decl}
        (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
        {fill} {pushes} (call $f {args}) {adds} {sums}))''', params


INDIRECT = '''(module (memory 1) (global $depth (export "depth") (mut i32) (i32.const 0))
  (type $t (func (param i64) (result i64))) (table 2 funcref) (elem (i32.const 0) $a $b)
  (func $a (export "f") (param i64) (result i64)
    (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
    (i64.add (call_indirect (type $t) (local.get 0) (i32.const 1)) (local.get 0)))
  (func $b (param i64) (result i64)
    (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
    (i64.add (call_indirect (type $t) (local.get 0) (i32.const 0)) (local.get 0))))'''

PATTERNS = {
    "direct, 1 param": recursion(1),
    "call_indirect": (INDIRECT, 1),
    "8 params": recursion(8),
    "1,000 params": recursion(1000),
    "100 locals": recursion(1, 100),
    "1,000 locals": recursion(1, 1000),
    "200 operands": recursion(1, 0, 200),
    "4 params, 30 locals, 30 operands": recursion(4, 30, 30),
}


def probe(engine: wasmtime.Engine, wat: str, params: int, costs: metering.CostTable) -> dict:
    """Recurse until wasmtime's native limit: depth, units and bytes per frame."""
    wasm = metering.meter(wat, costs=costs, stack_limit=2**31 - 1)
    units = max(function_frame_costs(decode(wat)[0], costs))
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, wasmtime.Module(engine, wasm), []).exports(store)
    exports["gas_left"].set_value(store, wasmtime.Val.i64(10**15))
    try:
        exports["f"](store, *([0] * params))
    except wasmtime.Trap as trap:
        assert trap.trap_code == wasmtime.TrapCode.STACK_OVERFLOW, trap
    depth = exports["depth"].value(store)
    return {"depth": depth, "units_per_frame": units, "bytes_per_frame": MAX_WASM_STACK / depth,
            "bytes_per_unit": MAX_WASM_STACK / (depth * units)}


NESTED = '''(module
  (import "ethereum" "callDataCopy" (func $data (param i32 i32 i32)))
  (import "ethereum" "getAddress" (func $address (param i32)))
  (import "ethereum" "getGasLeft" (func $gas (result i64)))
  (import "ethereum" "call" (func $call (param i64 i32 i32 i32 i32) (result i32)))
  (import "ethereum" "revert" (func $revert (param i32 i32)))
  (import "ethereum" "getExternalBalance" (func $balance (param i32 i32)))
  (memory (export "memory") 1)
  (func $down (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then BOTTOM (i64.const 0))
      (else (i64.add (local.get 0) (call $down (i64.sub (local.get 0) (i64.const 1)))))))
  ;; calldata: levels still to nest (i32), then the wasm depth to reach at the bottom (i32)
  (func (export "main")
    (call $data (i32.const 0) (i32.const 0) (i32.const 8))
    (if (i32.load (i32.const 0))
      (then
        (i32.store (i32.const 0) (i32.sub (i32.load (i32.const 0)) (i32.const 1)))
        (call $address (i32.const 100))
        (if (call $call (call $gas) (i32.const 100) (i32.const 200) (i32.const 0) (i32.const 8))
          (then (call $revert (i32.const 0) (i32.const 0)))))
      (else (drop (call $down (i64.extend_i32_u (i32.load (i32.const 4)))))))))'''


HOST_CALL = "(call $balance (i32.const 100) (i32.const 300))"


def deepest(levels: int, bottom: str = "", native: bool | None = None) -> int:
    """The deepest wasm recursion that still fits below `levels` nested calls, the
    deepest frame running `bottom` (say, a host call) before it returns; `native` picks
    the host interface whose frames sit between the levels (None: the default)."""
    runtime, me = Runtime(metering=False, native=native), b"\xaa" * 20
    env = Environment(coinbase=bytes(20), number=1, timestamp=1, gas_limit=10**18, difficulty=0)
    code = bytes(wasmtime.wat2wasm(NESTED.replace("BOTTOM", bottom)))

    def fits(depth: int) -> bool:
        state = MemoryState()
        state.put(me, code=code)
        state.put(b"\x01" * 20, balance=10**30)
        data = levels.to_bytes(4, "little") + depth.to_bytes(4, "little")
        result = execute(Message(b"\x01" * 20, me, data, gas=10**17), state, env, runtime)
        if result.status not in (Status.SUCCESS, Status.REVERT, Status.STACK_LIMIT):
            raise RuntimeError(f"nested probe at {levels} levels: {result.status} {result.error}")
        return result.status is Status.SUCCESS

    low, high = 0, 1 << 20
    while low + 1 < high:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def measure(levels: int, costs: metering.CostTable | None = None) -> dict:
    costs = costs if costs is not None else metering.load_costs()
    engine = wasmtime.Engine(make_config())
    patterns = {name: probe(engine, wat, params, costs) for name, (wat, params) in PATTERNS.items()}
    alone, nested, host_bottom = deepest(0), deepest(levels), deepest(0, HOST_CALL)
    frame = MAX_WASM_STACK / alone  # bytes of one frame of $down
    per_level = (alone - nested) * frame / levels
    host_call = max(0.0, (alone - host_bottom) * frame)
    # Nodes without the C extension run the reference EEI, whose frames are bigger.
    reference_level = (deepest(0, native=False) - deepest(levels, native=False)) * frame / levels
    worst = max(p["bytes_per_unit"] for p in patterns.values())
    budget = MAX_WASM_STACK / MARGIN - per_level * MAX_CALL_DEPTH - host_call
    limit = max(0, int(budget / worst))
    small = patterns["direct, 1 param"]["units_per_frame"]
    return {"costs": costs.version, "max_wasm_stack": MAX_WASM_STACK, "patterns": patterns,
            "nested_levels": levels, "bottom_depth_alone": alone, "bottom_depth_nested": nested,
            "host_bytes_per_level": per_level, "host_call_at_the_bottom_bytes": host_call,
            "reference_host_bytes_per_level": reference_level,
            "margin_with_the_reference_eei": MAX_WASM_STACK / (costs.stack_limit * worst
                                                               + MAX_CALL_DEPTH * reference_level),
            "worst_bytes_per_unit": worst, "current_limit": costs.stack_limit,
            "largest_safe_limit": limit, "small_function_frames_at_that_limit": limit // small,
            "small_function_frames_at_the_current_limit": costs.stack_limit // small}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, default=1000, help="nested calls for the host-frame probe")
    parser.add_argument("--costs", metavar="TABLE", help="a cost table file or shipped version (default: the default)")
    parser.add_argument("--json", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    figures = measure(args.levels, metering.load_costs(args.costs) if args.costs else None)
    table = Table(title=f"native stack per unit of {figures['costs']} (max_wasm_stack {MAX_WASM_STACK >> 20} MiB)")
    for column in ("pattern", "depth", "units/frame", "bytes/frame", "bytes/unit"):
        table.add_column(column, justify="right" if column != "pattern" else "left")
    for name, p in figures["patterns"].items():
        table.add_row(name, f"{p['depth']:,}", str(p["units_per_frame"]), f"{p['bytes_per_frame']:.0f}",
                      f"{p['bytes_per_unit']:.2f}")
    console = Console()
    console.print(table)
    console.print(f"nested calls: {figures['nested_levels']} levels take the bottom's recursion from "
                  f"{figures['bottom_depth_alone']:,} to {figures['bottom_depth_nested']:,} frames: "
                  f"{figures['host_bytes_per_level']:.0f} bytes of host frames per level; a host call at the "
                  f"bottom takes {figures['host_call_at_the_bottom_bytes']:.0f} bytes; with the reference EEI "
                  f"{figures['reference_host_bytes_per_level']:.0f} bytes per level, which leaves the cost table's "
                  f"limit a margin of {figures['margin_with_the_reference_eei']:.2f}x")
    console.print(f"worst case {figures['worst_bytes_per_unit']:.2f} bytes/unit; with {MAX_CALL_DEPTH} levels and a "
                  f"{MARGIN}x margin the largest safe limit is {figures['largest_safe_limit']:,} units "
                  f"({figures['small_function_frames_at_that_limit']:,} frames of a small function); "
                  f"the cost table's is {figures['current_limit']:,} "
                  f"({figures['small_function_frames_at_the_current_limit']:,} frames)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
