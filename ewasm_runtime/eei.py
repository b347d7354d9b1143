"""The Ethereum Environment Interface: the 33 host functions of import module `ethereum`.

Semantics follow ewasm's EEI specification and its reference host (Hera): each
function first charges the gas of its EVM opcode (Byzantium prices), then checks its
memory accesses. Any pointer outside linear memory, or a source range outside the
call data / code / return data, is a trap of the contract. Values and balances are
128-bit little-endian, the difficulty 256-bit little-endian, addresses 20 bytes,
storage keys and values 32 raw bytes.

Each function has the signature `impl(frame, args)`: `args` is wasmtime's raw value
array (parameter i at int64 index 2*i, the result written to index 0). An impl that
returns True ends the frame (finish, revert, selfDestruct). Failures raise `HostTrap`
or `OutOfGas`; the wrapper turns them into a trap and records the status on the frame.
"""

from __future__ import annotations

import ctypes
from typing import Callable

import wasmtime

from ewasm_runtime import capi, gas as G
from ewasm_runtime.frame import Frame, current
from ewasm_runtime.hashing import create_address
from ewasm_runtime.interpreter import process_call, process_create
from ewasm_runtime.message import Log, Status
from ewasm_runtime.scope import ScopeViolation
from ewasm_runtime.state import ZERO32

_string_at = capi.string_at
_memmove = capi.memmove
_data_size = capi.memory_data_size
_global_get = capi.global_get
_global_set = capi.global_set
_trap_new = capi.trap_new
U32 = 0xFFFFFFFF
SUCCESS, REVERT = Status.SUCCESS, Status.REVERT


class HostTrap(Exception):
    """A host function refuses: bad pointer, static-mode write, bad argument."""


class OutOfGas(Exception):
    pass


# -- helpers (module functions: the cheapest calls Python has)

def _charge(f: Frame, amount: int) -> None:
    if amount > f.gas:
        f.gas = 0
        raise OutOfGas
    f.gas -= amount


def _grow_view(f: Frame, end: int) -> bool:
    """Memory only grows: refresh the cached size when an access goes past it."""
    f.mem_size = _data_size(f.ctx, f.mem_addr)
    return end <= f.mem_size


def _read(f: Frame, ptr: int, length: int) -> bytes:
    end = ptr + length
    if end > f.mem_size and not _grow_view(f, end):
        raise HostTrap(f"read of {length} bytes at {ptr} is outside memory")
    return _string_at(f.base + ptr, length)


def _write(f: Frame, ptr: int, data: bytes) -> None:
    end = ptr + len(data)
    if end > f.mem_size and not _grow_view(f, end):
        raise HostTrap(f"write of {len(data)} bytes at {ptr} is outside memory")
    _memmove(f.base + ptr, data, len(data))


def _check(f: Frame, ptr: int, length: int) -> None:
    end = ptr + length
    if end > f.mem_size and not _grow_view(f, end):
        raise HostTrap(f"{length} bytes at {ptr} are outside memory")


def _copy_out(f: Frame, source: bytes, result_ptr: int, offset: int, length: int) -> None:
    if offset + length > len(source):
        raise HostTrap(f"copy of {length} bytes at {offset} is outside the {len(source)}-byte source")
    _write(f, result_ptr, source[offset:offset + length])


def _u128(value: int) -> bytes:
    if value >> 128:
        raise HostTrap("value exceeds 128 bits")
    return value.to_bytes(16, "little")


def _no_writes(f: Frame, what: str) -> None:
    if f.is_static:
        raise HostTrap(f"{what} is not allowed in a static call")


# -- gas

def useGas(f, a):
    amount = a[0]
    if amount < 0:
        raise HostTrap("useGas with a negative amount")
    _charge(f, amount)


def getGasLeft(f, a):
    _charge(f, G.BASE)
    a[0] = f.gas


# -- the current call

def getAddress(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, f.address)


def getCaller(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, f.caller)


def getCallValue(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, _u128(f.value))


def getCallDataSize(f, a):
    _charge(f, G.BASE)
    a[0] = len(f.data)


def callDataCopy(f, a):
    length = a[4] & U32
    _charge(f, G.copy_cost(length))
    _copy_out(f, f.data, a[0] & U32, a[2] & U32, length)


def getCodeSize(f, a):
    _charge(f, G.BASE)
    a[0] = len(f.code)


def codeCopy(f, a):
    length = a[4] & U32
    _charge(f, G.copy_cost(length))
    _copy_out(f, f.code, a[0] & U32, a[2] & U32, length)


def getReturnDataSize(f, a):
    _charge(f, G.BASE)
    a[0] = len(f.return_data)


def returnDataCopy(f, a):
    length = a[4] & U32
    _charge(f, G.copy_cost(length))
    _copy_out(f, f.return_data, a[0] & U32, a[2] & U32, length)


# -- transaction and block

def getTxOrigin(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, f.tx.origin)


def getTxGasPrice(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, _u128(f.tx.gas_price))


def getBlockCoinbase(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, f.tx.env.coinbase)


def getBlockDifficulty(f, a):
    _charge(f, G.BASE)
    _write(f, a[0] & U32, f.tx.env.difficulty.to_bytes(32, "little"))


def getBlockGasLimit(f, a):
    _charge(f, G.BASE)
    a[0] = f.tx.env.gas_limit


def getBlockNumber(f, a):
    _charge(f, G.BASE)
    a[0] = f.tx.env.number


def getBlockTimestamp(f, a):
    _charge(f, G.BASE)
    a[0] = f.tx.env.timestamp


def getBlockHash(f, a):
    _charge(f, f.tx.runtime.blockhash_gas)  # 800 from default-v2 on (gas.EEI_BLOCKHASH)
    ptr = a[2] & U32
    _check(f, ptr, 32)  # the spec checks the destination even when there is no hash
    block_hash = f.tx.env.block_hash(a[0])
    if block_hash is None:
        a[0] = 1
        return
    _write(f, ptr, block_hash)
    a[0] = 0


# -- other accounts

def _account(f: Frame, ptr: int) -> bytes:
    address = _read(f, ptr, 20)
    f.tx.check_scope(address)
    return address


def getExternalBalance(f, a):
    _charge(f, G.BALANCE)
    address = _account(f, a[0] & U32)
    _write(f, a[2] & U32, _u128(f.tx.journal.get_balance(address)))


def getExternalCodeSize(f, a):
    _charge(f, G.EXTCODE)
    a[0] = len(f.tx.journal.get_code(_account(f, a[0] & U32)))


def externalCodeCopy(f, a):
    length = a[6] & U32
    _charge(f, G.copy_cost(length, G.EXTCODE))
    code = f.tx.journal.get_code(_account(f, a[0] & U32))
    _copy_out(f, code, a[2] & U32, a[4] & U32, length)


# -- storage

def storageLoad(f, a):
    _charge(f, G.SLOAD)
    key = _read(f, a[0] & U32, 32)
    _write(f, a[2] & U32, f.tx.journal.get_storage(f.address, key))


def storageStore(f, a):
    _charge(f, G.SSTORE_RESET)
    _no_writes(f, "storageStore")
    key = _read(f, a[0] & U32, 32)
    value = _read(f, a[2] & U32, 32)
    journal = f.tx.journal
    current_value = journal.get_storage(f.address, key)
    if current_value == ZERO32:
        if value != ZERO32:
            _charge(f, G.SSTORE_SET - G.SSTORE_RESET)
    elif value == ZERO32:
        journal.add_refund(G.SSTORE_CLEAR_REFUND)
    journal.set_storage(f.address, key, value)


# -- logs

def log(f, a):
    length = a[2] & U32
    topics = a[4] & U32
    _charge(f, G.log_cost(topics, length))
    _no_writes(f, "log")
    if topics > 4:
        raise HostTrap("log with more than 4 topics")
    topic_list = tuple([_read(f, a[i] & U32, 32) for i in range(6, 6 + 2 * topics, 2)])
    data = _read(f, a[0] & U32, length)
    f.tx.journal.add_log(Log(f.address, topic_list, data))


# -- ending the frame

def finish(f, a):
    f.output = _read(f, a[0] & U32, a[2] & U32)
    f.halt = SUCCESS
    return True


def revert(f, a):
    f.output = _read(f, a[0] & U32, a[2] & U32)
    f.halt = REVERT
    return True


def selfDestruct(f, a):
    _charge(f, G.SELFDESTRUCT)
    _no_writes(f, "selfDestruct")
    beneficiary = _account(f, a[0] & U32)
    journal = f.tx.journal
    balance = journal.get_balance(f.address)
    if balance and journal.is_empty(beneficiary):
        _charge(f, G.CALL_NEW_ACCOUNT)
    if journal.destroy(f.address):
        journal.add_refund(G.SELFDESTRUCT_REFUND)
    journal.transfer(f.address, beneficiary, balance)
    f.halt = SUCCESS
    return True


# -- calls and creation

_CALL, _CALLCODE, _DELEGATE, _STATIC = range(4)


def _sender_balance(f: Frame) -> int:
    """The frame's balance, to compare with a value it sends. Values are 128-bit; under the
    table rule "u128-sender-balance" (default-v2 on) a balance past 128 bits ends the
    frame, as Hera refuses it (ArgumentOutOfRange)."""
    balance = f.tx.journal.get_balance(f.address)
    if balance >> 128 and f.tx.runtime.u128_sender_balance:
        raise HostTrap("the sender's balance exceeds 128 bits")
    return balance


def _call(f: Frame, kind: int, gas: int, address_ptr: int, value_ptr: int | None, data_ptr: int,
          length: int) -> int:
    if gas < 0:
        raise HostTrap("call with negative gas")
    to = _read(f, address_ptr, 20)
    value = int.from_bytes(_read(f, value_ptr, 16), "little") if value_ptr is not None else 0
    # A precompile is pure code: a call that sends it nothing touches no state and needs
    # no place in the scope. Value sent to it is a balance write like any other.
    if (value and kind == _CALL) or to not in f.tx.runtime.precompiles:
        f.tx.check_scope(to)
    if kind == _CALL and value:
        _no_writes(f, "call with value")
    data = _read(f, data_ptr, length)
    _charge(f, G.CALL)
    if f.depth >= G.MAX_CALL_DEPTH:
        f.return_data = b""
        return 1
    journal = f.tx.journal
    if value:
        _charge(f, G.CALL_VALUE)
        if _sender_balance(f) < value:
            f.return_data = b""
            return 1
        if kind == _CALL and journal.is_empty(to):
            _charge(f, G.CALL_NEW_ACCOUNT)
    gas = min(gas, G.all_but_one_64th(f.gas))
    _charge(f, gas)
    if value:
        gas += G.CALL_STIPEND
    if kind == _CALL:
        caller, target, transfer, static = f.address, to, True, f.is_static
    elif kind == _CALLCODE:
        caller, target, transfer, static = f.address, f.address, True, f.is_static
    elif kind == _DELEGATE:
        caller, target, transfer, static, value = f.caller, f.address, False, f.is_static, f.value
    else:
        caller, target, transfer, static = f.address, to, True, True
    result = process_call(
        f.tx, caller=caller, to=target, code_address=to, value=value, transfer=transfer,
        data=data, gas=gas, depth=f.depth + 1, is_static=static, stack_start=f.stack_height(),
    )
    f.gas += result.gas_left
    f.return_data = result.output
    status = result.status
    if status is SUCCESS:
        return 0
    if status is REVERT:
        return 2
    if status is Status.OUT_OF_RANGE:  # a scope violation ends the whole transaction
        raise ScopeViolation(to, reason=result.reason)
    return 1


def call(f, a):
    a[0] = _call(f, _CALL, a[0], a[2] & U32, a[4] & U32, a[6] & U32, a[8] & U32)


def callCode(f, a):
    a[0] = _call(f, _CALLCODE, a[0], a[2] & U32, a[4] & U32, a[6] & U32, a[8] & U32)


def callDelegate(f, a):
    a[0] = _call(f, _DELEGATE, a[0], a[2] & U32, None, a[4] & U32, a[6] & U32)


def callStatic(f, a):
    a[0] = _call(f, _STATIC, a[0], a[2] & U32, None, a[4] & U32, a[6] & U32)


def create(f, a):
    _charge(f, G.CREATE)
    _no_writes(f, "create")
    value = int.from_bytes(_read(f, a[0] & U32, 16), "little")
    result_ptr = a[6] & U32
    if f.depth >= G.MAX_CALL_DEPTH:
        f.return_data = b""
        a[0] = 1
        return
    journal = f.tx.journal
    if _sender_balance(f) < value:
        f.return_data = b""
        a[0] = 1
        return
    init_code = _read(f, a[2] & U32, a[4] & U32)
    _check(f, result_ptr, 20)
    nonce = journal.get_nonce(f.address)
    journal.set_nonce(f.address, nonce + 1)
    address = create_address(f.address, nonce)
    f.tx.check_scope(address)
    gas = G.all_but_one_64th(f.gas)
    _charge(f, gas)
    result = process_create(f.tx, caller=f.address, address=address, value=value, init_code=init_code,
                            gas=gas, depth=f.depth + 1)
    f.gas += result.gas_left
    if result.status is SUCCESS:
        _write(f, result_ptr, address)
        f.return_data = b""
        a[0] = 0
        return
    if result.status is Status.OUT_OF_RANGE:  # the init code left the scope: name what it touched
        raise ScopeViolation(address, reason=result.reason)
    f.return_data = result.output
    a[0] = 2 if result.status is REVERT else 1


# -- the interface table: name -> (params, results, impl)

I32, I64 = "i32", "i64"
EEI: dict[str, tuple[tuple[str, ...], tuple[str, ...], Callable]] = {
    "useGas": ((I64,), (), useGas),
    "getGasLeft": ((), (I64,), getGasLeft),
    "getAddress": ((I32,), (), getAddress),
    "getExternalBalance": ((I32, I32), (), getExternalBalance),
    "getBlockHash": ((I64, I32), (I32,), getBlockHash),
    "call": ((I64, I32, I32, I32, I32), (I32,), call),
    "callCode": ((I64, I32, I32, I32, I32), (I32,), callCode),
    "callDelegate": ((I64, I32, I32, I32), (I32,), callDelegate),
    "callStatic": ((I64, I32, I32, I32), (I32,), callStatic),
    "create": ((I32, I32, I32, I32), (I32,), create),
    "storageStore": ((I32, I32), (), storageStore),
    "storageLoad": ((I32, I32), (), storageLoad),
    "getCaller": ((I32,), (), getCaller),
    "getCallValue": ((I32,), (), getCallValue),
    "callDataCopy": ((I32, I32, I32), (), callDataCopy),
    "getCallDataSize": ((), (I32,), getCallDataSize),
    "codeCopy": ((I32, I32, I32), (), codeCopy),
    "getCodeSize": ((), (I32,), getCodeSize),
    "externalCodeCopy": ((I32, I32, I32, I32), (), externalCodeCopy),
    "getExternalCodeSize": ((I32,), (I32,), getExternalCodeSize),
    "getBlockCoinbase": ((I32,), (), getBlockCoinbase),
    "getBlockDifficulty": ((I32,), (), getBlockDifficulty),
    "getTxGasPrice": ((I32,), (), getTxGasPrice),
    "getTxOrigin": ((I32,), (), getTxOrigin),
    "getBlockGasLimit": ((), (I64,), getBlockGasLimit),
    "getBlockNumber": ((), (I64,), getBlockNumber),
    "getBlockTimestamp": ((), (I64,), getBlockTimestamp),
    "getReturnDataSize": ((), (I32,), getReturnDataSize),
    "returnDataCopy": ((I32, I32, I32), (), returnDataCopy),
    "log": ((I32, I32, I32, I32, I32, I32, I32), (), log),
    "finish": ((I32, I32), (), finish),
    "revert": ((I32, I32), (), revert),
    "selfDestruct": ((I32,), (), selfDestruct),
}

_HALT_MESSAGE = b"ewasm: frame ended by the host"
_NO_FRAME = b"ewasm: a host function was called outside a running frame"


def _callback(impl: Callable):
    """Wrap an impl as a wasmtime host callback.

    For a metered module the gas lives in its `gas_left` global while wasm runs: the
    wrapper reads it into frame.gas before the impl and writes it back after.
    """

    def callback(env, caller, args, nargs):
        f = current.frame
        if f is None:  # called while an instance is set up (a start function): no frame
            return _trap_new(_NO_FRAME, len(_NO_FRAME))
        try:
            ga = f.gas_addr
            if ga:
                ctx = f.ctx
                _global_get(ctx, ga, f.val_addr)
                f.gas = f.val_i64.value
                if impl(f, args):
                    return _trap_new(_HALT_MESSAGE, len(_HALT_MESSAGE))
                f.val_i64.value = f.gas
                _global_set(ctx, ga, f.val_addr)
            elif impl(f, args):
                return _trap_new(_HALT_MESSAGE, len(_HALT_MESSAGE))
            return 0
        except HostTrap as err:
            f.halt, f.reason, f.gas = Status.TRAP, f"{impl.__name__}: {err}", 0
        except OutOfGas:
            f.halt, f.reason, f.gas = Status.OUT_OF_GAS, f"out of gas in {impl.__name__}", 0
        except ScopeViolation as err:
            f.halt, f.reason, f.gas = Status.OUT_OF_RANGE, str(err), 0
        except BaseException as err:  # a bug in the host: surface it after unwinding
            f.halt, f.reason, f.gas, f.error = Status.TRAP, f"internal error in {impl.__name__}", 0, err
        return _trap_new(_HALT_MESSAGE, len(_HALT_MESSAGE))

    callback.__name__ = impl.__name__
    return capi.HOST_CALLBACK(callback)


_VALTYPES = {I32: wasmtime.ValType.i32, I64: wasmtime.ValType.i64}
_keepalive: list = []  # callbacks and types must outlive the linker


HostTable = dict[str, tuple[tuple[str, ...], tuple[str, ...], Callable]]


def build_linker(engine: wasmtime.Engine, modules: dict[str, HostTable] | None = None,
                 host_function: Callable[[str, str, Callable], tuple[int, int]] | None = None) -> wasmtime.Linker:
    """A linker with each module's host functions (by default the 33 of `ethereum`).

    `host_function(module, name, impl)` gives the (callback, env) addresses of another
    implementation (native.host_function); without it each impl is wrapped here."""
    linker = wasmtime.Linker(engine)
    for module, table in (modules or {"ethereum": EEI}).items():
        encoded_module = module.encode()
        for name, (params, results, impl) in table.items():
            ty = wasmtime.FuncType([_VALTYPES[p]() for p in params], [_VALTYPES[r]() for r in results])
            if host_function is None:
                cb = _callback(impl)
                callback, env = ctypes.cast(cb, ctypes.c_void_p).value, None
            else:
                cb = None
                callback, env = host_function(module, name, impl)
            _keepalive.append((cb, ty))
            encoded = name.encode()
            err = capi.linker_define_func_unchecked(
                capi.address(linker.ptr()), encoded_module, len(encoded_module), encoded, len(encoded),
                capi.address(ty.ptr()), callback, env, None,
            )
            if err:
                raise RuntimeError(f"cannot define {module}.{name}: {capi.error_text(err)}")
    return linker
