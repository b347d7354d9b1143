"""Deployer wrappers: the init module that returns a contract's runtime code.

ewasm creation runs an *init* module; whatever its `main` hands to `finish`
becomes the new account's code. The generic wrapper built here does nothing
else: the runtime code sits in a data segment at offset 0 and `main` returns
it. (A C contract with a constructor gets its own init module instead, built by
`contracts.build`.) The wrapper is written byte by byte so that it is the same
on every machine, with no toolchain involved.
"""

from __future__ import annotations

from metering.decode import MAGIC, VERSION, decode_module
from metering.encode import name, sleb, uleb, vec
from metering.module import Section

WASM_HEADER = MAGIC + VERSION
PAGE_SIZE = 65536


def _section(section: Section, payload: bytes) -> bytes:
    return bytes([section]) + uleb(len(payload)) + payload


def deployer_wrapper(runtime_code: bytes) -> bytes:
    """An init module whose `main` returns `runtime_code` through `finish`.

    Imports only ethereum.finish, exports exactly `main` and `memory`, has no
    start function; its memory is just large enough for the code (at least
    one page) and cannot grow.
    """
    if not runtime_code.startswith(WASM_HEADER):
        raise ValueError("runtime code is not a wasm binary (missing the \\0asm header)")
    pages = max(1, -(-len(runtime_code) // PAGE_SIZE))
    i32 = b"\x7f"
    types = vec([b"\x60" + vec([i32, i32]) + vec([]), b"\x60" + vec([]) + vec([])])
    imports = vec([name("ethereum") + name("finish") + b"\x00" + uleb(0)])
    functions = vec([uleb(1)])
    memory = vec([b"\x01" + uleb(pages) + uleb(pages)])
    exports = vec([name("main") + b"\x00" + uleb(1), name("memory") + b"\x02" + uleb(0)])
    # main: finish(0, len(runtime_code))
    body = vec([]) + b"\x41" + sleb(0) + b"\x41" + sleb(len(runtime_code)) + b"\x10" + uleb(0) + b"\x0b"
    code = vec([uleb(len(body)) + body])
    data = vec([b"\x00" + b"\x41" + sleb(0) + b"\x0b" + uleb(len(runtime_code)) + runtime_code])
    return (
        WASM_HEADER
        + _section(Section.TYPE, types)
        + _section(Section.IMPORT, imports)
        + _section(Section.FUNCTION, functions)
        + _section(Section.MEMORY, memory)
        + _section(Section.EXPORT, exports)
        + _section(Section.CODE, code)
        + _section(Section.DATA, data)
    )


def strip_custom_sections(wasm: bytes) -> bytes:
    """`wasm` without its custom sections (names, producers, debug info).

    Contracts carry no names: they cost storage and gas, and toolchains differ
    in what they write there, which would break byte-for-byte rebuilds.
    """
    module = _decode(wasm)
    return WASM_HEADER + b"".join(module.raw_sections[section] for section in module.present)


def export_names(wasm: bytes) -> list[str]:
    """The names a wasm binary exports, in order."""
    return [export.name for export in _decode(wasm).exports]


def _decode(wasm: bytes):
    """The transpiler's decoding of `wasm`; ValueError (with the byte offset) if malformed."""
    if not wasm.startswith(WASM_HEADER):
        raise ValueError("not a wasm binary (missing the \\0asm header)")
    return decode_module(wasm)
