"""Compiled contracts, cached in memory (LRU) and on disk as serialized artifacts.

Compiling a small module takes milliseconds, deserializing it a tenth of that and a
cache hit well under a microsecond, so a node compiles each code once per wasmtime
version, engine configuration and cost table, ever. The disk key names all four
(code hash, wasmtime version, engine fingerprint, cost-table hash), so an artifact
made by a different setup is never picked up. Each file carries a checksum of its
payload: a truncated or corrupted artifact is recompiled and rewritten, never handed
to wasmtime's deserializer (which trusts its input).

Validation of the ewasm conventions happens here too, once per code: imports only
from the EEI with the right signatures (checked by the pre-linking), exports `main`
(no params, no results) and `memory`, and no start function.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from ewasm_runtime import engine as eng
from ewasm_runtime.capi import address
from metering.determinism import HOST_NAMESPACES

MAGIC = b"EWASMCW1"
_CHECKSUM = 32


class InvalidCode(Exception):
    """Code that cannot run as an ewasm contract; the reason is the message."""


@dataclass(frozen=True)
class CompiledCode:
    """A compiled, validated, pre-linked contract."""

    code_hash: str  # sha256 of the code, hex
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    pre_address: int  # the InstancePre as a raw pointer, for the hot path
    main_index: int  # export indices, for lookup without names
    memory_index: int
    gas_index: int | None  # the metered module's `gas_left` global
    stack_index: int | None  # the metered module's `stack_height` global
    initial_pages: int

    @property
    def metered(self) -> bool:
        return self.gas_index is not None and self.stack_index is not None


@dataclass
class CacheStats:
    hits: int = 0
    disk_hits: int = 0
    compiles: int = 0
    rejected_artifacts: int = 0  # corrupt or foreign files that were recompiled


class ModuleCache:
    """Code bytes -> CompiledCode, with an LRU in memory and artifacts in `directory`."""

    def __init__(self, linker: wasmtime.Linker, *, directory: str | os.PathLike | None = None,
                 capacity: int = 1024, costs_hash: str = "none"):
        self.linker = linker
        self.directory = Path(directory) if directory is not None else None
        self.capacity = capacity
        self.costs_hash = costs_hash
        self.stats = CacheStats()
        self._lru: OrderedDict[bytes, CompiledCode] = OrderedDict()
        self._invalid: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, code: bytes) -> CompiledCode:
        """The compiled form of `code`; raises InvalidCode when it is not a runnable contract."""
        if type(code) is not bytes:
            code = bytes(code)
        hit = self._lru.get(code)
        if hit is not None:
            self.stats.hits += 1
            self._lru.move_to_end(code)
            return hit
        reason = self._invalid.get(code)
        if reason is not None:
            raise InvalidCode(reason)
        with self._lock:
            try:
                compiled = self._load_or_compile(code)
            except InvalidCode as err:
                self._remember(self._invalid, code, str(err))
                raise
            self._remember(self._lru, code, compiled)
            return compiled

    def _remember(self, table: OrderedDict, key: bytes, value) -> None:
        table[key] = value
        if len(table) > self.capacity:
            table.popitem(last=False)

    def artifact_path(self, code_hash: str) -> Path | None:
        if self.directory is None:
            return None
        name = f"{code_hash}.wt{eng.WASMTIME_VERSION}.{eng.FINGERPRINT}.{self.costs_hash[:16]}.cwasm"
        return self.directory / name

    def _load_or_compile(self, code: bytes) -> CompiledCode:
        code_hash = hashlib.sha256(code).hexdigest()
        if code[:4] != b"\0asm":
            # wasmtime would also compile WAT text, unchecked for a start function here
            raise InvalidCode("not a wasm binary module (contract code is never text)")
        if _has_start_section(code):
            raise InvalidCode("a contract may not have a start function")
        path = self.artifact_path(code_hash)
        module = self._load_artifact(path) if path is not None else None
        if module is None:
            try:
                module = wasmtime.Module(eng.engine(), code)
            except wasmtime.WasmtimeError as err:
                raise InvalidCode(f"not a valid module: {_first_line(err)}") from None
            self.stats.compiles += 1
            if path is not None:
                self._store_artifact(path, module)
        else:
            self.stats.disk_hits += 1
        return self._link(code_hash, module)

    def _load_artifact(self, path: Path) -> wasmtime.Module | None:
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            self.stats.rejected_artifacts += 1
            return None
        payload = blob[len(MAGIC) + _CHECKSUM:]
        if (blob[:len(MAGIC)] != MAGIC
                or blob[len(MAGIC):len(MAGIC) + _CHECKSUM] != hashlib.sha256(payload).digest()):
            self.stats.rejected_artifacts += 1
            return None
        try:
            return wasmtime.Module.deserialize(eng.engine(), payload)
        except wasmtime.WasmtimeError:  # made by another wasmtime or configuration
            self.stats.rejected_artifacts += 1
            return None

    def _store_artifact(self, path: Path, module: wasmtime.Module) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        payload = bytes(module.serialize())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full disk only costs a recompile next time

    def _link(self, code_hash: str, module: wasmtime.Module) -> CompiledCode:
        for imp in module.imports:
            if imp.module not in HOST_NAMESPACES:
                raise InvalidCode(f"import {imp.module}.{imp.name} is outside the EEI")
        exports = {e.name: (i, e.type) for i, e in enumerate(module.exports)}
        main = exports.get("main")
        if main is None or not isinstance(main[1], wasmtime.FuncType) or main[1].params or main[1].results:
            raise InvalidCode("a contract must export `main` with no parameters and no results")
        memory = exports.get("memory")
        if memory is None or not isinstance(memory[1], wasmtime.MemoryType):
            raise InvalidCode("a contract must export its `memory`")
        try:
            pre = self.linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as err:
            raise InvalidCode(f"cannot link: {_first_line(err)}") from None
        return CompiledCode(
            code_hash=code_hash,
            module=module,
            pre=pre,
            pre_address=address(pre.ptr()),
            main_index=main[0],
            memory_index=memory[0],
            gas_index=_global_index(exports, "gas_left", "i64"),
            stack_index=_global_index(exports, "stack_height", "i32"),
            initial_pages=memory[1].limits.min,
        )

    def clear_memory(self) -> None:
        """Forget the in-memory entries (the disk artifacts stay)."""
        with self._lock:
            self._lru.clear()
            self._invalid.clear()


def _global_index(exports: dict, name: str, kind: str) -> int | None:
    entry = exports.get(name)
    if entry is None or not isinstance(entry[1], wasmtime.GlobalType):
        return None
    ty = entry[1]
    if str(ty.content) != kind or not ty.mutable:
        return None
    return entry[0]


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _has_start_section(code: bytes) -> bool:
    """Scan the section headers for a start section (id 8); malformed input says no
    and is left to the compiler to reject."""
    if code[:4] != b"\0asm":
        return False
    pos, n = 8, len(code)
    while pos < n:
        section_id = code[pos]
        pos += 1
        size, shift = 0, 0
        while pos < n:
            byte = code[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if section_id == 8:
            return True
        pos += size
    return False
