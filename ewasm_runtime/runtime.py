"""The VM's front door: a `Runtime` (engine, linker, caches, cost table, precompiles,
metering switch) and `execute`, which runs one transaction against a `StateView`.

Transaction rules (ewasm on Byzantium):
- intrinsic gas 21000 (53000 for a creation) + 68 per non-zero and 4 per zero data byte;
- the sender pays gas × gas price up front and gets the unused part back; the refund is
  capped at half the gas used; the coinbase receives gas used × gas price;
- the sender's nonce goes up by one whatever happens; a creation's address is
  keccak(rlp([sender, nonce]))[12:] with the nonce before that increment;
- a failure other than REVERT consumes all gas; OUT_OF_RANGE (a scope violation
  anywhere in the call tree) reverts the whole transaction and consumes all gas.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections import OrderedDict

import metering
from metering.costs import LEGACY_VERSION, describe_shipped

from ewasm_runtime import gas as G, native as native_eei
from ewasm_runtime.cache import CompiledCode, InvalidCode, ModuleCache
from ewasm_runtime.capi import address as _address
from ewasm_runtime.eei import EEI, build_linker
from ewasm_runtime.engine import MAX_CONCURRENT_TX, engine
from ewasm_runtime.hashing import create_address
from ewasm_runtime.interpreter import FrameResult, TxContext, process_call, process_create
from ewasm_runtime.journal import JournaledState
from ewasm_runtime.message import Environment, ExecutionResult, InvalidTransaction, Message, Status
from ewasm_runtime.precompiles import PrecompileRegistry
from ewasm_runtime.scope import ScopeViolation
from ewasm_runtime.shard_host import MODULE as SHARD_MODULE, SHARD_EEI
from ewasm_runtime.state import StateView

# Each nested call adds a few Python frames; 1024 levels need more than the default 1000.
PYTHON_RECURSION_LIMIT = 20_000

_linkers: dict[bool, object] = {}
_linker_lock = threading.Lock()
# See engine.MAX_CONCURRENT_TX: keeps the instance pool from ever running dry. A queue
# of tokens is a semaphore implemented in C (threading.Semaphore costs ~2 µs a round).
_tx_slots: "queue.SimpleQueue[int]" = queue.SimpleQueue()
for _token in range(MAX_CONCURRENT_TX):
    _tx_slots.put(_token)


def shared_linker(native: bool = False):
    """The process-wide linker with the EEI and the `shard` module, served by the native
    host interface or by the reference (host functions find their frame per thread)."""
    with _linker_lock:
        linker = _linkers.get(native)
        if linker is None:
            linker = _linkers[native] = build_linker(
                engine(), {"ethereum": EEI, SHARD_MODULE: SHARD_EEI},
                host_function=native_eei.host_function if native else None)
        return linker


class Runtime:
    """Configuration and caches shared by many `execute` calls.

    metering=True is the chain's mode: stored code must be metered, init code is metered
    before it runs and the runtime code it returns is metered before it is stored.
    metering=False is the conformance mode for ewasm's own tests: code runs verbatim and
    charges itself through `useGas`.

    native=None uses the native host interface when it is built (native.default());
    True requires it, False runs the reference EEI of eei.py. max_code_size bounds the
    runtime code a creation may store (EIP-170's 24,576 in state tests, a chain's
    maxCodeSize); a creation returning more fails as out of gas.
    """

    def __init__(self, *, metering: bool = True, costs: "metering.CostTable | None" = None,
                 cache_dir: str | os.PathLike | None = None, precompiles: PrecompileRegistry | None = None,
                 cache_capacity: int = 1024, native: bool | None = None, max_code_size: int | None = None):
        if sys.getrecursionlimit() < PYTHON_RECURSION_LIMIT:
            sys.setrecursionlimit(PYTHON_RECURSION_LIMIT)
        self.metering = metering
        self.costs = costs if costs is not None else _load_default_costs()
        self.blockhash_gas = self.costs.eei.get("getBlockHash", G.BLOCKHASH)
        self.u128_sender_balance = "u128-sender-balance" in self.costs.rules
        self.max_code_size = max_code_size  # of the runtime code a creation stores; None: no limit
        self.precompiles = precompiles if precompiles is not None else PrecompileRegistry()
        if native is None:
            native = native_eei.default()
        elif native and not native_eei.available():
            raise RuntimeError(f"the native host interface is {native_eei.why_unavailable()}")
        self.native = native
        self.frame_type = native_eei.frame_class(native)
        self.open_store, self.close_store = native_eei.store_functions(native)
        self.native_precompiles = native and native_eei.runs_builtin_precompiles(self.precompiles)
        self.engine = engine()
        self.engine_address = _address(self.engine.ptr())
        self.cache = ModuleCache(shared_linker(native), directory=cache_dir, capacity=cache_capacity,
                                 costs_hash=self.costs.hash)
        self._metered: OrderedDict[bytes, bytes | InvalidCode] = OrderedDict()
        self._capacity = cache_capacity

    def compiled(self, code: bytes, *, meter: bool = False) -> CompiledCode:
        """Compiled (and, with meter=True, first metered) code; raises InvalidCode."""
        return self.cache.get(self.meter(code) if meter else code)

    def meter(self, code: bytes) -> bytes:
        """The metered form of `code` under this runtime's cost table (memoized)."""
        hit = self._metered.get(code)
        if hit is None:
            try:
                hit = metering.meter(code, costs=self.costs, profile="ewasm")
            except (metering.MalformedModule, metering.DeterminismError, metering.InvalidModule) as err:
                hit = InvalidCode(_one_line(err))
            self._metered[code] = hit
            if len(self._metered) > self._capacity:
                self._metered.popitem(last=False)
        if isinstance(hit, InvalidCode):
            raise hit
        return hit


def _load_default_costs():
    return metering.load_costs()


def _one_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


_default_runtime: Runtime | None = None
_default_env: Environment | None = None


def _default_environment() -> Environment:
    """One shared default block: frames only read it, and building one costs ~1 µs."""
    global _default_env
    if _default_env is None:
        _default_env = Environment()
    return _default_env


def default_runtime() -> Runtime:
    """A metering runtime; its compiled modules are kept on disk if EWASM_CACHE_DIR is set."""
    global _default_runtime
    if _default_runtime is None:
        _default_runtime = Runtime(cache_dir=os.environ.get("EWASM_CACHE_DIR") or None)
    return _default_runtime


_chain_runtimes: dict[tuple[str, int | None], Runtime] = {}
_chain_runtimes_lock = threading.Lock()


def runtime_for_costs(table_hash: str = "", max_code_size: int | None = None) -> Runtime:
    """The process's metering runtime for a chain: the shipped cost table with this hash
    (what a chain spec's costTable names; "" is default-v1, which such specs ran when they
    were written) and its maxCodeSize, which bounds created code where the table's rules
    say so. Raises ValueError for a hash this build does not ship."""
    runtime = _chain_runtimes.get((table_hash, max_code_size))  # every transaction asks: one lookup
    if runtime is not None:
        return runtime
    given = (table_hash, max_code_size)
    table_hash = table_hash.lower().removeprefix("0x")
    key = (table_hash, max_code_size)
    runtime = _chain_runtimes.get(key)
    if runtime is None:
        costs = metering.costs_by_hash(table_hash) if table_hash else metering.load_costs(LEGACY_VERSION)
        if costs is None:
            raise ValueError(f"no cost table with hash {table_hash} ships with this build; "
                             f"it has {describe_shipped()}")
        limit = max_code_size if "limit-created-code" in costs.rules else None
        with _chain_runtimes_lock:  # one runtime per table in the process, whichever thread asks first
            runtime = _chain_runtimes.get(key)
            if runtime is None:
                runtime = _chain_runtimes[key] = Runtime(costs=costs, max_code_size=limit,
                                                         cache_dir=os.environ.get("EWASM_CACHE_DIR") or None)
    _chain_runtimes[given] = runtime
    return runtime


def execute(message: Message, state: StateView, env: Environment | None = None,
            runtime: Runtime | None = None) -> ExecutionResult:
    """Run one transaction and write its effects into `state`.

    Raises InvalidTransaction (and changes nothing) when the transaction cannot pay for
    its intrinsic gas or its fee and value. Everything else, including every way a
    contract can fail, is reported in the result.
    """
    runtime = runtime or default_runtime()
    if env is None:
        env = _default_environment()
    is_create = message.to is None
    intrinsic = G.intrinsic_gas(message.data, is_create)
    if message.gas < intrinsic:
        raise InvalidTransaction(f"gas {message.gas} is below the intrinsic gas {intrinsic}")
    journal = JournaledState(state)
    sender = message.sender
    fee = message.gas * message.gas_price
    balance = journal.get_balance(sender)
    if balance < fee + message.value:
        raise InvalidTransaction(f"sender balance {balance} cannot pay {fee} for gas plus {message.value} value")
    journal.set_balance(sender, balance - fee)
    nonce = journal.get_nonce(sender)
    journal.set_nonce(sender, nonce + 1)
    snap = journal.snapshot()

    token = _tx_slots.get()
    try:
        tx = TxContext(runtime, journal, env, message.origin or sender, message.gas_price, message.scope,
                       message.incoming)
        try:
            result = _run_message(tx, message, nonce, message.gas - intrinsic)
        finally:
            tx.close()
    finally:
        _tx_slots.put(token)
    if result.status is Status.OUT_OF_RANGE:
        journal.revert(snap)
        result.gas_left = 0

    gas_used = message.gas - result.gas_left
    refund = min(journal.refund, gas_used // 2) if result.status is Status.SUCCESS else 0
    gas_used -= refund
    journal.add_balance(sender, (message.gas - gas_used) * message.gas_price)
    reward = gas_used * message.gas_price
    if reward:  # adding 0 changes nothing: an absent coinbase is still removed as touched-empty
        journal.add_balance(env.coinbase, reward)
    journal.touch(env.coinbase)
    success = result.status is Status.SUCCESS
    logs = tuple(journal.logs) if success else ()
    receipts = tuple(journal.receipts) if success else ()
    journal.commit()
    return ExecutionResult(
        status=result.status,
        gas_used=gas_used,
        gas_refund=refund,
        output=result.output,
        logs=logs,
        created_address=result.created,
        error=result.reason if not success else "",
        receipts=receipts,
    )


def _run_message(tx: TxContext, message: Message, nonce: int, gas: int) -> FrameResult:
    try:
        if message.to is None:
            address = create_address(message.sender, nonce)
            tx.check_scope(address)
            return process_create(tx, caller=message.sender, address=address, value=message.value,
                                  init_code=message.data, gas=gas, depth=0)
        tx.check_scope(message.to)
        return process_call(tx, caller=message.sender, to=message.to, code_address=message.to,
                            value=message.value, transfer=True, data=message.data, gas=gas,
                            depth=0, is_static=False)
    except ScopeViolation as err:
        return FrameResult(Status.OUT_OF_RANGE, 0, reason=str(err))
