"""tools/measure_stack.py: the deterministic stack limit, against the native stack that
wasmtime's chain engine really uses, fires first even at the deepest nesting."""

from __future__ import annotations

from tools import measure_stack


def test_the_stack_limit_fires_before_the_native_limit_at_1024_levels_with_the_worst_frames():
    figures = measure_stack.measure(levels=200)
    patterns = figures["patterns"]
    assert all(p["depth"] > 0 and p["bytes_per_unit"] > 0 for p in patterns.values())
    assert 1000 < figures["host_bytes_per_level"] < 20_000  # the host's frames between nested calls
    worst_case = (figures["current_limit"] * figures["worst_bytes_per_unit"]
                  + measure_stack.MAX_CALL_DEPTH * figures["host_bytes_per_level"])
    assert worst_case < figures["max_wasm_stack"], figures


def test_the_default_limit_keeps_the_2x_margin_and_reaches_ten_thousand_small_frames():
    figures = measure_stack.measure(levels=200)
    assert figures["current_limit"] <= figures["largest_safe_limit"], figures
    assert figures["small_function_frames_at_the_current_limit"] >= 10_000, figures
