"""A call frame: one running instance of a contract and everything its host calls see.

Frames are pooled per call depth (and per thread): a frame object owns a small ctypes
buffer that wasmtime writes the instance, export handles and trap pointers into, so
the hot path allocates nothing. `current.frame` is the frame whose wasm is running on
this thread; host functions find their frame there.

This is the reference frame, served by eei.py. The native one (`_native.Frame`) has the
same attributes and methods (`start`, `run`, `failure`, `gas_global`, `stack_height`),
and the interpreter drives both alike.
"""

from __future__ import annotations

import ctypes
import threading

from ewasm_runtime import capi
from ewasm_runtime.message import Status

current = threading.local()

# What `Frame.run` reports. RUN_DONE: `halt` says how the frame ended (a host function
# ended it, or main returned: SUCCESS). The others leave wasmtime's error or trap in
# `failure()` for the interpreter to classify.
RUN_DONE, RUN_ERROR, RUN_TRAP, RUN_INSTANTIATE = range(4)

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
        "stack_index", "_failure",
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
        self.stack_index = -1
        self._failure = (0, 0)

    def run(self, pre: int, memory_index: int, main_index: int, gas_index: int, stack_index: int,
            stack_start: int) -> int:
        """Instantiate through the InstancePre `pre` and call main; returns a RUN_ kind.

        gas_index -1: not metered (gas stays in `self.gas`). stack_start: the caller's
        stack height, which a metered callee starts from."""
        ctx = self.ctx
        b = self.buf_addr
        self.trap_ptr.value = None
        parent = getattr(current, "frame", None)
        current.frame = None  # no host call belongs to a frame while its instance is set up
        err = capi.instantiate(pre, ctx, b + _INST, b + _TRAP)
        current.frame = parent
        if err or self.trap_ptr.value:
            self._failure = (err or 0, self.trap_ptr.value or 0)
            return RUN_INSTANTIATE
        name_ptr, name_len = b + _NAME_PTR, b + _NAME_LEN
        _export_nth(ctx, b + _INST, memory_index, name_ptr, name_len, b + _EXT_MEMORY)
        _export_nth(ctx, b + _INST, main_index, name_ptr, name_len, b + _EXT_MAIN)
        mem = self.mem_addr
        self.base = _memory_data(ctx, mem)
        self.mem_size = _memory_data_size(ctx, mem)
        self.stack_index = stack_index
        if gas_index >= 0:
            _export_nth(ctx, b + _INST, gas_index, name_ptr, name_len, b + _EXT_GAS)
            self.gas_addr = b + _EXT_GAS + _EXTERN_PAYLOAD
            self.write_global_i64(self.gas_addr, self.gas)
            if stack_start and stack_index >= 0:
                self.stack_height()  # resolves stack_addr
                self.write_global_i32(self.stack_addr, stack_start)
        current.frame = self
        try:
            err = capi.func_call_unchecked(ctx, b + _EXT_MAIN + _EXTERN_PAYLOAD, b + _ARGS, 1, b + _TRAP)
        finally:
            current.frame = parent
        trap = self.trap_ptr.value
        self.trap_ptr.value = None
        if self.halt is not None:  # a host function ended the frame
            if err:
                capi.error_delete(err)
            if trap:
                capi.trap_delete(trap)
            return RUN_DONE
        if err or trap:
            self._failure = (err or 0, trap or 0)
            return RUN_ERROR if err else RUN_TRAP
        self.halt = Status.SUCCESS
        if self.gas_addr:
            self.gas = self.read_global_i64(self.gas_addr)
        return RUN_DONE

    def failure(self) -> tuple[int, int]:
        """The (wasmtime_error_t, wasm_trap_t) addresses of the last failed run; the
        caller frees them."""
        failure, self._failure = self._failure, (0, 0)
        return failure

    def gas_global(self) -> int:
        """The gas as the running metered instance sees it (its gas_left global)."""
        return self.read_global_i64(self.gas_addr) if self.gas_addr else self.gas

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
            if self.stack_index < 0:  # set by run once the instance exists
                return 0
            self.stack_addr = self.export_into(self.stack_index, _EXT_STACK)
        return self.read_global_i32(self.stack_addr)


class FramePool:
    """One reusable frame (of one frame type) per call depth."""

    __slots__ = ("frames", "frame_type")

    def __init__(self, frame_type: type = Frame) -> None:
        self.frames: list = []
        self.frame_type = frame_type

    def get(self, depth: int):
        frames = self.frames
        while len(frames) <= depth:
            frames.append(self.frame_type(len(frames)))
        return frames[depth]


def thread_pool(frame_type: type = Frame) -> FramePool:
    """This thread's pool of frames of `frame_type`."""
    pools = getattr(current, "pools", None)
    if pools is None:
        pools = current.pools = {}
    pool = pools.get(frame_type)
    if pool is None:
        pool = pools[frame_type] = FramePool(frame_type)
    return pool


_export_nth = capi.instance_export_nth
_memory_data = capi.memory_data
_memory_data_size = capi.memory_data_size
_EXTERN_PAYLOAD = capi.EXTERN_PAYLOAD
