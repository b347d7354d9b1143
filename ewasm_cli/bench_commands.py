"""`ewasm bench evm`: the same workloads on this runtime and on EVMs (revm, py-evm).

The benchmark itself lives in `ewasm_cli.evmbench`, an installed package, so the
command works from `pip install 'ewasm[bench]'` without a checkout;
`tools/bench_evm.py` is the same program for people working in the repository.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ewasm_cli.main import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CommandError

INSTALL_HINT = "pip install 'ewasm[bench]'"


def register(sub) -> None:
    """Add `ewasm bench` and its `evm` benchmark."""
    bench = sub.add_parser("bench", help="run a benchmark",
                           description="Benchmarks of this runtime.")
    benchmarks = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", parser_class=type(bench))
    bench.set_defaults(handler=lambda args: _usage(bench))
    evm = benchmarks.add_parser(
        "evm", help="compare with revm and py-evm on the same workloads",
        description="Run token, compute, hashing and precompile workloads on this runtime "
                    "(metered and unmetered), on revm (pyrevm) and on py-evm; check that all "
                    "sides return the same outputs, then report median µs per call and gas. "
                    f"The EVM backends are optional extras: {INSTALL_HINT}.")
    add_arguments(evm)
    evm.set_defaults(handler=bench_evm)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `ewasm bench evm` and tools/bench_evm.py."""
    parser.add_argument("--quick", action="store_true",
                        help="smaller N and fewer timed calls (a smoke run of every workload kind)")
    parser.add_argument("--json", metavar="OUT.json", type=Path,
                        help="write one JSON object per workload to this file")
    parser.add_argument("--plot", metavar="OUT.png", type=Path,
                        help="draw µs per call (log scale, one bar per backend) to this PNG")
    parser.add_argument("--markdown", metavar="OUT.md", type=Path,
                        help="write the results table as markdown to this file")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _check_writable(path: Path | None) -> None:
    """Fail before a long run, not after it, when an output cannot be written."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CommandError(f"{path} is a directory, not a file", EXIT_USAGE)
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise CommandError(f"cannot write {path}: {folder} is not a writable directory", EXIT_USAGE)


def bench_evm(args: argparse.Namespace) -> int:
    """Run the benchmark with a progress bar, print the table, write what was asked for."""
    for path in (args.json, args.plot, args.markdown):
        _check_writable(path)
    try:
        from rich.console import Console

        from ewasm_cli.evmbench import report
        from ewasm_cli.evmbench.runner import EVM_BACKENDS, run_benchmark
    except ImportError as err:
        raise CommandError(f"the EVM benchmark needs {err.name}: {INSTALL_HINT}", EXIT_REFUSED) from err
    if args.plot is not None:
        _require("matplotlib", "--plot")

    console = Console(stderr=True)
    with _ProgressBar(console) as progress:
        result = run_benchmark(quick=args.quick, progress=progress)
    if all(name in result.unavailable for name in EVM_BACKENDS):
        reasons = "; ".join(result.unavailable[b] for b in EVM_BACKENDS)
        raise CommandError(f"no EVM backend can run ({reasons})", EXIT_REFUSED)

    out = Console()
    if not out.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        out = Console(width=220)
    out.print(report.rich_table(result))
    for name, why in result.unavailable.items():
        console.print(f"[yellow]{name}[/yellow]: not run: {why}")
    mismatched = [row.workload.label for row in result.rows if row.outputs_match is False]
    for row in result.rows:
        for note in row.notes:
            if "unavailable" not in note:
                console.print(f"[red]{row.workload.label}[/red]: {note}")
    if args.json is not None:
        report.write_json(result, args.json)
    if args.markdown is not None:
        args.markdown.write_text(report.markdown(result))
    if args.plot is not None:
        report.write_plot(result, args.plot)
    if mismatched:
        console.print(f"[red]outputs differ on: {', '.join(mismatched)}[/red]")
        return EXIT_REFUSED
    return EXIT_OK


def _require(module: str, option: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise CommandError(f"{option} needs {module}: {INSTALL_HINT}", EXIT_REFUSED)


class _ProgressBar:
    """A rich progress bar on stderr, fed by the runner's start/step calls."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=console, transient=True)
        self._task = None
        self._pending = False

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def start(self, total: int) -> None:
        self._task = self._progress.add_task("EVM comparison", total=total)

    def step(self, label: str) -> None:
        # Each step is announced before it runs: advance for the one that just finished.
        if self._pending:
            self._progress.advance(self._task)
        self._pending = True
        self._progress.update(self._task, description=label)
