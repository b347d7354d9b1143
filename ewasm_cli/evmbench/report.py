"""The benchmark's outputs: a markdown table, a rich table, JSON and a PNG plot.

Ratios are always taken within one run ("revm ÷ wasm" = how many times faster
the metered wasm call was than revm's), never against a figure from elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from ewasm_cli.evmbench.runner import BACKENDS, BenchResult, Row

BACKEND_TITLES = {
    "wasm": "wasm µs",
    "wasm_unmetered": "wasm unmetered µs",
    "revm": "revm µs",
    "pyevm": "py-evm µs",
}
PLOT_COLOURS = {"wasm": "#1f77b4", "wasm_unmetered": "#aec7e8", "revm": "#d62728", "pyevm": "#2ca02c"}


def fmt_us(value: float | None) -> str:
    """Microseconds with three significant digits; 'n/a' when the backend did not run."""
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_ratio(numerator: float | None, denominator: float | None) -> str:
    """numerator ÷ denominator as '12.3×', or 'n/a' when either is missing."""
    if numerator is None or denominator is None or denominator == 0:
        return "n/a"
    ratio = numerator / denominator
    return f"{ratio:.3g}×"


def fmt_match(row: Row) -> str:
    if row.outputs_match is None:
        return "n/a"
    return "yes" if row.outputs_match else "**NO**"


def table_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    """Header and cells shared by the markdown and the terminal table."""
    header = ["workload", *(BACKEND_TITLES[b] for b in BACKENDS),
              "revm ÷ wasm", "py-evm ÷ wasm", "wasm gas", "EVM gas", "outputs match"]
    cells = []
    for row in result.rows:
        us = row.us
        cells.append([
            row.workload.label,
            *(fmt_us(us.get(b)) for b in BACKENDS),
            fmt_ratio(us.get("revm"), us.get("wasm")),
            fmt_ratio(us.get("pyevm"), us.get("wasm")),
            "n/a" if row.gas.get("wasm") is None else f"{row.gas['wasm']:,}",
            "n/a" if row.evm_gas is None else f"{row.evm_gas:,}",
            fmt_match(row),
        ])
    return header, cells


def markdown(result: BenchResult) -> str:
    """The results as a GitHub markdown table, with unavailable backends explained below it."""
    header, cells = table_rows(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    for name, why in result.unavailable.items():
        lines.append(f"\n{name}: unavailable ({why})")
    for row in result.rows:
        for note in row.notes:
            if "unavailable" not in note:
                lines.append(f"\n{row.workload.label}: {note}")
    return "\n".join(lines) + "\n"


def rich_table(result: BenchResult):
    """The same table for the terminal."""
    from rich.table import Table

    header, cells = table_rows(result)
    mode = "quick" if result.quick else "full"
    table = Table(title=f"EVM comparison ({mode} run): median µs per call, gas per call")
    for i, title in enumerate(header):
        table.add_column(title, justify="left" if i == 0 else "right")
    for row, c in zip(result.rows, cells):
        style = "red" if row.outputs_match is False else None
        table.add_row(*c, style=style)
    return table


def write_json(result: BenchResult, path: Path) -> None:
    """One JSON object per workload, as a list."""
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n")


def write_plot(result: BenchResult, path: Path) -> None:
    """Grouped bars: µs per call on a log scale, one bar per backend, one group per workload."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    shown = [b for b in BACKENDS if any(r.us.get(b) is not None for r in result.rows)]
    labels = [r.workload.label for r in result.rows]
    width = 0.8 / max(len(shown), 1)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(labels) + 2), 5.5))
    for k, backend in enumerate(shown):
        xs = [i + (k - (len(shown) - 1) / 2) * width for i in range(len(labels))]
        ys = [r.us.get(backend) for r in result.rows]
        ax.bar([x for x, y in zip(xs, ys) if y is not None], [y for y in ys if y is not None],
               width=width, label=BACKEND_TITLES[backend].removesuffix(" µs"),
               color=PLOT_COLOURS[backend])
    ax.set_yscale("log")
    ax.set_ylabel("µs per call (median, log scale)")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    missing = [BACKEND_TITLES[b].removesuffix(" µs") for b in BACKENDS if b not in shown]
    title = "Same workloads: this wasm runtime vs EVMs"
    if missing:
        title += f"\n(not run: {', '.join(missing)})"
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
