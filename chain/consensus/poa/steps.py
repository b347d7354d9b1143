"""Aura's clock: time is cut into steps of a fixed duration, and step s belongs to
validator s mod n. A header carries its step in its extra data (8 bytes, big-endian),
where the seal's signature covers it, and its timestamp is the step's start."""

from __future__ import annotations

from chain.core.blocks import Header, InvalidBlock

STEP_BYTES = 8


def step_at(now: float, duration: float) -> int:
    """The step that `now` (unix seconds) falls in."""
    return int(now // duration)


def proposer_of(step: int, validators: tuple[bytes, ...]) -> bytes:
    return validators[step % len(validators)]


def step_timestamp(step: int, duration: float) -> int:
    """The timestamp of a block sealed in `step`: the step's start, in whole seconds."""
    return int(step * duration)


def encode_step(step: int) -> bytes:
    return step.to_bytes(STEP_BYTES, "big")


def header_step(header: Header) -> int:
    """The step a header was sealed in (genesis: -1, before every step)."""
    if header.number == 0:
        return -1
    if len(header.extra_data) != STEP_BYTES:
        raise InvalidBlock(f"block {header.number}: a PoA header carries its step in {STEP_BYTES} bytes of extra "
                           f"data, this one has {len(header.extra_data)}")
    return int.from_bytes(header.extra_data, "big")
