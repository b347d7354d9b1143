"""The three ways the transpiler refuses a module.

All are ValueError subclasses so callers that only care about "bad input" can catch
ValueError; nothing else ever escapes `metering.check` or `metering.meter`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One determinism or convention rule that a module breaks."""

    func: int | None  # function index in the module's function index space, or None
    offset: int  # byte offset in the module binary
    reason: str  # one line

    def __str__(self) -> str:
        where = f"func {self.func} " if self.func is not None else ""
        return f"{where}@{self.offset:#x}: {self.reason}"


class MalformedModule(ValueError):
    """The bytes are not a well-formed module of the supported feature set."""

    def __init__(self, reason: str, offset: int):
        super().__init__(f"malformed module at byte {offset:#x}: {reason}")
        self.reason = reason
        self.offset = offset


class DeterminismError(ValueError):
    """The module is well formed but breaks consensus rules; carries every violation."""

    def __init__(self, violations: list[Violation]):
        first = violations[0] if violations else "no violations"
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(f"module refused: {first}{more}")
        self.violations = list(violations)


class InvalidModule(ValueError):
    """Well formed and deterministic, but not valid WebAssembly (a type error, a bad
    alignment, an index out of range ...): what wasmtime's validator says of it."""

    def __init__(self, reason: str):
        super().__init__(f"invalid module: {reason}")
        self.reason = reason
