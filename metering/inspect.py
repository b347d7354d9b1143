"""What `ewasm inspect` shows: a module's structure and what metering will charge."""

from __future__ import annotations

from metering import opcodes as op
from metering.costs import CostTable
from metering.determinism import check_module
from metering.errors import MalformedModule
from metering.metered_blocks import metered_blocks
from metering.module import Section
from metering.transpile import decode, function_frame_costs
from metering.validate import validate


def _sig(ft) -> str:
    names = op.VALTYPE_NAMES
    return f"({' '.join(names.get(t, '?') for t in ft.params)}) -> ({' '.join(names.get(t, '?') for t in ft.results)})"


def inspect_module(wasm, costs: CostTable, profile: str = "generic", *, dev: bool = False) -> dict:
    """A JSON-ready description of the module (InvalidModule if one without violations
    breaks WebAssembly's validation rules)."""
    module, data = decode(wasm)
    violations = check_module(module, profile, dev=dev, max_memory_pages=costs.max_memory_pages)
    if not violations:
        validate(data)
    sections = []
    for sid in module.present:
        raw = module.raw_sections.get(sid, b"")
        sections.append({"name": Section(sid).name.lower(), "offset": module.section_offsets.get(sid, 0), "size": len(raw)})
    for c in module.customs:
        sections.append({"name": f"custom:{c.name}", "offset": c.offset, "size": len(c.raw or b"")})
    sections.sort(key=lambda s: s["offset"])
    try:
        frames = function_frame_costs(module, costs) if not violations else [None] * len(module.codes)
    except MalformedModule:
        frames = [None] * len(module.codes)
    names = module.names.functions if module.names else {}
    exported = {e.index: e.name for e in module.exports if e.kind == 0}
    base = module.num_imported_funcs
    types = module.func_type_indices()
    functions = []
    for i, code in enumerate(module.codes):
        index = base + i
        _, cost = metered_blocks(code.body, costs, costs.local * code.local_count)
        ft = module.types[types[index]] if types[index] < len(module.types) else None
        functions.append({
            "index": index, "name": names.get(index) or exported.get(index),
            "type": _sig(ft) if ft else "?", "locals": code.local_count, "instructions": len(code.body),
            "metered_blocks": sum(1 for c in cost if c), "static_cost": sum(cost), "frame_cost": frames[i],
        })
    return {
        "size": len(data),
        "sections": sections,
        "imports": [{"module": x.module, "name": f"{x.module}.{x.name}", "kind": x.kind.name.lower()} for x in module.imports],
        "exports": [{"name": x.name, "kind": x.kind.name.lower(), "index": x.index} for x in module.exports],
        "functions": functions,
        "violations": [{"func": v.func, "offset": v.offset, "reason": v.reason, "text": str(v)} for v in violations],
    }
