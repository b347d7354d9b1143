"""Run modules on real wasmtime and report what a host would see: result, gas, trap kind."""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from ewasm_runtime.engine import configure_native_stack


def _engine() -> wasmtime.Engine:
    """wasmtime's defaults with the chain engine's native stack (the cost table's stack
    limit is sized for it)."""
    cfg = wasmtime.Config()
    configure_native_stack(cfg)
    return wasmtime.Engine(cfg)


ENGINE = _engine()


@dataclass(frozen=True)
class Outcome:
    value: object  # the result, or None after a trap
    status: str  # "ok", "out_of_gas", "stack_limit", "trap"
    gas_left: int | None
    memory: bytes | None  # first 64 KiB of memory, when exported


def run(wasm: bytes, export: str, args=(), gas: int | None = None, imports=()) -> Outcome:
    """Instantiate fresh and call one export with `gas` in gas_left (when metered)."""
    store = wasmtime.Store(ENGINE)
    instance = wasmtime.Instance(store, wasmtime.Module(ENGINE, wasm), list(imports))
    exports = instance.exports(store)
    metered = "gas_left" in exports
    if metered and gas is not None:
        exports["gas_left"].set_value(store, wasmtime.Val.i64(gas))
    try:
        value = exports[export](store, *args)
        status = "ok"
    except wasmtime.Trap:
        value, status = None, "trap"
    except wasmtime.WasmtimeError as err:  # stack exhaustion surfaces as a trap-like error
        value, status = None, "trap" if "wasm trap" in str(err) or "backtrace" in str(err) else "error"
    gas_left = exports["gas_left"].value(store) if metered else None
    if status == "trap" and metered:
        if gas_left == -1:
            status = "out_of_gas"
        elif "stack_height" in exports and exports["stack_height"].value(store) == -1:
            status = "stack_limit"
    memory = None
    if "memory" in exports:
        mem = exports["memory"]
        memory = bytes(mem.read(store, 0, min(65536, mem.data_len(store))))
    return Outcome(value, status, gas_left, memory)
