"""Run every workload on every backend: check the outputs agree, then time them.

The first call of a workload on a backend is the check call: its status, return
data, logs and gas are compared across backends and it is not timed (it also
warms caches). Timed calls follow, each from the same starting state; the figure
reported is their median in microseconds.
"""

from __future__ import annotations

import gc
import statistics
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ewasm_cli.evmbench.backend import Backend, BackendUnavailable, CallResult
from ewasm_cli.evmbench.workloads import Workload, workloads

# Column order of the JSON, the table and the plot.
BACKENDS = ("wasm", "wasm_unmetered", "revm", "pyevm")
EVM_BACKENDS = ("revm", "pyevm")
WASM_BACKENDS = ("wasm", "wasm_unmetered")


@dataclass(frozen=True)
class Timing:
    """How many timed calls per (workload, backend): at least `min_calls`, then more
    while the cell has used less than `budget_s` seconds, up to `max_calls`. A cell
    whose check call alone took longer than the budget (py-evm at N = 100k takes
    seconds) gets `slow_calls` instead of `min_calls`."""

    min_calls: int
    max_calls: int
    budget_s: float
    slow_calls: int


FULL_TIMING = Timing(min_calls=5, max_calls=2_000, budget_s=1.0, slow_calls=3)
QUICK_TIMING = Timing(min_calls=1, max_calls=30, budget_s=0.05, slow_calls=1)


@dataclass
class Row:
    """The result of one workload on every backend."""

    workload: Workload
    us: dict[str, float | None] = field(default_factory=dict)
    gas: dict[str, int | None] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    outputs_match: bool | None = None
    compared: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def evm_gas(self) -> int | None:
        """Gas of the EVM transaction (revm and py-evm must agree; revm's if only one ran)."""
        return next((self.gas[b] for b in EVM_BACKENDS if self.gas.get(b) is not None), None)

    def to_json(self) -> dict:
        """The row as the JSON object the issue specifies, plus what was compared and notes."""
        return {
            "name": self.workload.name,
            "params": dict(self.workload.params),
            "wasm_us": self.us.get("wasm"),
            "wasm_unmetered_us": self.us.get("wasm_unmetered"),
            "revm_us": self.us.get("revm"),
            "pyevm_us": self.us.get("pyevm"),
            "wasm_gas": self.gas.get("wasm"),
            "evm_gas": self.evm_gas,
            "outputs_match": self.outputs_match,
            "compared": list(self.compared),
            "gas_by_backend": {b: self.gas.get(b) for b in BACKENDS},
            "calls_timed": {b: self.calls.get(b, 0) for b in BACKENDS},
            "notes": list(self.notes),
        }


@dataclass
class BenchResult:
    """All rows, plus why any backend did not run."""

    rows: list[Row]
    unavailable: dict[str, str]
    quick: bool

    def to_json(self) -> list[dict]:
        return [row.to_json() for row in self.rows]


def load_backends(names=BACKENDS) -> tuple[dict[str, Backend], dict[str, str]]:
    """Instantiate each backend that can run here; say why for each that cannot."""
    from ewasm_cli.evmbench import pyevm_backend, revm_backend, wasm_backend

    factories: dict[str, Callable[[], Backend]] = {
        "wasm": lambda: wasm_backend.WasmBackend(metered=True),
        "wasm_unmetered": lambda: wasm_backend.WasmBackend(metered=False),
        "revm": revm_backend.RevmBackend,
        "pyevm": pyevm_backend.PyEvmBackend,
    }
    ready, unavailable = {}, {}
    for name in names:
        try:
            ready[name] = factories[name]()
        except BackendUnavailable as err:
            unavailable[name] = str(err)
    return ready, unavailable


def time_calls(backend: Backend, workload: Workload, timing: Timing, check_seconds: float) -> list[float]:
    """Seconds of each timed call (the call index goes on from 1; 0 was the check call)."""
    min_calls = timing.slow_calls if check_seconds > timing.budget_s else timing.min_calls
    samples: list[float] = []
    spent = 0.0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one call would only add noise, as in timeit
    try:
        while len(samples) < min_calls or (
            spent < timing.budget_s and len(samples) < timing.max_calls
        ):
            seconds = backend.call(workload, len(samples) + 1).seconds
            samples.append(seconds)
            spent += seconds
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def compare(row: Row, checks: dict[str, CallResult]) -> None:
    """Set outputs_match: every backend succeeded and returned the same output and logs."""
    row.compared = [name for name in BACKENDS if name in checks]
    failed = [name for name in row.compared if not checks[name].success]
    for name in failed:
        row.notes.append(f"{name}: call failed")
    observed = {checks[name].observable() for name in row.compared}
    if len(row.compared) < 2:
        row.outputs_match = None  # nothing to compare against
        row.notes.append("only one backend ran: outputs not compared")
    else:
        row.outputs_match = not failed and len(observed) == 1
    if len(observed) > 1:
        outputs = ", ".join(f"{n}={checks[n].output.hex() or '<empty>'}" for n in row.compared)
        row.notes.append(f"outputs differ: {outputs}")
    evm = {b: checks[b].gas for b in EVM_BACKENDS if b in checks}
    if len(set(evm.values())) > 1:
        row.notes.append("EVM gas differs: " + ", ".join(f"{b}={g}" for b, g in evm.items()))


def run_workload(workload: Workload, backends: dict[str, Backend], timing: Timing,
                 on_step: Callable[[str], None]) -> Row:
    """Check, then time, one workload on every available backend."""
    row = Row(workload)
    checks: dict[str, CallResult] = {}
    for name in BACKENDS:
        backend = backends.get(name)
        if backend is None:
            row.us[name] = row.gas[name] = None
            continue
        on_step(f"{workload.label} on {name}")
        checks[name] = backend.call(workload, 0)
        samples = time_calls(backend, workload, timing, checks[name].seconds)
        row.us[name] = statistics.median(samples) * 1e6
        row.calls[name] = len(samples)
        # Without metering the module charges nothing itself: its gas is not comparable.
        row.gas[name] = None if name == "wasm_unmetered" else checks[name].gas
    compare(row, checks)
    return row


class Progress(Protocol):
    """What the runner reports while it works (the CLI draws a progress bar from it)."""

    def start(self, total: int) -> None: ...
    def step(self, label: str) -> None: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def step(self, label: str) -> None:
        pass


def run_benchmark(quick: bool = False, backend_names=BACKENDS,
                  progress: Progress | None = None) -> BenchResult:
    """The whole benchmark: every workload on every backend that can run here."""
    progress = progress or _Silent()
    backends, unavailable = load_backends(backend_names)
    timing = QUICK_TIMING if quick else FULL_TIMING
    selected = workloads(quick)
    progress.start(len(selected) * len(backends))
    rows = []
    for workload in selected:
        row = run_workload(workload, backends, timing, progress.step)
        for name, why in unavailable.items():
            row.notes.append(f"{name} unavailable: {why}")
        rows.append(row)
    return BenchResult(rows, unavailable, quick)
