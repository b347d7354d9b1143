"""The contract VM: ewasm's host interface on wasmtime.

Public API:

- `execute(message, state, env=None, runtime=None) -> ExecutionResult`
- `Message`, `Environment`, `ExecutionResult`, `Status`, `Log`, `InvalidTransaction`
- `SentReceipt`, `IncomingReceipt`: cross-shard receipts (import module `shard`)
- `StateView` (protocol), `MemoryState`, `JsonFileState`, `Account`
- `Runtime` (metering switch, cost table, module cache, precompiles), `default_runtime()`
- `PrecompileRegistry`, `Precompile`; `InvalidCode`; `create_address`, `keccak256`
- `in_scope`, `overlaps` for transaction scopes
"""

from ewasm_runtime.cache import CompiledCode, InvalidCode, ModuleCache
from ewasm_runtime.eei import EEI
from ewasm_runtime.hashing import create_address, keccak256
from ewasm_runtime.message import (
    Environment, ExecutionResult, IncomingReceipt, InvalidTransaction, Log, Message, SentReceipt, Status,
)
from ewasm_runtime.precompiles import Precompile, PrecompileRegistry
from ewasm_runtime.runtime import Runtime, default_runtime, execute, runtime_for_costs
from ewasm_runtime.scope import in_scope, overlaps
from ewasm_runtime.state import Account, JsonFileState, MemoryState, StateView

__all__ = [
    "execute", "Runtime", "default_runtime", "runtime_for_costs",
    "Message", "Environment", "ExecutionResult", "Status", "Log", "InvalidTransaction",
    "SentReceipt", "IncomingReceipt",
    "StateView", "MemoryState", "JsonFileState", "Account",
    "Precompile", "PrecompileRegistry", "InvalidCode", "CompiledCode", "ModuleCache", "EEI",
    "create_address", "keccak256", "in_scope", "overlaps",
]
