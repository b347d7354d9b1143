"""Thin ctypes bindings to the wasmtime C API for the per-call hot path.

wasmtime-py's object layer costs 5-20 µs per host call (a Caller object, `Val`
boxing per parameter, a context manager per call). A contract call is a handful of
host calls, so the VM calls the same C library directly for what happens on every
call: stores, instantiation through an `InstancePre`, export lookup by index,
unchecked function calls, globals and linear-memory pointers. Everything is passed as
plain integer addresses, which is the cheapest thing ctypes can marshal.

Setup work (engine, config, compiling, serializing, linker construction) still goes
through wasmtime-py's public classes. Only this module touches `wasmtime._ffi`, so a
wasmtime upgrade is checked in one place (`check_bindings`).
"""

from __future__ import annotations

import ctypes
from ctypes import c_bool, c_int64, c_size_t, c_uint8, c_void_p

from wasmtime import _ffi as ffi

_dll = ffi.dll
_vp = c_void_p


def _fn(name: str, restype, *argtypes):
    """A prototype of one C function with the given (address-based) signature."""
    f = getattr(_dll, name)
    proto = ctypes.CFUNCTYPE(restype, *argtypes)
    return proto(ctypes.cast(f, c_void_p).value)


store_new = _fn("wasmtime_store_new", _vp, _vp, _vp, _vp)
store_context = _fn("wasmtime_store_context", _vp, _vp)
store_delete = _fn("wasmtime_store_delete", None, _vp)
store_limiter = _fn("wasmtime_store_limiter", None, _vp, c_int64, c_int64, c_int64, c_int64, c_int64)
instance_pre_instantiate = _fn("wasmtime_instance_pre_instantiate", _vp, _vp, _vp, _vp, _vp)
instantiate = instance_pre_instantiate
instance_export_nth = _fn("wasmtime_instance_export_nth", c_bool, _vp, _vp, c_size_t, _vp, _vp, _vp)
func_call_unchecked = _fn("wasmtime_func_call_unchecked", _vp, _vp, _vp, _vp, c_size_t, _vp)
global_get = _fn("wasmtime_global_get", None, _vp, _vp, _vp)
global_set = _fn("wasmtime_global_set", _vp, _vp, _vp, _vp)
memory_data = _fn("wasmtime_memory_data", c_size_t, _vp, _vp)
memory_data_size = _fn("wasmtime_memory_data_size", c_size_t, _vp, _vp)
trap_new = _fn("wasmtime_trap_new", c_size_t, ctypes.c_char_p, c_size_t)
trap_code = _fn("wasmtime_trap_code", c_bool, _vp, _vp)
trap_delete = _fn("wasm_trap_delete", None, _vp)
error_delete = _fn("wasmtime_error_delete", None, _vp)
linker_define_func_unchecked = _fn(
    "wasmtime_linker_define_func_unchecked", _vp,
    _vp, ctypes.c_char_p, c_size_t, ctypes.c_char_p, c_size_t, _vp, _vp, _vp, _vp,
)

# Host callback: (env, caller, args_and_results, count) -> trap pointer or 0.
# Each wasmtime_val_raw_t slot is 16 bytes, so parameter i lives at int64 index 2*i.
HOST_CALLBACK = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, ctypes.POINTER(c_int64), c_size_t)

VAL_SIZE = ctypes.sizeof(ffi.wasmtime_val_t)
EXTERN_SIZE = ctypes.sizeof(ffi.wasmtime_extern_t)
EXTERN_PAYLOAD = ffi.wasmtime_extern_t.of.offset  # the func/memory/global handle inside an extern
VAL_PAYLOAD = ffi.wasmtime_val_t.of.offset
KIND_I32 = 0
KIND_I64 = 1

TRAP_STACK_OVERFLOW = 0

string_at = ctypes._string_at  # the C function itself, not the Python wrapper around it
memmove = ctypes.memmove


def function_address(name: str) -> int:
    """The address of one function of wasmtime's C library (for the native EEI)."""
    return ctypes.cast(getattr(_dll, name), c_void_p).value


def layout() -> dict[str, int]:
    """The sizes and offsets the native EEI lays out by hand, as this wasmtime has them."""
    return {"instance": ctypes.sizeof(ffi.wasmtime_instance_t), "extern": EXTERN_SIZE, "val": VAL_SIZE,
            "extern_payload": EXTERN_PAYLOAD, "val_payload": VAL_PAYLOAD,
            "val_raw": ctypes.sizeof(ffi.wasmtime_val_raw_t)}


def address(obj) -> int:
    """The integer address of a ctypes object or pointer (0 for NULL)."""
    return ctypes.cast(obj, c_void_p).value or 0


def error_text(err: int) -> str:
    """The message of a wasmtime_error_t, which is then freed."""
    return _take_message(ffi.wasmtime_error_message, ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)), err, error_delete)


def trap_text(trap: int) -> str:
    """The message of a wasm_trap_t (the trap itself is not freed)."""
    return _take_message(ffi.wasm_trap_message, ctypes.cast(trap, ctypes.POINTER(ffi.wasm_trap_t)), trap, lambda _: None)


def _take_message(getter, typed_ptr, raw: int, deleter) -> str:
    msg = ffi.wasm_byte_vec_t()
    getter(typed_ptr, ctypes.byref(msg))
    # The C API counts the message's terminating NUL in its size.
    text = ctypes.string_at(msg.data, msg.size).decode("utf-8", "replace").rstrip("\x00")
    ffi.wasm_byte_vec_delete(ctypes.byref(msg))
    deleter(raw)
    return text


def trap_code_of(trap: int) -> int | None:
    """The wasmtime trap code of a trap, or None for a trap raised by a host function."""
    code = c_uint8(255)
    if trap_code(trap, ctypes.addressof(code)):
        return code.value
    return None


def check_bindings() -> None:
    """Fail loudly at import when the wasmtime build lacks what this module relies on."""
    assert ctypes.sizeof(ffi.wasmtime_val_raw_t) == 16, "wasmtime_val_raw_t layout changed"
    assert ctypes.sizeof(ffi.wasmtime_instance_t) == 16, "wasmtime_instance_t layout changed"


check_bindings()
