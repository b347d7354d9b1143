"""The metering transpiler: makes a WebAssembly module safe for consensus.

Public API (other packages and the tests use only these names):

- `check(wasm, profile="generic") -> list[Violation]`
- `meter(wasm, *, costs=None, profile="generic") -> bytes`
- `load_costs(path=None) -> CostTable` (a file or a shipped version such as "default-v1"),
  `shipped_costs()`, `costs_by_hash(hash)`
- `MalformedModule`, `DeterminismError`, `InvalidModule`, `Violation`

The metered module exports the mutable i64 global `gas_left` (the host sets it before a
call and reads it after) and the mutable i32 global `stack_height`; on out of gas
`gas_left` becomes -1, on stack overflow `stack_height` becomes -1, and the module traps.
"""

from metering.costs import CostTable, CostTableError, DynamicCost, costs_by_hash, load_costs, shipped_costs
from metering.errors import DeterminismError, InvalidModule, MalformedModule, Violation
from metering.gas import GAS_EXPORT
from metering.stack_limit import STACK_EXPORT
from metering.transpile import check, default_costs, meter

__all__ = [
    "check", "meter", "load_costs", "shipped_costs", "costs_by_hash", "default_costs", "CostTable", "CostTableError", "DynamicCost",
    "MalformedModule", "DeterminismError", "InvalidModule", "Violation", "GAS_EXPORT", "STACK_EXPORT",
]
