"""The Ethereum logs bloom."""

from __future__ import annotations

from chain.core.hashing import keccak256


def bloom(logs) -> bytes:
    """The 2048-bit Ethereum logs bloom of addresses and topics."""
    bits = 0
    for log in logs:
        for item in (log.address, *log.topics):
            h = keccak256(item)
            for i in (0, 2, 4):
                bits |= 1 << (((h[i] << 8) | h[i + 1]) & 2047)
    return bits.to_bytes(256, "big")
