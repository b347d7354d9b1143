"""Build AssemblyScript contracts with the pinned `asc` (the AssemblyScript compiler, from npm).

`compile_assemblyscript(path)` returns the runtime module, and with `deployer` also the init
module. The compiler is the exact `assemblyscript@ASC_VERSION`: found in the project's own
`node_modules` or installed once into the npm cache (contracts/npm.py). Without node or npm,
or when the install fails, the build raises ToolMissing with the reason in one line.

The contract is never an entry file itself: asc exports everything an entry file exports, and
a contract exports both `main` and (optionally) `constructor`. Each build compiles a small
generated entry instead, in a temporary folder that links to the contract's folder (so a
contract's own imports must stay inside that folder, as `./ewasm` does):

- runtime: `export { main } from "<source>"`, so the module exports `main` and `memory`;
- deployer: a `main` that calls the source's `constructor()` and then hands the runtime
  bytes, kept in a `memory.data` segment, to `finish`. The source is the same file, so the
  constructor shares the contract's storage helpers and layout; a source without
  `export function constructor` gets the generic wrapper (contracts/deployer.py), as WAT does.

ASC_FLAGS say why each flag is there; together they give what `ewasm check --profile ewasm`
accepts. asc runs in the temporary folder and sees only relative paths (`entry.ts`,
`contract/token.ts`): binaryen breaks ties by internal names, which are those paths, so an
absolute path would make the bytes depend on where the project lies. With that, the pinned
version and the custom sections (names) stripped, the output is the same on every machine.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.deployer import deployer_wrapper, strip_custom_sections
from contracts.npm import NpmUnavailable, node_executable, npm_package

if TYPE_CHECKING:
    from contracts.build import Built

ASC_PACKAGE = "assemblyscript"
ASC_VERSION = "0.28.20"  # pinned exactly: another version compiles to other bytes
ASSEMBLYSCRIPT_DIR = Path(__file__).resolve().parent / "assemblyscript"
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # a project `npm install` puts node_modules here
COMPILE_TIMEOUT = 120.0
MAX_PAGES = 16
CONTRACT_LINK = "contract"  # in the build folder: a link to the source's folder

ASC_FLAGS = (
    "--runtime", "stub",  # no garbage collector: the default runtime brings a start function and more
    "--use", "abort=",  # a failed assertion traps (unreachable) instead of importing env.abort
    # MVP wasm, as the C build's -mcpu=mvp: no sign-extension, saturating float conversions,
    # bulk-memory opcodes, or mutable-global imports and exports.
    "--disable", "sign-extension,nontrapping-f2i,bulk-memory,mutable-globals",
    "--noColors",
)

_CONSTRUCTOR = re.compile(r"^\s*export\s+function\s+constructor\s*\(", re.MULTILINE)
_PAGES_NEEDED = re.compile(r"requires at least '(\d+)' pages of initial memory")


def _errors():
    """BuildError and ToolMissing (contracts.build imports this module, so import them late)."""
    from contracts.build import BuildError, ToolMissing
    return BuildError, ToolMissing


def find_asc() -> list[str]:
    """The command that runs the pinned asc (`node .../bin/asc.js`), or ToolMissing in one line."""
    _, ToolMissing = _errors()
    try:
        node = node_executable()
        prefix = npm_package(ASC_PACKAGE, ASC_VERSION, roots=[PROJECT_ROOT])
    except NpmUnavailable as err:
        raise ToolMissing(f"the AssemblyScript compiler ({ASC_PACKAGE}@{ASC_VERSION} from npm) "
                          f"is unavailable: {err}") from None
    return [node, str(prefix / "node_modules" / ASC_PACKAGE / "bin" / "asc.js")]


def optimisation_flags(opt: str) -> list[str]:
    """asc's levels for a clang-style -O level: 0-3 optimise for speed, s and z for size."""
    if opt in ("s", "z"):
        return ["--optimizeLevel", "2", "--shrinkLevel", "1" if opt == "s" else "2"]
    return ["--optimizeLevel", opt, "--shrinkLevel", "0"]


def has_constructor(source: Path) -> bool:
    """Whether the contract exports a `constructor` for its deployer to run."""
    return _CONSTRUCTOR.search(source.read_text(encoding="utf-8")) is not None


def runtime_entry(source: Path) -> str:
    """The runtime build's entry: the contract's `main`, and nothing else it exports."""
    return f"export {{ main }} from {_import_path(source)};\n"


def deployer_entry(source: Path, runtime: bytes) -> str:
    """The deployer build's entry: run the contract's constructor, then return the runtime code."""
    rows = ",\n  ".join(", ".join(f"0x{b:02x}" for b in runtime[i:i + 16]) for i in range(0, len(runtime), 16))
    return (
        f"import {{ constructor }} from {_import_path(source)};\n"
        '@external("ethereum", "finish") declare function finish(data: usize, length: u32): void;\n'
        f"const RUNTIME_CODE: usize = memory.data<u8>([\n  {rows}\n]);\n"
        "export function main(): void {\n"
        "  constructor();\n"
        f"  finish(RUNTIME_CODE, {len(runtime)});\n"
        "}\n"
    )


def _import_path(source: Path) -> str:
    """The source as the entry imports it: through the `contract` link to its folder."""
    return json.dumps(f"./{CONTRACT_LINK}/{source.stem}")


def _run_asc(asc: list[str], source: Path, make_entry, opt: str) -> bytes:
    """Compile one generated entry in the fewest 64 KiB pages that hold its static data.

    Memory cannot grow (initial = maximum, as for C). asc says how many pages the data
    needs when one is too few, and the build is run again with that many.
    """
    BuildError, _ = _errors()
    with tempfile.TemporaryDirectory(prefix="ewasm-asc-") as tmp:
        folder = Path(tmp)
        (folder / CONTRACT_LINK).symlink_to(source.parent, target_is_directory=True)
        (folder / "entry.ts").write_text(make_entry(source))
        output = folder / "out.wasm"
        pages = 1
        while True:
            command = [*asc, "entry.ts", "-o", str(output), *optimisation_flags(opt), *ASC_FLAGS,
                       "--initialMemory", str(pages), "--maximumMemory", str(pages)]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT,
                                      stdin=subprocess.DEVNULL, cwd=folder)
            except subprocess.TimeoutExpired:
                raise BuildError(f"asc did not finish {source} in {COMPILE_TIMEOUT:g} s") from None
            if done.returncode == 0 and output.is_file():
                return strip_custom_sections(output.read_bytes())
            diagnostics = (done.stderr or done.stdout).strip()
            needed = _PAGES_NEEDED.search(diagnostics)
            if needed is None or int(needed.group(1)) <= pages:
                raise BuildError(f"asc failed on {source}:\n{diagnostics}")
            pages = int(needed.group(1))
            if pages > MAX_PAGES:
                raise BuildError(f"{source}: static data does not fit in {MAX_PAGES} pages of memory")


def compile_assemblyscript(source: Path, *, deployer: bool = False, opt: str = "2") -> Built:
    """Build an AssemblyScript contract: the runtime module and, with `deployer`, its init module."""
    from contracts.build import Built

    source = Path(source).resolve()
    asc = find_asc()
    runtime = _run_asc(asc, source, runtime_entry, opt)
    if not deployer:
        return Built(runtime)
    if not has_constructor(source):
        return Built(runtime, deployer_wrapper(runtime))
    init = _run_asc(asc, source, lambda src: deployer_entry(src, runtime), opt)
    return Built(runtime, init)

