"""The transpiler's two entry points: `check` a module, `meter` it.

meter = decode -> refuse nondeterminism -> validate -> measure frames -> bound memory ->
inject gas -> limit the stack -> encode. Each step is its own module; this file only
lays them out in order and guarantees that nothing but MalformedModule, DeterminismError
or InvalidModule escapes.
"""

from __future__ import annotations

from metering.costs import CostTable, load_costs
from metering.decode import decode_module
from metering.determinism import check_module
from metering.encode import encode_module
from metering.errors import DeterminismError, InvalidModule, MalformedModule, Violation
from metering.gas import inject_gas
from metering.index_bounds import check_indices
from metering.memory_limit import bound_memory
from metering.module import Module
from metering.operand_stack import max_operand_height
from metering.stack_limit import frame_cost, limit_stack
from metering.validate import validate

_default_costs: CostTable | None = None


def default_costs() -> CostTable:
    global _default_costs
    if _default_costs is None:
        _default_costs = load_costs()
    return _default_costs


def to_binary(wasm: bytes | bytearray | memoryview | str) -> bytes:
    """Binary module bytes from binary or WAT text input.

    Bytes are a binary module when they begin with the wasm magic number, and text when
    they do not and read as text (so a WAT file may begin with a comment or a blank line).
    """
    if isinstance(wasm, str):
        return wat_to_binary(wasm)
    if isinstance(wasm, (bytes, bytearray, memoryview)):
        data = bytes(wasm)
        if data[:4] != b"\0asm" and _is_text(data):
            return wat_to_binary(data.decode("utf-8"))
        return data
    raise MalformedModule(f"expected module bytes or WAT text, got {type(wasm).__name__}", 0)


def _is_text(data: bytes) -> bool:
    """UTF-8 without NUL bytes: no binary module (nor its first bytes) reads so."""
    if b"\0" in data[:4096]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(data.strip())


def wat_to_binary(text: str) -> bytes:
    """Parse WAT with wasmtime's parser (the maintained one), as a MalformedModule on error."""
    import wasmtime  # only for text input; binary input needs nothing beyond the stdlib

    try:
        return wasmtime.wat2wasm(text)
    except Exception as err:  # wasmtime raises its own error type with the parser message
        first = str(err).strip().splitlines()[0] if str(err).strip() else "cannot parse"
        raise MalformedModule(f"invalid WAT: {first}", 0) from None


def decode(wasm, *, lazy_bodies: bool = False) -> tuple[Module, bytes]:
    data = to_binary(wasm)
    try:
        return decode_module(data, lazy_bodies=lazy_bodies), data
    except MalformedModule:
        raise
    except (ValueError, IndexError, KeyError, TypeError, RecursionError, OverflowError) as err:
        raise MalformedModule(f"cannot decode: {err}", 0) from None


def check(wasm, profile: str = "generic", *, dev: bool = False, max_memory_pages: int | None = None) -> list[Violation]:
    """Every determinism and convention violation of a module (an empty list when it is fine).

    Raises MalformedModule when the bytes are not a module at all, and InvalidModule when
    a module without violations breaks WebAssembly's validation rules.
    """
    module, source = decode(wasm, lazy_bodies=True)  # one body at a time: memory near the module's size
    if max_memory_pages is None:
        max_memory_pages = default_costs().max_memory_pages
    violations = check_module(module, profile, dev=dev, max_memory_pages=max_memory_pages)
    if not violations:
        validate(source)
    return violations


def meter(
    wasm,
    *,
    costs: CostTable | None = None,
    profile: str = "generic",
    dev: bool = False,
    max_memory_pages: int | None = None,
    stack_limit: int | None = None,
) -> bytes:
    """The metered module: gas charged per metered block, stack and memory bounded.

    Raises DeterminismError (with every violation), InvalidModule or MalformedModule,
    nothing else.
    """
    costs = costs or default_costs()
    max_pages = max_memory_pages if max_memory_pages is not None else costs.max_memory_pages
    limit = stack_limit if stack_limit is not None else costs.stack_limit
    module, source = decode(wasm)
    violations = check_module(module, profile, dev=dev, max_memory_pages=max_pages)
    if violations:
        raise DeterminismError(violations)
    validate(source)
    try:
        return _transform(module, source, costs, max_pages, limit)
    except (MalformedModule, DeterminismError, InvalidModule):
        raise
    except (ValueError, IndexError, KeyError, TypeError, RecursionError, OverflowError, AttributeError) as err:
        # Structurally odd input that the decoder accepted (say, an index out of range).
        raise MalformedModule(f"cannot meter: {type(err).__name__}: {err}", 0) from None


def function_frame_costs(module: Module, costs: CostTable) -> list[int]:
    """Stack units of each defined function, measured on the un-instrumented code."""
    func_types = [module.types[t] if t < len(module.types) else _unknown_type(t) for t in module.func_type_indices()]
    base = module.num_imported_funcs
    out = []
    for i, code in enumerate(module.codes):
        ft = func_types[base + i]
        peak = max_operand_height(module, ft, code, func_types)
        out.append(frame_cost(len(ft.params), code.local_count, peak, costs.frame_cost, costs.param_cost))
    return out


def _unknown_type(index: int):
    raise MalformedModule(f"unknown type {index}", 0)


def _transform(module: Module, source: bytes, costs: CostTable, max_pages: int, limit: int) -> bytes:
    for name in ("gas_left", "stack_height"):
        if any(e.name == name for e in module.exports):
            raise DeterminismError([Violation(None, 0, f"export name {name!r} is reserved for the metering globals")])
    check_indices(module)
    frames = function_frame_costs(module, costs)
    bound_memory(module, max_pages)
    inject_gas(module, costs)
    limit_stack(module, frames, limit)
    return encode_module(module, source)
