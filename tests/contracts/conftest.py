"""A small EEI host for the contract tests: real wasmtime, Python host functions.

It implements the part of the Ethereum Environment Interface that the example
contracts import, over a dict of storage, so the SDK's contracts can be
checked without the VM package (ewasm_runtime is built separately and has its
own tests). Precompiles 0x02 (sha256), 0x04 (identity) and 0x09 (keccak256)
answer calls; anything else fails the call. A contract that imports a function
this host lacks fails to link, which the tests report.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
import pytest
import wasmtime
from eth_hash.auto import keccak

I32, I64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()

PRECOMPILES = {
    2: lambda data: hashlib.sha256(data).digest(),
    4: lambda data: data,
    9: lambda data: keccak(data),
}


class _Halt(Exception):
    """finish or revert: unwinds the contract through wasmtime."""

    def __init__(self, status: str, data: bytes):
        super().__init__(status)
        self.status = status
        self.data = data


@dataclass
class Log:
    data: bytes
    topics: list[bytes]


@dataclass
class Result:
    """How a call ended: status is 'finish', 'revert', 'return' (fell off main) or 'trap'."""

    status: str
    output: bytes = b""
    logs: list[Log] = field(default_factory=list)
    gas_left: int | None = None
    error: str = ""
    host_calls: dict[str, int] = field(default_factory=dict)


@dataclass
class Frame:
    address: bytes
    caller: bytes
    calldata: bytes
    value: int
    gas: int
    logs: list[Log] = field(default_factory=list)
    return_data: bytes = b""
    host_calls: dict[str, int] = field(default_factory=dict)


class EEIHost:
    """Runs contracts against in-memory storage: storage[address][key] = value."""

    def __init__(self) -> None:
        self.engine = wasmtime.Engine()
        self.storage: dict[bytes, dict[bytes, bytes]] = {}
        self._modules: dict[bytes, wasmtime.Module] = {}

    def module(self, wasm: bytes) -> wasmtime.Module:
        if wasm not in self._modules:
            self._modules[wasm] = wasmtime.Module(self.engine, wasm)
        return self._modules[wasm]

    def call(self, wasm: bytes, calldata: bytes = b"", *, address: bytes = b"\xcc" * 20,
             caller: bytes = b"\xaa" * 20, value: int = 0, gas: int | None = None) -> Result:
        """Run `main` once; `gas` (for metered modules) seeds the gas_left global."""
        frame = Frame(address, caller, calldata, value, gas if gas is not None else 10**7)
        store = wasmtime.Store(self.engine)
        # Writes go to a copy that is kept only when the call succeeds.
        storage = dict(self.storage.get(address, {}))
        linker = self._linker(frame, storage)
        instance = linker.instantiate(store, self.module(wasm))
        exports = instance.exports(store)
        if gas is not None:
            exports["gas_left"].set_value(store, wasmtime.Val.i64(gas))
        try:
            exports["main"](store)
            result = Result("return")
        except _Halt as halt:
            result = Result(halt.status, halt.data)
        except (wasmtime.Trap, wasmtime.WasmtimeError, ValueError) as err:
            result = Result("trap", error=str(err))
        if result.status in ("finish", "return"):
            result.logs = frame.logs
            self.storage[address] = storage
        result.host_calls = frame.host_calls
        if gas is not None:
            result.gas_left = exports["gas_left"].value(store)
        return result

    def _linker(self, frame: Frame, storage: dict[bytes, bytes]) -> wasmtime.Linker:
        linker = wasmtime.Linker(self.engine)

        def mem(caller) -> wasmtime.Memory:
            return caller["memory"]

        def read(caller, ptr: int, length: int) -> bytes:
            return bytes(mem(caller).read(caller, ptr, ptr + length))

        def write(caller, ptr: int, data: bytes) -> None:
            mem(caller).write(caller, data, ptr)

        def define(name, params, results, fn):
            def counted(caller, *args):
                frame.host_calls[name] = frame.host_calls.get(name, 0) + 1
                return fn(caller, *args)

            linker.define_func("ethereum", name, wasmtime.FuncType(params, results), counted,
                               access_caller=True)

        def call_data_copy(caller, out, offset, length):
            if offset + length > len(frame.calldata):
                raise ValueError("callDataCopy past the end of the calldata")
            write(caller, out, frame.calldata[offset:offset + length])

        def storage_store(caller, key, value):
            storage[read(caller, key, 32)] = read(caller, value, 32)

        def storage_load(caller, key, out):
            write(caller, out, storage.get(read(caller, key, 32), bytes(32)))

        def log(caller, data, length, count, t1, t2, t3, t4):
            topics = [read(caller, t, 32) for t in (t1, t2, t3, t4)[:count]]
            frame.logs.append(Log(read(caller, data, length), topics))

        def halt(status):
            def fn(caller, ptr, length):
                raise _Halt(status, read(caller, ptr, length))
            return fn

        def call(caller, gas, addr, value, data, length):
            target = int.from_bytes(read(caller, addr, 20), "big")
            if int.from_bytes(read(caller, value, 16), "little") != 0 or target not in PRECOMPILES:
                frame.return_data = b""
                return 1
            frame.return_data = PRECOMPILES[target](read(caller, data, length))
            return 0

        def return_data_copy(caller, out, offset, length):
            if offset + length > len(frame.return_data):
                raise ValueError("returnDataCopy past the end of the return data")
            write(caller, out, frame.return_data[offset:offset + length])

        def get_gas_left(caller):
            # A metered module keeps its gas in the exported gas_left global.
            gas_left = caller.get("gas_left")
            return gas_left.value(caller) if gas_left is not None else frame.gas

        define("getCaller", [I32], [], lambda c, out: write(c, out, frame.caller))
        define("getAddress", [I32], [], lambda c, out: write(c, out, frame.address))
        define("getCallValue", [I32], [], lambda c, out: write(c, out, frame.value.to_bytes(16, "little")))
        define("getCallDataSize", [], [I32], lambda c: len(frame.calldata))
        define("callDataCopy", [I32, I32, I32], [], call_data_copy)
        define("storageStore", [I32, I32], [], storage_store)
        define("storageLoad", [I32, I32], [], storage_load)
        define("log", [I32] * 7, [], log)
        define("finish", [I32, I32], [], halt("finish"))
        define("revert", [I32, I32], [], halt("revert"))
        define("getGasLeft", [], [I64], get_gas_left)
        define("useGas", [I64], [], lambda c, amount: None)
        define("call", [I64, I32, I32, I32, I32], [I32], call)
        define("getReturnDataSize", [], [I32], lambda c: len(frame.return_data))
        define("returnDataCopy", [I32, I32, I32], [], return_data_copy)
        return linker


@pytest.fixture
def host() -> EEIHost:
    return EEIHost()


# The EEI as DESIGN.md lists it: name -> (params, results).
EEI_SIGNATURES = {
    "useGas": (["i64"], []),
    "getAddress": (["i32"], []), "getCaller": (["i32"], []), "getCallValue": (["i32"], []),
    "getBlockCoinbase": (["i32"], []), "getBlockDifficulty": (["i32"], []),
    "getTxGasPrice": (["i32"], []), "getTxOrigin": (["i32"], []),
    "getExternalBalance": (["i32", "i32"], []), "storageStore": (["i32", "i32"], []),
    "storageLoad": (["i32", "i32"], []),
    "finish": (["i32", "i32"], []), "revert": (["i32", "i32"], []), "selfDestruct": (["i32"], []),
    "getBlockHash": (["i64", "i32"], ["i32"]),
    "call": (["i64", "i32", "i32", "i32", "i32"], ["i32"]),
    "callCode": (["i64", "i32", "i32", "i32", "i32"], ["i32"]),
    "callDelegate": (["i64", "i32", "i32", "i32"], ["i32"]),
    "callStatic": (["i64", "i32", "i32", "i32"], ["i32"]),
    "create": (["i32", "i32", "i32", "i32"], ["i32"]),
    "callDataCopy": (["i32", "i32", "i32"], []), "codeCopy": (["i32", "i32", "i32"], []),
    "returnDataCopy": (["i32", "i32", "i32"], []),
    "externalCodeCopy": (["i32", "i32", "i32", "i32"], []),
    "getExternalCodeSize": (["i32"], ["i32"]),
    "getCallDataSize": ([], ["i32"]), "getCodeSize": ([], ["i32"]), "getReturnDataSize": ([], ["i32"]),
    "getGasLeft": ([], ["i64"]), "getBlockGasLimit": ([], ["i64"]), "getBlockNumber": ([], ["i64"]),
    "getBlockTimestamp": ([], ["i64"]),
    "log": (["i32"] * 7, []),
}


@pytest.fixture
def eei() -> dict[str, tuple[list[str], list[str]]]:
    """The 33 EEI functions as DESIGN.md lists them: name -> (params, results)."""
    return EEI_SIGNATURES
