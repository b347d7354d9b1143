"""Deployer wrappers: the init module that returns a contract's runtime code.

ewasm creation runs an *init* module; whatever its `main` hands to `finish`
becomes the new account's code. The generic wrapper built here does nothing
else: the runtime code sits in a data segment at offset 0 and `main` returns
it. (A C contract with a constructor gets its own init module instead, built by
`contracts.build`.) The wrapper is written byte by byte so that it is the same
on every machine, with no toolchain involved.
"""

from __future__ import annotations

WASM_HEADER = b"\x00asm\x01\x00\x00\x00"
PAGE_SIZE = 65536

_SECTION_CUSTOM = 0
_SECTION_TYPE = 1
_SECTION_IMPORT = 2
_SECTION_FUNCTION = 3
_SECTION_MEMORY = 5
_SECTION_EXPORT = 7
_SECTION_CODE = 10
_SECTION_DATA = 11


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def _vec(items: list[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _uleb(len(raw)) + raw


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _uleb(len(payload)) + payload


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
    types = _vec([b"\x60" + _vec([i32, i32]) + _vec([]), b"\x60" + _vec([]) + _vec([])])
    imports = _vec([_name("ethereum") + _name("finish") + b"\x00" + _uleb(0)])
    functions = _vec([_uleb(1)])
    memory = _vec([b"\x01" + _uleb(pages) + _uleb(pages)])
    exports = _vec([_name("main") + b"\x00" + _uleb(1), _name("memory") + b"\x02" + _uleb(0)])
    # main: finish(0, len(runtime_code))
    body = _vec([]) + b"\x41" + _sleb(0) + b"\x41" + _sleb(len(runtime_code)) + b"\x10" + _uleb(0) + b"\x0b"
    code = _vec([_uleb(len(body)) + body])
    data = _vec([b"\x00" + b"\x41" + _sleb(0) + b"\x0b" + _uleb(len(runtime_code)) + runtime_code])
    return (
        WASM_HEADER
        + _section(_SECTION_TYPE, types)
        + _section(_SECTION_IMPORT, imports)
        + _section(_SECTION_FUNCTION, functions)
        + _section(_SECTION_MEMORY, memory)
        + _section(_SECTION_EXPORT, exports)
        + _section(_SECTION_CODE, code)
        + _section(_SECTION_DATA, data)
    )


def _sections(wasm: bytes):
    """(section id, start, payload start, end) for each section of a wasm binary."""
    if not wasm.startswith(WASM_HEADER):
        raise ValueError("not a wasm binary (missing the \\0asm header)")
    pos = len(WASM_HEADER)
    while pos < len(wasm):
        section_id = wasm[pos]
        size, cursor = _read_uleb(wasm, pos + 1, pos)
        end = cursor + size
        if end > len(wasm):
            raise ValueError(f"section at byte {pos} runs past the end of the module")
        yield section_id, pos, cursor, end
        pos = end


def _read_uleb(data: bytes, cursor: int, where: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if cursor >= len(data):
            raise ValueError(f"truncated LEB128 number in the section at byte {where}")
        byte = data[cursor]
        cursor += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, cursor


def strip_custom_sections(wasm: bytes) -> bytes:
    """`wasm` without its custom sections (names, producers, debug info).

    Contracts carry no names: they cost storage and gas, and toolchains differ
    in what they write there, which would break byte-for-byte rebuilds.
    """
    out = bytearray(WASM_HEADER)
    for section_id, start, _, end in _sections(wasm):
        if section_id != _SECTION_CUSTOM:
            out += wasm[start:end]
    return bytes(out)


def export_names(wasm: bytes) -> list[str]:
    """The names a wasm binary exports, in order."""
    names = []
    for section_id, start, cursor, _ in _sections(wasm):
        if section_id != _SECTION_EXPORT:
            continue
        count, cursor = _read_uleb(wasm, cursor, start)
        for _ in range(count):
            length, cursor = _read_uleb(wasm, cursor, start)
            names.append(wasm[cursor:cursor + length].decode("utf-8", "replace"))
            _, cursor = _read_uleb(wasm, cursor + length + 1, start)  # kind byte, then index
    return names
