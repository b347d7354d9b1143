"""Memory bound: every memory gets a maximum no larger than the chain's page limit.

A module that declares more than the limit is refused by the determinism check; this
pass gives a maximum to memories that have none, so `memory.grow` can never take a
node's memory beyond what the chain allows.
"""

from __future__ import annotations

from dataclasses import replace

from metering.module import ExternKind, Limits, Module, Section


def _bounded(limits: Limits, max_pages: int) -> Limits:
    if limits.max is not None:
        return limits
    return replace(limits, max=max(max_pages, limits.min), flags=limits.flags | 1)


def bound_memory(module: Module, max_pages: int) -> None:
    """Give every defined and imported memory a maximum of at most `max_pages`."""
    for i, limits in enumerate(module.memories):
        if limits.max is None:
            module.memories[i] = _bounded(limits, max_pages)
            module.touch(Section.MEMORY)
    for imp in module.imports:
        if imp.kind == ExternKind.MEMORY and imp.desc.max is None:
            imp.desc = _bounded(imp.desc, max_pages)
            module.touch(Section.IMPORT)
