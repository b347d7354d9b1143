"""Entry point of the `ewasm` command.

Each group of subcommands lives in its own module with a `register(subparsers)`
function; this file only wires them together and turns errors into exit codes:
0 ok, 1 refused (violations, failed checks), 2 usage error or malformed input.
"""

from __future__ import annotations

import argparse
import importlib
import sys

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = [
    "ewasm_cli.demo_commands",
    "ewasm_cli.metering_commands",
    "ewasm_cli.vm_commands",
    "ewasm_cli.bench_commands",
    "ewasm_cli.contract_commands",
    "ewasm_cli.deploy_commands",
    "ewasm_cli.chain_commands",
    "ewasm_cli.network_commands",
    "ewasm_cli.demo_network",
]


class CommandError(Exception):
    """A failure the user caused: printed as one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default exits with a usage dump
        self.print_usage(sys.stderr)
        raise CommandError(f"{self.prog}: {message}", EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered subcommand."""
    parser = _Parser(prog="ewasm", description="WebAssembly contract runtime and consortium chain.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; never let a traceback reach the user."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return EXIT_USAGE
        return int(args.handler(args) or 0)
    except CommandError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # a bug, but the user still gets one line, not a traceback
        print(f"internal error: {type(err).__name__}: {err} (set EWASM_DEBUG=1 for details)", file=sys.stderr)
        if _debug():
            raise
        return 3


def _debug() -> bool:
    import os

    return os.environ.get("EWASM_DEBUG") == "1"
