"""What every backend of the EVM comparison provides, and what one call returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ewasm_cli.evmbench.workloads import Workload

Log = tuple[tuple[bytes, ...], bytes]  # (topics, data); the emitter's address differs per side


class BackendUnavailable(Exception):
    """A backend cannot run here: a package is missing or its contracts are not built."""


@dataclass(frozen=True)
class CallResult:
    """One executed call: what it returned, what it logged, what it cost, how long it took.

    `seconds` covers the execution call only; restoring the starting state
    afterwards is not part of it.
    """

    success: bool
    output: bytes
    logs: tuple[Log, ...]
    gas: int | None
    seconds: float

    def observable(self) -> tuple:
        """What must be equal on every side: status, return data and logs."""
        return (self.success, self.output, self.logs)


class Backend(Protocol):
    """A VM that runs the benchmark's workloads, each call against the same starting state."""

    name: str

    def call(self, workload: Workload, i: int) -> CallResult:
        """Run the i-th call of `workload` from the starting state and restore that state."""
        ...
