"""Argument types that check ranges, so that a bad flag is a usage error (exit 2) that
says what is allowed, raised before a command writes anything."""

from __future__ import annotations

import argparse
import math
from typing import Callable


def integer(low: int, high: int | None = None, *, what: str = "a whole number") -> Callable[[str], int]:
    """An integer in [low, high] (no upper bound when `high` is None)."""
    allowed = f"{what} from {low} to {high}" if high is not None else f"{what} of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text, 0) if text.lower().startswith("0x") else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {value}")
        return value

    return parse


def seconds(high: float | None = None) -> Callable[[str], float]:
    """A positive, finite number of seconds, at most `high`."""
    allowed = f"seconds above 0 and at most {high:g}" if high is not None else "a positive number of seconds"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        if not (math.isfinite(value) and value > 0) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text}")
        return value

    return parse


port = integer(0, 65535, what="a TCP port")
