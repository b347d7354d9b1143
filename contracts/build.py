"""Build contracts: C through clang (wasm32, no libc), WAT through wasmtime, AssemblyScript
through the pinned asc from npm (contracts/asc.py).

`build_contract(path)` returns the runtime module; `build_contract(path,
deployer=True)` returns the init module that deploys it. `python -m
contracts.build` rebuilds every committed example `.wasm` (`--check` compares
instead of writing), which is how the committed binaries are made; the
AssemblyScript ones only where asc is available, as the C ones need clang.

Builds are reproducible: no names, debug info or producer sections reach the
output, so the same compiler version gives the same bytes on every machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from contracts.abi import abi_of_file, write_abi
from contracts.deployer import PAGE_SIZE, deployer_wrapper, export_names, strip_custom_sections

CONTRACTS_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = CONTRACTS_DIR / "include"
EXAMPLES_DIR = CONTRACTS_DIR / "examples"
ASSEMBLYSCRIPT_DIR = CONTRACTS_DIR / "assemblyscript"

# The committed C builds were made with this compiler (see contracts/README.md);
# a byte-for-byte rebuild is only expected from the same major version.
BUILT_WITH_CLANG = "Debian clang version 14.0.6"
BUILT_WITH_CLANG_MAJOR = 14

# The committed examples: each source gives NAME.wasm (runtime) and
# NAME.deploy.wasm (init module).
EXAMPLE_SOURCES = ("counter.wat", "forwarder.wat", "spinner.wat", "token.c", "workloads.c", "xtoken.c")
# The system contracts genesis places at reserved addresses (chain/core/system.py).
SYSTEM_SOURCES = ("permissions.wat", "validators.wat", "outbox.wat")
SYSTEM_DIR = CONTRACTS_DIR / "system"  # (contracts.SYSTEM_DIR)
# The AssemblyScript twins of the token and the counter (built by the pinned asc).
ASSEMBLYSCRIPT_SOURCES = ("counter.ts", "token.ts")

CLANG_HINT = "clang not found: install clang and lld (e.g. `apt-get install clang lld`) to build C contracts"
WASM_LD_HINT = "wasm-ld not found: install lld (e.g. `apt-get install lld`) to link C contracts"

STACK_SIZE = 16 * 1024
MAX_PAGES = 16
OPT_LEVELS = ("0", "1", "2", "3", "s", "z")


class BuildError(Exception):
    """The source did not build; the message carries the tool's diagnostics."""


class ToolMissing(BuildError):
    """A compiler the build needs is not installed; the message says how to get it."""


@dataclass(frozen=True)
class Toolchain:
    """The clang found on this machine."""

    clang: str
    version: str
    major: int


@dataclass(frozen=True)
class Built:
    """What a build produced: the runtime module, and the init module when asked for."""

    runtime: bytes
    deployer: bytes | None = None


def find_clang() -> Toolchain:
    """Locate clang and wasm-ld, or raise ToolMissing with install advice."""
    clang = shutil.which("clang")
    if clang is None:
        raise ToolMissing(CLANG_HINT)
    if shutil.which("wasm-ld") is None:
        raise ToolMissing(WASM_LD_HINT)
    version = clang_version(clang)
    match = re.search(r"clang version (\d+)", version)
    return Toolchain(clang, version, int(match.group(1)) if match else 0)


def clang_version(clang: str = "clang") -> str:
    """The first line of `clang --version`, e.g. 'Debian clang version 14.0.6'."""
    done = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0].strip() if done.stdout else ""


def compile_wat(source: str | Path) -> bytes:
    """Assemble WAT text (or a .wat file) into a module without custom sections.

    wasmtime's assembler is always installed (it is the VM's engine); once its
    name section is stripped the output equals wabt's `wat2wasm`.
    """
    import wasmtime

    text = Path(source).read_text() if isinstance(source, Path) else source
    try:
        wasm = wasmtime.wat2wasm(text)
    except Exception as err:  # wasmtime raises its own error type with the position
        raise BuildError(f"{source}: {err}") from None
    return strip_custom_sections(bytes(wasm))


def _clang_command(toolchain: Toolchain, source: Path, output: Path, pages: int, opt: str,
                   extra: list[str]) -> list[str]:
    memory = str(pages * PAGE_SIZE)
    return [
        toolchain.clang,
        "--target=wasm32",
        "-mcpu=mvp",  # plain MVP wasm: no sign-ext, bulk memory or other proposals
        f"-O{opt}",
        "-ffreestanding",
        "-nostdlib",
        "-Wall",
        "-Wextra",
        f"-I{INCLUDE_DIR}",
        *extra,
        "-Wl,--no-entry",
        "-Wl,--strip-all",
        "-Wl,--gc-sections",
        f"-Wl,-z,stack-size={STACK_SIZE}",
        f"-Wl,--initial-memory={memory}",
        f"-Wl,--max-memory={memory}",
        "-o",
        str(output),
        str(source),
    ]


def _run_clang(toolchain: Toolchain, source: Path, opt: str, extra: list[str]) -> bytes:
    """Compile and link one C file, in the fewest 64 KiB pages that fit."""
    with tempfile.TemporaryDirectory(prefix="ewasm-cc-") as tmp:
        output = Path(tmp) / "out.wasm"
        for pages in range(1, MAX_PAGES + 1):
            done = subprocess.run(_clang_command(toolchain, source, output, pages, opt, extra),
                                  capture_output=True, text=True, check=False)
            if done.returncode == 0:
                if done.stderr.strip():  # warnings: the author should see them
                    print(done.stderr.rstrip(), file=sys.stderr)
                return strip_custom_sections(output.read_bytes())
            if "initial memory too small" not in done.stderr:
                raise BuildError(f"clang failed on {source}:\n{done.stderr.strip()}")
        raise BuildError(f"{source}: data and stack do not fit in {MAX_PAGES} pages of memory")


def compile_c(source: Path, *, deployer: bool = False, opt: str = "2") -> Built:
    """Build a C contract: the runtime module and, with `deployer`, its init module.

    The init module of a contract with an EWASM_CONSTRUCTOR is the same file
    compiled again with EWASM_DEPLOYER defined and the runtime bytes in
    `ewasm_runtime_code`; without a constructor it is the generic wrapper.
    """
    if opt not in OPT_LEVELS:
        raise BuildError(f"unknown optimisation level -O{opt} (one of {', '.join(OPT_LEVELS)})")
    source = Path(source)
    toolchain = find_clang()
    runtime = _run_clang(toolchain, source, opt, [])
    if not deployer:
        return Built(runtime)
    with tempfile.TemporaryDirectory(prefix="ewasm-deploy-") as tmp:
        header = Path(tmp) / "ewasm_runtime_code.h"
        header.write_text(_runtime_code_header(runtime))
        init = _run_clang(toolchain, source, opt, ["-DEWASM_DEPLOYER", "-include", str(header)])
    # Only EWASM_CONSTRUCTOR exports `main` in a deployer build; without one,
    # the generic wrapper is the init module.
    return Built(runtime, init if "main" in export_names(init) else deployer_wrapper(runtime))


def _runtime_code_header(runtime: bytes) -> str:
    """C definitions of the runtime bytes that the init module returns."""
    rows = [", ".join(f"0x{b:02x}" for b in runtime[i:i + 16]) for i in range(0, len(runtime), 16)]
    body = ",\n    ".join(rows)
    return (
        "#include <stdint.h>\n"
        f"const uint8_t ewasm_runtime_code[{len(runtime)}] = {{\n    {body}\n}};\n"
        f"const uint32_t ewasm_runtime_size = {len(runtime)};\n"
    )


def build(source: str | Path, *, deployer: bool = False, opt: str = "2") -> Built:
    """Build a .c, .wat or .ts (AssemblyScript) contract, and with `deployer` also its init module."""
    source = Path(source)
    if not source.is_file():
        raise BuildError(f"{source}: no such file")
    suffix = source.suffix.lower()
    if suffix == ".c":
        return compile_c(source, deployer=deployer, opt=opt)
    if suffix == ".wat":
        runtime = compile_wat(source)
        return Built(runtime, deployer_wrapper(runtime) if deployer else None)
    if suffix == ".ts":
        from contracts.asc import compile_assemblyscript
        return compile_assemblyscript(source, deployer=deployer, opt=opt)
    raise BuildError(f"{source}: expected a .c or .wat file, or .ts for AssemblyScript")


def build_contract(source: str | Path, *, deployer: bool = False, opt: str = "2") -> bytes:
    """The runtime module of a .c, .wat or .ts contract, or with `deployer` its init module."""
    built = build(source, deployer=deployer, opt=opt)
    return built.deployer if deployer else built.runtime


def determinism_violations(wasm: bytes) -> list[str]:
    """What the chain's transpiler would refuse in `wasm` (ewasm profile).

    Empty when the transpiler's checker is not installed yet: the build is
    data-only and must not need it.
    """
    try:
        import metering
    except ImportError:
        return []
    check = getattr(metering, "check", None)
    if check is None:
        return []
    return [str(v) for v in check(wasm, profile="ewasm")]


def default_output(source: Path, *, deployer: bool) -> Path:
    """NAME.wasm for the runtime module, NAME.deploy.wasm for the init module."""
    return source.with_suffix(".deploy.wasm" if deployer else ".wasm")


def abi_output(source: Path) -> Path:
    """NAME.abi.json: the ABI the source declares (contracts/abi.py)."""
    return source.with_suffix(".abi.json")


def rebuild_abis(*, check: bool = False) -> list[str]:
    """Write (or, with `check`, compare) every example's NAME.abi.json from its source's
    declarations (the AssemblyScript twins included); returns the files that differ.
    No compiler is needed."""
    differing = []
    for source in [EXAMPLES_DIR / name for name in EXAMPLE_SOURCES] + assemblyscript_sources():
        abi, output = abi_of_file(source), abi_output(source)
        if not check:
            write_abi(abi, output)
        elif not output.is_file() or json.loads(output.read_text()) != abi:
            differing.append(str(output.relative_to(CONTRACTS_DIR)))
    return differing


def committed_sources() -> list[Path]:
    """Every contract source whose binaries are committed: the examples and the system contracts."""
    return [EXAMPLES_DIR / name for name in EXAMPLE_SOURCES] + [SYSTEM_DIR / name for name in SYSTEM_SOURCES]


def assemblyscript_sources() -> list[Path]:
    """The AssemblyScript contracts whose binaries are committed (they need asc to rebuild)."""
    return [ASSEMBLYSCRIPT_DIR / name for name in ASSEMBLYSCRIPT_SOURCES]


def example_outputs(sources: list[Path] | None = None) -> list[tuple[Path, bool, Path]]:
    """(source, deployer?, committed output) for every committed example binary (or those of `sources`)."""
    rows = []
    for source in committed_sources() if sources is None else sources:
        for deployer in (False, True):
            rows.append((source, deployer, default_output(source, deployer=deployer)))
    return rows


def rebuild_examples(*, check: bool = False, only_wat: bool = False) -> list[str]:
    """Rebuild every committed example; with `check`, compare instead of writing.

    Returns the outputs that differ from the committed files (always empty
    when writing).
    """
    return _rebuild([s for s in committed_sources() if not only_wat or s.suffix == ".wat"], check=check)


def rebuild_assemblyscript(*, check: bool = False) -> list[str]:
    """`rebuild_examples` for the AssemblyScript twins (raises ToolMissing without asc)."""
    return _rebuild(assemblyscript_sources(), check=check)


def _rebuild(sources: list[Path], *, check: bool) -> list[str]:
    differing = []
    for source in sources:
        built = build(source, deployer=True)
        for wasm, output in ((built.runtime, default_output(source, deployer=False)),
                             (built.deployer, default_output(source, deployer=True))):
            if not check:
                output.write_bytes(wasm)
            elif not output.is_file() or output.read_bytes() != wasm:
                differing.append(str(output.relative_to(CONTRACTS_DIR)))
    return differing


def main(argv: list[str] | None = None) -> int:
    """`python -m contracts.build [--check]`: rebuild the committed examples."""
    parser = argparse.ArgumentParser(prog="python -m contracts.build", description=main.__doc__)
    parser.add_argument("--check", action="store_true",
                        help="compare the rebuilt binaries with the committed ones; write nothing")
    args = parser.parse_args(argv)
    try:
        toolchain: Toolchain | None = find_clang()
    except ToolMissing as err:
        print(f"{err}; only the WAT examples are rebuilt", file=sys.stderr)
        toolchain = None
    if toolchain is not None and toolchain.major != BUILT_WITH_CLANG_MAJOR:
        print(f"note: the committed binaries were built with {BUILT_WITH_CLANG}; "
              f"this is {toolchain.version}, so the C outputs may differ", file=sys.stderr)
    try:
        differing = rebuild_examples(check=args.check, only_wat=toolchain is None) + rebuild_abis(check=args.check)
        rebuilt = [row for row in example_outputs() if toolchain is not None or row[0].suffix == ".wat"]
        try:
            differing += rebuild_assemblyscript(check=args.check)
            rebuilt += example_outputs(assemblyscript_sources())
        except ToolMissing as err:
            print(f"{err}; the AssemblyScript examples are not rebuilt", file=sys.stderr)
    except BuildError as err:
        print(err, file=sys.stderr)
        return 1
    refused = False
    for _, _, output in rebuilt:
        for problem in determinism_violations(output.read_bytes()):
            print(f"{output.name}: {problem}", file=sys.stderr)
            refused = True
        if not args.check:
            print(f"wrote {output.relative_to(CONTRACTS_DIR.parent)} ({output.stat().st_size} bytes)")
    if differing:
        print("differs from the committed build: " + ", ".join(differing), file=sys.stderr)
        return 1
    if args.check:
        print("the committed example binaries rebuild byte for byte")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
