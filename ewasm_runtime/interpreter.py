"""Running messages: one call or create frame, nested through the host interface.

`process_call` and `process_create` are what a transaction and the EEI's `call*` and
`create` functions use. Each frame takes a journal snapshot and rolls back to it unless
it succeeds; each runs a fresh instance in the transaction's wasmtime store. Failures
other than REVERT consume all of the frame's gas.
"""

from __future__ import annotations

from dataclasses import dataclass

from ewasm_runtime import capi, engine as eng, gas as G
from ewasm_runtime.cache import CompiledCode, InvalidCode
from ewasm_runtime.frame import RUN_DONE, RUN_ERROR, RUN_INSTANTIATE, Frame, thread_pool
from ewasm_runtime.journal import JournaledState
from ewasm_runtime.message import Environment, IncomingReceipt, Status
from ewasm_runtime.scope import ScopeViolation, in_scope

SUCCESS, REVERT, OUT_OF_GAS, OUT_OF_RANGE, STACK_LIMIT, TRAP_, INVALID_CODE = (
    Status.SUCCESS, Status.REVERT, Status.OUT_OF_GAS, Status.OUT_OF_RANGE,
    Status.STACK_LIMIT, Status.TRAP, Status.INVALID_CODE,
)

# Instances live until the transaction's store is dropped; this bounds them (and their
# memories) per transaction. Reaching it fails the call that needed one more instance.
MAX_INSTANCES_PER_TX = eng.MAX_INSTANCES_PER_TX


@dataclass(slots=True)
class FrameResult:
    status: Status
    gas_left: int
    output: bytes = b""
    created: bytes | None = None
    reason: str = ""


class TxContext:
    """What all frames of one transaction share: journal, block, store, runtime."""

    __slots__ = ("runtime", "journal", "env", "origin", "gas_price", "scope", "incoming", "store", "ctx", "pool",
                 "metering", "native_precompiles")

    def __init__(self, runtime, journal: JournaledState, env: Environment, origin: bytes,
                 gas_price: int, scope, incoming: IncomingReceipt | None = None):
        self.runtime = runtime
        self.incoming = incoming
        self.journal = journal
        self.env = env
        self.origin = origin
        self.gas_price = gas_price
        self.scope = scope
        self.metering = runtime.metering
        self.pool = thread_pool(runtime.frame_type)
        self.native_precompiles = runtime.native_precompiles
        self.store, self.ctx = runtime.open_store(runtime.engine_address, MAX_INSTANCES_PER_TX)

    def close(self) -> None:
        """Drop the store and with it every instance of the transaction."""
        if self.store:
            self.runtime.close_store(self.store)
            self.store = self.ctx = None

    def check_scope(self, address: bytes) -> None:
        if self.scope is not None and not in_scope(address, self.scope):
            raise ScopeViolation(address)


def open_store(engine_address: int, instances: int) -> tuple[int, int]:
    """A transaction's wasmtime store (and its context), limited to `instances`
    instances and memories, so that the instance pool never runs dry."""
    store = capi.store_new(engine_address, None, None)
    capi.store_limiter(store, -1, -1, instances, -1, instances)
    return store, capi.store_context(store)


def close_store(store: int) -> None:
    capi.store_delete(store)


def process_call(tx: TxContext, *, caller: bytes, to: bytes, code_address: bytes, value: int,
                 transfer: bool, data: bytes, gas: int, depth: int, is_static: bool,
                 stack_start: int = 0) -> FrameResult:
    """Run a message call; the caller has charged for it and checked depth and balance."""
    journal = tx.journal
    snap = journal.snapshot()
    if transfer:
        journal.transfer(caller, to, value)
    precompile = tx.runtime.precompiles.get(code_address)
    if precompile is not None:
        cost = precompile.gas(data)
        if cost > gas:
            journal.revert(snap)
            return FrameResult(OUT_OF_GAS, 0, reason=f"precompile {precompile.name} needs {cost} gas")
        return FrameResult(SUCCESS, gas - cost, precompile.run(data))
    code = journal.get_code(code_address)
    if not code:
        return FrameResult(SUCCESS, gas)
    frame = tx.pool.get(depth)
    frame.start(tx, to, caller, value, data, code, is_static, gas)
    try:
        compiled = tx.runtime.compiled(code, meter=False)
    except InvalidCode as err:
        frame.halt, frame.reason = INVALID_CODE, str(err)
    else:
        run_frame(tx, frame, compiled, stack_start)
    return _finish(journal, snap, frame)


def process_create(tx: TxContext, *, caller: bytes, address: bytes, value: int, init_code: bytes,
                   gas: int, depth: int) -> FrameResult:
    """Create a contract at `address` (derived and scope-checked by the caller)."""
    journal = tx.journal
    if journal.get_nonce(address) or journal.get_code(address):
        return FrameResult(TRAP_, 0, reason=f"an account already exists at 0x{address.hex()}")
    snap = journal.snapshot()
    journal.create_account(address)
    journal.transfer(caller, address, value)
    frame = tx.pool.get(depth)
    frame.start(tx, address, caller, value, b"", init_code, False, gas)
    try:
        compiled = tx.runtime.compiled(init_code, meter=tx.metering)
    except InvalidCode as err:
        frame.halt, frame.reason = INVALID_CODE, str(err)
    else:
        run_frame(tx, frame, compiled, 0)
    if frame.halt is SUCCESS:
        runtime_code = _runtime_code(tx, frame)
        if frame.halt is SUCCESS:
            deposit = G.CODE_DEPOSIT * len(runtime_code)
            if deposit > frame.gas:
                frame.halt, frame.reason = OUT_OF_GAS, f"code deposit of {deposit} gas"
            else:
                frame.gas -= deposit
                journal.set_code(address, runtime_code)
                return FrameResult(SUCCESS, frame.gas, b"", address)
    result = _finish(journal, snap, frame)
    result.output = frame.output if frame.halt is REVERT else b""
    return result


def _runtime_code(tx: TxContext, frame) -> bytes:
    """The code a successful creation stores: what the init code returned, metered (on
    the chain) or, unmetered, checked to be a runnable contract when it is wasm (as Hera
    does), and within the size limit (EIP-170 fails it as out of gas). A refusal sets
    frame.halt."""
    runtime_code = frame.output
    try:
        if tx.metering:
            runtime_code = tx.runtime.meter(runtime_code)
        elif runtime_code[:4] == b"\0asm":
            tx.runtime.compiled(runtime_code)
    except InvalidCode as err:
        frame.halt, frame.reason = INVALID_CODE, f"returned runtime code: {err}"
        return runtime_code
    limit = tx.runtime.max_code_size
    if limit is not None and len(runtime_code) > limit:
        frame.halt = OUT_OF_GAS
        frame.reason = f"runtime code of {len(runtime_code)} bytes is above the limit of {limit}"
    return runtime_code


def _finish(journal: JournaledState, snap, frame: Frame) -> FrameResult:
    status = frame.halt
    if status is SUCCESS:
        return FrameResult(SUCCESS, frame.gas, frame.output)
    journal.revert(snap)
    if status is REVERT:
        return FrameResult(REVERT, frame.gas, frame.output, reason="reverted")
    return FrameResult(status, 0, reason=frame.reason)


def run_frame(tx: TxContext, frame, compiled: CompiledCode, stack_start: int) -> None:
    """Instantiate `compiled` in the transaction's store and run its `main`.

    Sets frame.halt (the status), frame.gas (gas left) and frame.output.
    """
    frame.compiled = compiled
    metered = compiled.gas_index is not None
    if tx.metering:
        if not compiled.metered:
            frame.halt, frame.reason = INVALID_CODE, "code is not metered (no gas_left/stack_height exports)"
            return
        page_gas = tx.runtime.costs.memory_page * compiled.initial_pages
        if page_gas > frame.gas:
            frame.halt, frame.reason = OUT_OF_GAS, "initial memory"
            return
        frame.gas -= page_gas
    else:
        metered = False
    stack_index = compiled.stack_index
    kind = frame.run(compiled.pre_address, compiled.memory_index, compiled.main_index,
                     compiled.gas_index if metered else -1, -1 if stack_index is None else stack_index,
                     stack_start if metered else 0)
    if kind == RUN_DONE:
        if frame.error is not None:  # a bug in a host function: raised now that wasm has unwound
            error, frame.error = frame.error, None
            raise error
        return
    err, trap = frame.failure()
    if kind == RUN_INSTANTIATE:
        frame.halt = TRAP_
        frame.reason = "instantiation failed: " + (capi.error_text(err) if err else _take_trap(trap))
        if err and trap:
            capi.trap_delete(trap)
    elif kind == RUN_ERROR:
        _classify(frame, metered, None, capi.error_text(err))
    else:
        code = capi.trap_code_of(trap)
        _classify(frame, metered, code, _take_trap(trap))


def _classify(frame: Frame, metered: bool, code: int | None, message: str) -> None:
    """Name a trap that came from wasm code: out of gas, stack limit or anything else."""
    if metered and frame.gas_global() == -1:
        frame.halt, frame.reason = OUT_OF_GAS, "out of gas"
    elif metered and frame.stack_height() == -1:
        frame.halt, frame.reason = STACK_LIMIT, "stack limit"
    elif code == capi.TRAP_STACK_OVERFLOW:
        frame.halt, frame.reason = STACK_LIMIT, "native stack exhausted"
    else:
        frame.halt, frame.reason = TRAP_, trap_reason(code, message)
    frame.gas = 0


# What a trap of each code says, in wasmtime's own words. The reason goes into receipts
# (and their root), so it comes from the trap code, not from the message's layout.
TRAP_REASONS = {1: "out of bounds memory access", 2: "misaligned memory access", 3: "undefined element: out of "
                "bounds table access", 4: "uninitialized element", 5: "indirect call type mismatch",
                6: "integer overflow", 7: "integer divide by zero", 8: "invalid conversion to integer",
                9: "wasm `unreachable` instruction executed", 10: "interrupt", 11: "all fuel consumed"}


def trap_reason(code: int | None, message: str) -> str:
    """A trap's reason in one line: its code's, or else the message's last line without
    the backtrace's numbering."""
    if code in TRAP_REASONS:
        return TRAP_REASONS[code]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return "trap"
    last = lines[-1].split(":", 1)[-1].strip() if lines[-1].split(":", 1)[0].strip().isdigit() else lines[-1]
    return last.removeprefix("wasm trap: ") or "trap"


def _take_trap(trap: int) -> str:
    text = capi.trap_text(trap)
    capi.trap_delete(trap)
    return text
