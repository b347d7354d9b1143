"""Small WAT contracts and a world to run them in, for the VM tests.

Every transaction a `World` runs, it runs twice: through the runtime under test (the
native host interface where it is built) and through its twin with the other EEI, on a
copy of the state. Both must agree exactly (status, gas, refund, output, logs, error,
created address, receipts, the state after, and any exception), so the whole VM suite
is also the differential test of native against reference.
"""

from __future__ import annotations

import copy

import wasmtime

from ewasm_runtime import EEI, Environment, MemoryState, Message, Runtime, execute, native

SENDER = bytes.fromhex("1000000000000000000000000000000000000001")
COINBASE = bytes.fromhex("c0ffee0000000000000000000000000000000000")
A = bytes.fromhex("aa00000000000000000000000000000000000001")
B = bytes.fromhex("bb00000000000000000000000000000000000002")
C = bytes.fromhex("cc00000000000000000000000000000000000003")
RICH = 10**30

_TYPES = {"i32": "i32", "i64": "i64"}


def _imports() -> str:
    lines = []
    for name, (params, results, _impl) in EEI.items():
        p = f" (param {' '.join(params)})" if params else ""
        r = f" (result {' '.join(results)})" if results else ""
        lines.append(f'(import "ethereum" "{name}" (func ${name}{p}{r}))')
    return "\n".join(lines)


IMPORTS = _imports()


def contract(body: str, *, funcs: str = "", memory: str = "1", data: str = "", locals_: str = "") -> bytes:
    """A module importing the whole EEI, with `main` running `body`."""
    text = f"""(module
      {IMPORTS}
      (memory (export "memory") {memory})
      {data}
      {funcs}
      (func (export "main") {locals_} {body}))"""
    return bytes(wasmtime.wat2wasm(text))


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def hexaddr(address: bytes) -> str:
    return address.hex()


def bytes_data(raw: bytes, offset: int) -> str:
    """A WAT data segment placing `raw` at `offset`."""
    escaped = "".join("\\%02x" % b for b in raw)
    return f'(data (i32.const {offset}) "{escaped}")'


addr_data = bytes_data


def twin_of(runtime: Runtime) -> Runtime | None:
    """The same runtime with the other host interface (None when only one is built)."""
    if not native.available():
        return None
    return Runtime(metering=runtime.metering, costs=runtime.costs, precompiles=runtime.precompiles,
                   native=not runtime.native, max_code_size=runtime.max_code_size)


def outcome(message: Message, state: MemoryState, env: Environment, runtime: Runtime):
    """What a transaction does, including an exception it raises."""
    try:
        return execute(message, state, env, runtime)
    except Exception as err:  # compared, then re-raised by the caller
        return err


def run_both(message: Message, state: MemoryState, env: Environment, runtime: Runtime, twin: Runtime | None):
    """Run `message` on `state` with `runtime`, and with `twin` on a copy; assert they agree."""
    if twin is None:
        return execute(message, state, env, runtime)
    other_state = copy.deepcopy(state)
    expected = outcome(message, other_state, env, twin)
    actual = outcome(message, state, env, runtime)
    if isinstance(expected, Exception) or isinstance(actual, Exception):
        assert (type(actual), str(actual)) == (type(expected), str(expected)), "the two EEIs raised differently"
        raise actual
    assert actual == expected, f"native={runtime.native} and native={twin.native} disagree"
    assert state.to_json() == other_state.to_json(), "the two EEIs left different states"
    return actual


class World:
    """A memory state plus a runtime; `call` runs one transaction from SENDER (through
    both host interfaces, see the module docstring)."""

    def __init__(self, *, metering: bool = False, runtime: Runtime | None = None):
        self.runtime = runtime or Runtime(metering=metering)
        self.twin = twin_of(self.runtime)
        self.state = MemoryState()
        self.state.put(SENDER, balance=RICH)
        self.env = Environment(coinbase=COINBASE, number=100, timestamp=1_700_000_000, gas_limit=8_000_000,
                               difficulty=131072, block_hashes={99: b"\x99" * 32, 50: b"\x50" * 32})

    def deploy(self, address: bytes, code: bytes, *, balance: int = 0, storage: dict | None = None) -> bytes:
        if self.runtime.metering:
            code = self.runtime.meter(code)
        self.state.put(address, code=code, balance=balance, storage=storage)
        return address

    def call(self, to: bytes | None, data: bytes = b"", *, gas: int = 1_000_000, value: int = 0,
             gas_price: int = 0, scope=None, sender: bytes = SENDER):
        msg = Message(sender, to, data, value=value, gas=gas, gas_price=gas_price, scope=scope)
        return run_both(msg, self.state, self.env, self.runtime, self.twin)

    def storage(self, address: bytes, key: int | bytes) -> bytes:
        k = key if isinstance(key, bytes) else key.to_bytes(32, "big")
        return self.state.get_storage(address, k)


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")
