"""The native host interface: the C extension `_native` (the hot EEI functions and the
per-call path) and when it is used.

eei.py is the reference. The extension repeats its steps in C, in the same order and with
the same failure reasons, and falls back to it for everything that must run Python anyway
(nested calls, creates, other accounts, block hashes, the `shard` module). A runtime uses
the extension when it was built and imports; `EWASM_NATIVE=0` selects the reference on
demand. Without a C compiler at install the reference runs, with one warning line.

`init` hands the extension the addresses of the C functions it calls: wasmtime's, from
the library wasmtime-py loaded, pycryptodome's hash functions, from its raw libraries,
and OpenSSL's SHA256 from the libcrypto that hashlib loaded (pycryptodome's is the
fallback). Nothing is linked at build time, so the extension builds with the Python
headers alone.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
import sys
import threading
from pathlib import Path

from ewasm_runtime import capi, frame
from ewasm_runtime.eei import HostTrap, OutOfGas
from ewasm_runtime.journal import _MISSING
from ewasm_runtime.message import Log, Status
from ewasm_runtime.precompiles import BUILTINS, address_of
from ewasm_runtime.scope import ScopeViolation
from ewasm_runtime.state import ZERO32

ENV = "EWASM_NATIVE"
# The precompiles the extension computes itself (sha256, ripemd160, identity, keccak256).
NATIVE_PRECOMPILES = tuple(address_of(n) for n in (2, 3, 4, 9))

_WASMTIME = (
    "wasmtime_instance_pre_instantiate", "wasmtime_instance_export_nth", "wasmtime_func_call_unchecked",
    "wasmtime_global_get", "wasmtime_global_set", "wasmtime_memory_data", "wasmtime_memory_data_size",
    "wasmtime_trap_new", "wasmtime_error_delete", "wasm_trap_delete", "wasmtime_store_new",
    "wasmtime_store_context", "wasmtime_store_limiter", "wasmtime_store_delete",
)
_HASHES = {
    "_SHA256": ("SHA256_init", "SHA256_update", "SHA256_digest", "SHA256_destroy"),
    "_RIPEMD160": ("ripemd160_init", "ripemd160_update", "ripemd160_digest", "ripemd160_destroy"),
    "_keccak": ("keccak_init", "keccak_absorb", "keccak_digest", "keccak_destroy"),
}

_module = None
_why_not = ""
_loaded = False
_warned = False


def _pycryptodome_library(name: str) -> ctypes.CDLL:
    """One of pycryptodome's raw C libraries (Crypto/Hash/_NAME.*.so)."""
    import Crypto.Hash

    folder = Path(Crypto.Hash.__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / (name + suffix)
        if path.exists():
            return ctypes.CDLL(str(path))
    raise ImportError(f"pycryptodome's {name} library is not in {folder}")


def _openssl_sha256() -> int | None:
    """OpenSSL's SHA256() from the libcrypto that Python's hashlib uses, if it is there."""
    import _hashlib  # noqa: F401  (loads libcrypto into the process)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libcrypto" in line and "/" in line}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            return ctypes.cast(ctypes.CDLL(path).SHA256, ctypes.c_void_p).value
        except (OSError, AttributeError):
            continue
    return None


def _addresses() -> dict[str, int | None]:
    table: dict[str, int | None] = {name: capi.function_address(name) for name in _WASMTIME}
    table["SHA256"] = _openssl_sha256()
    for library, names in _HASHES.items():
        lib = _pycryptodome_library(library)
        for name in names:
            table[name] = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
    return table


_load_lock = threading.Lock()


def _load():
    """Import and bind the extension once; remember why when it cannot be used."""
    if _loaded:
        return _module
    with _load_lock:  # the import and init can let another thread in
        if not _loaded:
            _bind()
    return _module


def _bind() -> None:
    global _module, _why_not, _loaded
    try:
        from ewasm_runtime import _native
    except ImportError as err:
        _why_not, _loaded = f"not built ({err})", True
        return
    try:
        _native.init(_addresses(), {
            "SUCCESS": Status.SUCCESS, "REVERT": Status.REVERT, "TRAP": Status.TRAP,
            "OUT_OF_GAS": Status.OUT_OF_GAS, "OUT_OF_RANGE": Status.OUT_OF_RANGE,
            "HostTrap": HostTrap, "OutOfGas": OutOfGas, "ScopeViolation": ScopeViolation,
            "MISSING": _MISSING, "ZERO32": ZERO32, "Log": Log, "switch_point": _switch_point,
        }, capi.layout())
        kinds = (_native.RUN_DONE, _native.RUN_ERROR, _native.RUN_TRAP, _native.RUN_INSTANTIATE)
        if kinds != (frame.RUN_DONE, frame.RUN_ERROR, frame.RUN_TRAP, frame.RUN_INSTANTIATE):
            raise ImportError("the extension's run results differ from frame.py's")
    except (ImportError, KeyError, AttributeError, OSError) as err:
        _why_not, _loaded = f"cannot bind ({err})", True
        return
    _module, _loaded = _native, True


def _switch_point() -> None:
    """Called by the native host functions every 256 calls: entering a Python function is
    where the interpreter lets a thread waiting for the GIL have it (see _native.c)."""


def wanted() -> bool:
    """False when EWASM_NATIVE=0 asks for the reference EEI."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def available() -> bool:
    """Whether the extension is built and bound in this process."""
    return _load() is not None


def why_unavailable() -> str:
    _load()
    return _why_not


def default() -> bool:
    """What a Runtime uses unless told: the extension when it is there and wanted.

    Without it, one line on stderr says so (once per process)."""
    global _warned
    if not wanted():
        return False
    if available():
        return True
    if not _warned:
        _warned = True
        print(f"ewasm: the native host interface is {_why_not}; using the pure-Python EEI "
              f"(host calls about 10x slower)", file=sys.stderr)
    return False


def frame_class(native: bool) -> type:
    """The frame type whose host calls the chosen implementation serves."""
    return _load().Frame if native else frame.Frame


def store_functions(native: bool):
    """(open_store, close_store) of the chosen implementation."""
    if native:
        return _load().open_store, _load().close_store
    from ewasm_runtime.interpreter import close_store, open_store

    return open_store, close_store


def host_function(module: str, name: str, impl) -> tuple[int, int]:
    """(callback, env) addresses of one import: the C function when there is one, else a
    C trampoline into the reference impl."""
    return _load().host_function(module, name, impl)


def runs_builtin_precompiles(registry) -> bool:
    """The extension's fast path is only taken when the registry holds the built-ins."""
    return all(registry.get(a) is BUILTINS[a] for a in NATIVE_PRECOMPILES)
