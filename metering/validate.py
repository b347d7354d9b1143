"""Validation by wasmtime's own validator: the WebAssembly specification's rules (types,
alignment, index ranges, unreachable code that does not type-check) that the transpiler's
decoder does not check, and should not restate.

It runs after the determinism check, on an engine with the proposals enabled whose
features that check refuses by name (floats and SIMD, threads, tail calls, several
memories): a module that uses them is reported with every violation, never as one
"invalid" line, and a module that passes the check is validated by the rules of the
features contracts may use.
"""

from __future__ import annotations

from functools import lru_cache

from metering.errors import InvalidModule

_PROPOSALS = ("wasm_simd", "wasm_relaxed_simd", "wasm_threads", "wasm_tail_call", "wasm_multi_memory",
              "wasm_bulk_memory", "wasm_multi_value", "wasm_reference_types")
# Off, as on the chain's engine: GC's rules would let a constant expression read a global
# the module defines, which Wasm 2.0 (and the chain) calls invalid.
_OFF = ("wasm_gc", "wasm_function_references", "wasm_exceptions", "wasm_memory64", "wasm_custom_page_sizes",
        "wasm_wide_arithmetic", "wasm_stack_switching", "wasm_component_model")


@lru_cache(maxsize=1)
def _engine():
    import wasmtime

    config = wasmtime.Config()
    for proposal in _PROPOSALS:
        setattr(config, proposal, True)
    for proposal in _OFF:
        setattr(config, proposal, False)
    return wasmtime.Engine(config)


def validate(wasm: bytes) -> None:
    """Nothing if `wasm` is a valid module; InvalidModule with the validator's message."""
    import wasmtime

    try:
        wasmtime.Module.validate(_engine(), wasm)
    except wasmtime.WasmtimeError as err:
        raise InvalidModule(_message(err)) from None


def _message(err: Exception) -> str:
    """The validator's reason in one line (wasmtime adds a backtrace-like context)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    reasons = [line for line in lines if not line.lower().startswith(("caused by", "stack backtrace"))]
    return "; ".join(dict.fromkeys(reasons or lines or ["rejected by the validator"]))
