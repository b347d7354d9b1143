"""`ewasm check`, `ewasm meter`, `ewasm inspect`: the transpiler for contract authors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import metering
from ewasm_cli.arguments import integer
from ewasm_cli.main import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CommandError
from metering.costs import CostTableError

COSTS_HELP = "a cost table file, or a shipped version: default-v1, default-v2 (the default)"


def register(sub) -> None:
    """Add the transpiler's subcommands."""
    p = sub.add_parser("check", help="list every determinism/convention violation of modules")
    p.add_argument("files", nargs="+", metavar="FILE", help="wasm binary or WAT text")
    _profile_args(p)
    p.add_argument("--json", action="store_true", help="print violations as JSON")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("meter", help="write the metered module the chain would store")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--costs", metavar="TABLE", help=COSTS_HELP)
    p.add_argument("--max-memory-pages", type=integer(0, 65536), metavar="PAGES",
                   help="memory limit in 64 KiB pages, 0 to 65536 (default: from the cost table)")
    p.add_argument("--stack-limit", type=integer(1, 2**31 - 1), metavar="SLOTS",
                   help="stack limit in value slots (default: from the cost table)")
    _profile_args(p)
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(handler=cmd_meter)

    p = sub.add_parser("inspect", help="sections, imports, exports, functions with metered blocks and cost")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--costs", metavar="TABLE", help=COSTS_HELP)
    _profile_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_inspect)


def _profile_args(p) -> None:
    p.add_argument("--profile", choices=["generic", "ewasm"], default="generic", help="rule set (default: generic)")
    p.add_argument("--dev", action="store_true", help="also allow imports from 'debug'")


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise CommandError(f"{path}: {err.strerror or err}", EXIT_USAGE) from None


def _costs(path: str | None) -> metering.CostTable:
    try:
        return metering.load_costs(path)
    except CostTableError as err:
        raise CommandError(str(err), EXIT_USAGE) from None


REFUSALS = (metering.MalformedModule, metering.InvalidModule)  # not a module / not a valid one: exit 2


def _refusal(err: ValueError) -> dict:
    """A refused module as JSON: what kind of refusal, and why."""
    kind = "malformed" if isinstance(err, metering.MalformedModule) else "invalid"
    return {kind: str(err)}


def cmd_check(args) -> int:
    """Exit 0 when every file is clean, 1 when any has violations, 2 when any is malformed
    or invalid."""
    report, code = {}, EXIT_OK
    for path in args.files:
        try:
            violations = metering.check(_read(path), args.profile, dev=args.dev)
        except REFUSALS as err:
            report[path] = _refusal(err)
            if not args.json:
                print(f"{path}: {err}", file=sys.stderr)
            code = EXIT_USAGE
            continue
        report[path] = [_violation(v) for v in violations]
        if violations:
            code = max(code, EXIT_REFUSED)
        if not args.json:
            if violations:
                for v in violations:
                    print(f"{path}: {v}")
            else:
                print(f"{path}: ok")
    if args.json:
        print(json.dumps(report, indent=2))
    return code


def _violation(v: metering.Violation) -> dict:
    return {"func": v.func, "offset": v.offset, "reason": v.reason}


def cmd_meter(args) -> int:
    data = _read(args.file)
    costs = _costs(args.costs)
    try:
        out = metering.meter(
            data, costs=costs, profile=args.profile, dev=args.dev,
            max_memory_pages=args.max_memory_pages, stack_limit=args.stack_limit,
        )
    except REFUSALS as err:
        if args.json:
            print(json.dumps({"input": args.file, **_refusal(err)}, indent=2))
        raise CommandError(f"{args.file}: {err}", EXIT_USAGE) from None
    except metering.DeterminismError as err:
        if args.json:
            print(json.dumps({"input": args.file, "violations": [_violation(v) for v in err.violations]}, indent=2))
        for v in err.violations:
            print(f"{args.file}: {v}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        Path(args.output).write_bytes(out)
    except OSError as err:
        raise CommandError(f"{args.output}: {err.strerror or err}", EXIT_USAGE) from None
    summary = {"input": args.file, "output": args.output, "input_bytes": len(data), "output_bytes": len(out),
               "costs": costs.version, "costs_hash": costs.hash}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.output}: {len(out)} bytes (from {len(data)}), cost table {costs.version} {costs.hash[:16]}")
    return EXIT_OK


def cmd_inspect(args) -> int:
    from metering.inspect import inspect_module

    data = _read(args.file)
    try:
        info = inspect_module(data, _costs(args.costs), args.profile, dev=args.dev)
    except REFUSALS as err:
        if args.json:
            print(json.dumps({"input": args.file, **_refusal(err)}, indent=2))
        raise CommandError(f"{args.file}: {err}", EXIT_USAGE) from None
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_inspection(args.file, info)
    return EXIT_REFUSED if info["violations"] else EXIT_OK


def _print_inspection(path: str, info: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{path}[/bold]: {info['size']} bytes")
    sections = Table(title="sections")
    for col in ("section", "offset", "bytes"):
        sections.add_column(col)
    for s in info["sections"]:
        sections.add_row(s["name"], f"{s['offset']:#x}", str(s["size"]))
    console.print(sections)
    for kind in ("imports", "exports"):
        if info[kind]:
            console.print(f"[bold]{kind}[/bold]: " + ", ".join(f"{x['name']} ({x['kind']})" for x in info[kind]))
    funcs = Table(title="functions")
    for col in ("index", "name", "type", "locals", "instructions", "metered blocks", "static cost", "frame"):
        funcs.add_column(col, justify="right")
    for f in info["functions"]:
        funcs.add_row(str(f["index"]), f["name"] or "", f["type"], str(f["locals"]), str(f["instructions"]), str(f["metered_blocks"]), str(f["static_cost"]), str(f["frame_cost"]))
    console.print(funcs)
    if info["violations"]:
        console.print("[bold red]violations[/bold red]")
        for v in info["violations"]:
            console.print(f"  {v['text']}")
    else:
        console.print("[green]no violations[/green]")
