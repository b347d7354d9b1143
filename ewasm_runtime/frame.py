"""A call frame: one running instance of a contract and everything its host calls see.

Frames are pooled per call depth (and per thread): a frame object owns a small ctypes
buffer that wasmtime writes the instance, export handles and trap pointers into, so
the hot path allocates nothing. `current.frame` is the frame whose wasm is running on
this thread; host functions find their frame there.
"""

from __future__ import annotations

import ctypes
import threading

from ewasm_runtime import capi

current = threading.local()

# Offsets into a frame's buffer.
_INST = 0  # wasmtime_instance_t (16 bytes)
_TRAP = 16  # wasm_trap_t* out-parameter
_NAME_PTR = 24  # unused export-name out-parameters of export_nth
_NAME_LEN = 32
_ARGS = 48  # one wasmtime_val_raw_t (main takes nothing, returns nothing)
_EXT_MEMORY = 64  # four wasmtime_extern_t (32 bytes each)
_EXT_MAIN = 96
_EXT_GAS = 128
_EXT_STACK = 160
_VAL = 192  # wasmtime_val_t for the gas global (host calls keep its kind at i64)
_VAL2 = 224  # wasmtime_val_t for the stack_height global
_BUFFER_SIZE = 256


class Frame:
    """The state of one call frame. Fields are reset by `start` for every call."""

    __slots__ = (
        # what the frame is
        "tx", "ctx", "depth", "address", "caller", "value", "data", "code", "is_static", "compiled",
        # where its gas lives: `gas` in Python; while wasm runs also in the `gas_left` global
        "gas", "gas_addr",
        # linear memory: base address and a size that is only ever refreshed upwards
        "base", "mem_size", "mem_addr",
        # results
        "return_data", "halt", "output", "reason", "error",
        # raw buffer and views into it
        "_buf", "buf_addr", "trap_ptr", "val_i64", "val_addr", "val2_i32", "val2_addr", "stack_addr",
    )

    def __init__(self, depth: int):
        self.depth = depth
        self._buf = ctypes.create_string_buffer(_BUFFER_SIZE)
        self.buf_addr = ctypes.addressof(self._buf)
        self.trap_ptr = ctypes.c_void_p.from_buffer(self._buf, _TRAP)
        self.val_addr = self.buf_addr + _VAL
        self.val_i64 = ctypes.c_int64.from_buffer(self._buf, _VAL + capi.VAL_PAYLOAD)
        self.val2_addr = self.buf_addr + _VAL2
        self.val2_i32 = ctypes.c_int32.from_buffer(self._buf, _VAL2 + capi.VAL_PAYLOAD)
        self.mem_addr = self.buf_addr + _EXT_MEMORY + capi.EXTERN_PAYLOAD
        self.tx = None

    def start(self, tx, address: bytes, caller: bytes, value: int, data: bytes, code: bytes,
              is_static: bool, gas: int) -> None:
        self.tx = tx
        self.ctx = tx.ctx
        self.address = address
        self.caller = caller
        self.value = value
        self.data = data
        self.code = code
        self.is_static = is_static
        self.gas = gas
        self.gas_addr = 0
        self.stack_addr = 0
        self.base = 0
        self.mem_size = 0
        self.return_data = b""
        self.halt = None
        self.output = b""
        self.reason = ""
        self.error = None
        self.compiled = None

    # -- raw handles inside the buffer
    @property
    def instance_addr(self) -> int:
        return self.buf_addr + _INST

    def export_into(self, index: int, slot: int) -> int:
        """Look up export `index` of the running instance into `slot`; returns the handle."""
        b = self.buf_addr
        capi.instance_export_nth(self.tx.ctx, b + _INST, index, b + _NAME_PTR, b + _NAME_LEN, b + slot)
        return b + slot + capi.EXTERN_PAYLOAD

    def read_global_i64(self, handle: int) -> int:
        capi.global_get(self.tx.ctx, handle, self.val_addr)
        return self.val_i64.value

    def read_global_i32(self, handle: int) -> int:
        capi.global_get(self.tx.ctx, handle, self.val2_addr)
        return self.val2_i32.value

    def write_global_i64(self, handle: int, value: int) -> None:
        self._buf[_VAL] = capi.KIND_I64
        self.val_i64.value = value
        err = capi.global_set(self.tx.ctx, handle, self.val_addr)
        if err:
            raise RuntimeError(capi.error_text(err))

    def write_global_i32(self, handle: int, value: int) -> None:
        self._buf[_VAL2] = capi.KIND_I32
        self.val2_i32.value = value
        err = capi.global_set(self.tx.ctx, handle, self.val2_addr)
        if err:
            raise RuntimeError(capi.error_text(err))

    def stack_height(self) -> int:
        """The metered instance's current `stack_height` (0 when it has none)."""
        if not self.stack_addr:
            if self.compiled is None or self.compiled.stack_index is None:
                return 0
            self.stack_addr = self.export_into(self.compiled.stack_index, _EXT_STACK)
        return self.read_global_i32(self.stack_addr)


class FramePool:
    """One reusable Frame per call depth."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def get(self, depth: int) -> Frame:
        frames = self.frames
        while len(frames) <= depth:
            frames.append(Frame(len(frames)))
        return frames[depth]


def thread_pool() -> FramePool:
    pool = getattr(current, "pool", None)
    if pool is None:
        pool = current.pool = FramePool()
    return pool


EXT_MAIN = _EXT_MAIN
EXT_MEMORY = _EXT_MEMORY
EXT_GAS = _EXT_GAS
ARGS = _ARGS
TRAP = _TRAP
INST = _INST
NAME_PTR = _NAME_PTR
NAME_LEN = _NAME_LEN
