"""`ewasm compile`: build a C, WAT or AssemblyScript contract (or its deployer) into wasm."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewasm_cli.main import EXIT_REFUSED, EXIT_USAGE, CommandError


def register(sub) -> None:
    """Add `ewasm compile` to the subcommands."""
    parser = sub.add_parser(
        "compile",
        help="build a contract from C (clang), WAT or AssemblyScript (asc) into ewasm wasm",
        description=(
            "Build FILE.c (clang, wasm32, no libc; needs clang and lld installed), FILE.wat or "
            "FILE.ts (AssemblyScript; the pinned asc is installed from npm on first use, which "
            "needs node and npm) into a contract module that imports only the ewasm EEI and "
            "exports main and memory. With --deployer, build the init module that deploys it "
            "instead: its main returns the runtime code through finish (and first runs the C "
            "contract's EWASM_CONSTRUCTOR, or the AssemblyScript contract's exported constructor()). "
            "A source that declares its interface (`@abi function ...` lines in its comments, "
            "see contracts/abi.py) also gets its Ethereum ABI JSON, NAME.abi.json beside the output."
        ),
    )
    parser.add_argument("source", type=Path, metavar="FILE", help="a .c, .wat or .ts contract source")
    parser.add_argument("--deployer", action="store_true",
                        help="build the deployer (init module) instead of the runtime module")
    parser.add_argument("-o", "--output", type=Path, metavar="OUT",
                        help="where to write the wasm (default: FILE.wasm, or FILE.deploy.wasm with --deployer)")
    parser.add_argument("-O", dest="opt", default="2", choices=["0", "1", "2", "3", "s", "z"],
                        help="optimisation level for C (clang) and AssemblyScript (asc) sources: "
                             "0-3 for speed, s or z for size (default: 2)")
    parser.add_argument("--abi", type=Path, metavar="OUT",
                        help="where to write the ABI JSON (default: beside the output, NAME.abi.json)")
    parser.set_defaults(handler=run_compile)


def run_compile(args: argparse.Namespace) -> int:
    """Build, refuse what the chain's transpiler would refuse, write the module."""
    from contracts.build import BuildError, build, default_output, determinism_violations

    source: Path = args.source
    try:
        built = build(source, deployer=args.deployer, opt=args.opt)
    except BuildError as err:  # ToolMissing included: both are the input's or setup's fault
        raise CommandError(str(err), EXIT_USAGE) from None
    wasm = built.deployer if args.deployer else built.runtime
    # A deployer is only as good as the code it deploys, so check both.
    problems = determinism_violations(built.runtime)
    if built.deployer is not None:
        problems += [f"deployer: {p}" for p in determinism_violations(built.deployer)]
    if problems:
        listing = "\n  ".join(problems)
        raise CommandError(f"{source}: the chain would refuse this module:\n  {listing}", EXIT_REFUSED)
    output = args.output or default_output(source, deployer=args.deployer)
    try:
        output.write_bytes(wasm)
    except OSError as err:
        raise CommandError(f"cannot write {output}: {err.strerror}", EXIT_REFUSED) from None
    kind = "deployer" if args.deployer else "contract"
    print(f"wrote {kind} {output} ({len(wasm)} bytes)")
    _write_abi(source, args.abi or Path(str(output).removesuffix(".deploy.wasm").removesuffix(".wasm") + ".abi.json"))
    return 0


def _write_abi(source: Path, output: Path) -> None:
    """The ABI the source declares, if it declares one."""
    from contracts.abi import AbiError, abi_of_file, write_abi

    try:
        abi = abi_of_file(source)
    except AbiError as err:
        raise CommandError(f"{source}: @abi {err}", EXIT_USAGE) from None
    except (OSError, UnicodeDecodeError):
        return  # a binary input declares nothing
    if not abi:
        return
    try:
        write_abi(abi, output)
    except OSError as err:
        raise CommandError(f"cannot write {output}: {err.strerror}", EXIT_REFUSED) from None
    print(f"wrote ABI {output} ({sum(item['type'] == 'function' for item in abi)} functions, "
          f"{sum(item['type'] == 'event' for item in abi)} events)")
