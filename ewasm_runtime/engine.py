"""The one wasmtime Engine of the process, configured for consensus.

Everything that could make two nodes disagree is off: SIMD, relaxed SIMD, threads,
shared memory, memory64, multi-memory, GC and exceptions. Fuel and epochs are off too:
gas is metered by our own transpiler, not by wasmtime. NaN canonicalization is on for
good measure, although metered modules contain no floats at all.

The native stack: nested contract calls re-enter wasm through Python, about 3 KiB of
native stack per level, and wasmtime counts the stack of all nested levels of a store
against `max_wasm_stack`. 6 MiB covers 1024 levels plus the deterministic stack limit's
worth of wasm frames and stays inside the 8 MiB native stack of Linux threads, so
`execute` must run on a thread with at least `NATIVE_STACK_BYTES` of stack (the Linux
default for the main thread and for `threading` threads).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import threading

import wasmtime
from wasmtime import _ffi as ffi

MAX_WASM_STACK = 6 << 20
# Instances come from a pool: a fresh instance then costs ~5 µs instead of ~20 µs (its
# memory slot and page tables are reused, the first 64 KiB are zeroed instead of
# re-faulted). The pool must never run dry, or whether a call succeeds would depend on
# what else the process is doing: each transaction may hold MAX_INSTANCES_PER_TX
# instances (enforced per store, deterministically) and at most MAX_CONCURRENT_TX
# transactions run at once (enforced by `execute`).
MAX_INSTANCES_PER_TX = 2048
MAX_CONCURRENT_TX = 4
POOL_SLOTS = MAX_INSTANCES_PER_TX * MAX_CONCURRENT_TX
KEEP_RESIDENT = 64 << 10
NATIVE_STACK_BYTES = 8 << 20
WASMTIME_VERSION = importlib.metadata.version("wasmtime")

SETTINGS: dict[str, object] = {
    "wasm_simd": False,
    "wasm_relaxed_simd": False,
    "wasm_threads": False,
    "shared_memory": False,
    "wasm_memory64": False,
    "wasm_multi_memory": False,
    "wasm_gc": False,
    "wasm_function_references": False,
    "wasm_exceptions": False,
    "wasm_tail_call": False,
    "wasm_wide_arithmetic": False,
    "wasm_custom_page_sizes": False,
    "wasm_stack_switching": False,
    "wasm_bulk_memory": True,
    "wasm_multi_value": True,
    "wasm_reference_types": True,  # needed by clang's call_indirect encoding; no GC involved
    "consume_fuel": False,
    "epoch_interruption": False,
    "cranelift_nan_canonicalization": True,
    "cranelift_opt_level": "speed",
    "memory_may_move": False,  # linear memory never moves, so host pointers stay valid
    "max_wasm_stack": MAX_WASM_STACK,
    "pooling": {"slots": POOL_SLOTS, "keep_resident": KEEP_RESIDENT},
}

# Names the compiled code: a serialized artifact is only reused by the same engine.
FINGERPRINT = hashlib.sha256(
    json.dumps([SETTINGS, WASMTIME_VERSION, platform.machine()], sort_keys=True).encode()
).hexdigest()[:16]

_engine: wasmtime.Engine | None = None
_lock = threading.Lock()


def configure_native_stack(cfg: wasmtime.Config) -> None:
    """Give `cfg` the chain engine's max_wasm_stack, which the cost table's stack limit
    is sized for (tools/measure_stack.py); other engines that run metered code use it too."""
    # wasmtime refuses a max_wasm_stack above the async stack size, even when async is off.
    ffi.wasmtime_config_async_stack_size_set(cfg.ptr(), MAX_WASM_STACK + (2 << 20))
    cfg.max_wasm_stack = MAX_WASM_STACK


def make_config() -> wasmtime.Config:
    cfg = wasmtime.Config()
    configure_native_stack(cfg)
    for name, value in SETTINGS.items():
        if name not in ("pooling", "max_wasm_stack"):
            setattr(cfg, name, value)
    pool = ffi.wasmtime_pooling_allocation_config_new()
    ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, POOL_SLOTS)
    ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, POOL_SLOTS)
    ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, POOL_SLOTS)
    ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, KEEP_RESIDENT)
    ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(pool, KEEP_RESIDENT)
    ffi.wasmtime_pooling_allocation_strategy_set(cfg.ptr(), pool)
    ffi.wasmtime_pooling_allocation_config_delete(pool)
    return cfg


def engine() -> wasmtime.Engine:
    """The process-wide engine (created on first use)."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = wasmtime.Engine(make_config())
    return _engine


def engine_address() -> int:
    from ewasm_runtime.capi import address

    return address(engine().ptr())
