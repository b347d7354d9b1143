"""Cost tables: the gas every instruction and dynamic operation costs.

A table is a versioned JSON data file. It maps instruction classes to weights and lists
which opcodes belong to each class, so the file alone fixes every static cost and its
hash (of the canonical JSON) names the exact rules a chain runs under. It also carries
the consensus limits the transpiler enforces: the memory page limit and the stack limit.

Tables ship in metering/costs/, one file per version, and are never edited once a chain
may run them: a new rule is a new version with a new hash. `default-v2` is the default;
`default-v1` stays loadable (by version or hash) for the chains that name it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from metering import opcodes as op

FORMAT = "ewasm-costs/1"
COSTS_DIR = Path(__file__).with_name("costs")
DEFAULT_VERSION = "default-v2"
# What a chain spec that names no costTable runs: the default when such specs were written.
LEGACY_VERSION = "default-v1"
# Rules of the VM that a table turns on, from default-v2 on (v1 has none):
# - "u128-sender-balance": a call with value or a create from a balance past 128 bits ends
#   the frame, as Hera refuses it;
# - "limit-created-code": a chain's maxCodeSize bounds the runtime code a creation stores.
KNOWN_RULES = frozenset(["u128-sender-balance", "limit-created-code"])
DEFAULT_PATH = COSTS_DIR / f"{DEFAULT_VERSION}.json"
MAX_WEIGHT = 1 << 20  # keeps every dynamic charge (count * weight) far from i64 overflow

_NAME_TO_OP = {op.name(code): code for code in range(0x100) if op.SINGLE_IMM[code] is not None}
_NAME_TO_OP.update({op.name(op.fc(sub)): op.fc(sub) for sub in range(18)})
_NAME_TO_OP["select_t"] = op.SELECT_T
_NAME_TO_OP["select"] = op.SELECT


@dataclass(frozen=True)
class DynamicCost:
    """Gas for an operation whose work depends on its count operand (pages, bytes, elements)."""

    unit: int  # count is rounded up to a whole number of units (a power of two)
    cost: int  # gas per unit

    def charge(self, count: int) -> int:
        return -(-count // self.unit) * self.cost


@dataclass(frozen=True)
class CostTable:
    version: str
    weights: dict[int, int]  # opcode -> static gas
    local: int  # per declared local, charged at function entry
    dynamic: dict[int, DynamicCost]  # opcode -> charge on its count operand
    memory_page: int  # per initial memory page, charged by the host at instantiation
    max_memory_pages: int
    stack_limit: int  # in stack units (one value slot each)
    frame_cost: int  # stack units per activation, on top of params, locals and operands
    # Stack units per parameter. Cranelift gives a parameter a slot in the caller's
    # outgoing area and another in the callee's frame; v1 counted one (see default-v2.json).
    param_cost: int
    start_gas: int  # gas a start function runs with: instantiation happens before the host can set gas
    # Host-function prices that differ from their Byzantium opcode's, by EEI name (the VM's
    # default applies to any name not here).
    eei: dict[str, int] = field(default_factory=dict)
    rules: frozenset = frozenset()  # of KNOWN_RULES
    source: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def hash(self) -> str:
        """sha256 of the table's canonical JSON: what a chain spec names."""
        canonical = json.dumps(self.source, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def cost(self, opcode: int) -> int:
        return self.weights.get(opcode, 0)


class CostTableError(ValueError):
    """A cost table file that is not a valid table."""


def load_costs(path: str | Path | None = None) -> CostTable:
    """Load and validate a cost table: a file, a shipped version's name ("default-v1"),
    or the default table when no path is given."""
    if path is None:
        path = DEFAULT_PATH
    elif not Path(path).exists() and (COSTS_DIR / f"{path}.json").exists():
        path = COSTS_DIR / f"{path}.json"
    path = Path(path)
    try:
        source = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CostTableError(f"cannot read cost table {path}: {err}") from None
    return parse_costs(source)


def parse_costs(source: dict) -> CostTable:
    """Build a CostTable from its JSON form, refusing anything incomplete or out of range."""
    try:
        if source.get("format") != FORMAT:
            raise CostTableError(f"cost table format must be {FORMAT!r}")
        weights: dict[int, int] = {}
        for class_name, entry in source["classes"].items():
            weight = _weight(entry["gas"], class_name)
            for opname in entry["ops"]:
                code = _NAME_TO_OP.get(opname)
                if code is None:
                    raise CostTableError(f"class {class_name!r}: unknown instruction {opname!r}")
                if code in weights:
                    raise CostTableError(f"instruction {opname!r} is in two classes")
                weights[code] = weight
        missing = sorted(n for n, c in _NAME_TO_OP.items() if c not in weights and c not in op.FLOAT_OPS and c not in op.EXCEPTION_OPS and c not in op.TAIL_CALL_OPS)
        if missing:
            raise CostTableError(f"instructions without a cost: {', '.join(missing)}")
        dynamic = {}
        for opname, entry in source["dynamic"].items():
            unit = int(entry["unit"])
            if unit <= 0 or unit & (unit - 1):
                raise CostTableError(f"dynamic {opname!r}: unit must be a power of two")
            dynamic[_NAME_TO_OP[opname]] = DynamicCost(unit, _weight(entry["gas"], opname))
        limits = source["limits"]
        return CostTable(
            version=str(source["version"]),
            weights=weights,
            local=_weight(source["local"], "local"),
            dynamic=dynamic,
            memory_page=_weight(source["memory_page"], "memory_page"),
            max_memory_pages=_bounded(limits["max_memory_pages"], "max_memory_pages", 65536),
            stack_limit=_bounded(limits["stack_limit"], "stack_limit", 1 << 24),
            frame_cost=_bounded(limits["frame_cost"], "frame_cost", 1 << 16),
            param_cost=_bounded(limits.get("param_cost", 1), "param_cost", 64),
            eei={name: _weight(gas, f"eei.{name}") for name, gas in _eei_prices(source).items()},
            rules=_rules(source),
            start_gas=_bounded(limits["start_gas"], "start_gas", 1 << 40),
            source=source,
        )
    except (KeyError, TypeError, AttributeError) as err:
        raise CostTableError(f"cost table is missing or mistypes {err}") from None


EEI_PRICED = frozenset(["getBlockHash"])  # the host functions a table may price


def _eei_prices(source: dict) -> dict:
    prices = source.get("eei", {})
    if not isinstance(prices, dict) or not set(prices) <= EEI_PRICED:
        raise CostTableError(f"eei: a table may price only {', '.join(sorted(EEI_PRICED))}")
    return prices


def _rules(source: dict) -> frozenset:
    rules = source.get("rules", [])
    if not isinstance(rules, list) or not set(rules) <= KNOWN_RULES:
        raise CostTableError(f"rules: a table may switch on only {', '.join(sorted(KNOWN_RULES))}")
    return frozenset(rules)


def shipped_costs() -> dict[str, CostTable]:
    """Every cost table this build ships, by version."""
    tables = (load_costs(path) for path in sorted(COSTS_DIR.glob("*.json")))
    return {table.version: table for table in tables}


def describe_shipped() -> str:
    """The shipped tables as "version (hash)", for the error that names a missing one."""
    return ", ".join(f"{t.version} ({t.hash})" for t in shipped_costs().values())


def costs_by_hash(table_hash: str) -> CostTable | None:
    """The shipped table with this hash (what a chain spec's costTable names), if any."""
    table_hash = table_hash.lower().removeprefix("0x")
    return next((t for t in shipped_costs().values() if t.hash == table_hash), None)


def _weight(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_WEIGHT:
        raise CostTableError(f"{what}: gas must be an integer in 0..{MAX_WEIGHT}")
    return value


def _bounded(value, what: str, upper: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= upper:
        raise CostTableError(f"{what}: must be an integer in 1..{upper}")
    return value


def supported_instruction_names() -> list[str]:
    """Every instruction a table must price (floats and refused proposals excluded)."""
    return sorted(n for n, c in _NAME_TO_OP.items() if c not in op.FLOAT_OPS and c not in op.EXCEPTION_OPS and c not in op.TAIL_CALL_OPS)
