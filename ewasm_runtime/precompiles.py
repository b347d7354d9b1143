"""Precompiled contracts: native code at fixed addresses, priced like the EVM's.

Built in: 0x01 ecrecover, 0x02 sha256, 0x03 ripemd160, 0x04 identity and ewasm's
0x09 keccak256. A deployment adds its own in the private range 0x400-0xfffff through a
`PrecompileRegistry` (the chain spec names them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ewasm_runtime import gas as G
from ewasm_runtime.hashing import keccak256, ripemd160, sha256

PRIVATE_RANGE = range(0x400, 0xFFFFF + 1)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Precompile:
    """`gas(data)` prices a call before it runs; `run(data)` returns the output."""

    name: str
    gas: Callable[[bytes], int]
    run: Callable[[bytes], bytes]


def address_of(number: int) -> bytes:
    return number.to_bytes(20, "big")


def _ecrecover(data: bytes) -> bytes:
    """The signer's address (left-padded to 32 bytes), or empty output on a bad signature."""
    from coincurve import PublicKey

    data = data[:128].ljust(128, b"\0")
    msg_hash, v, r, s = data[:32], int.from_bytes(data[32:64], "big"), data[64:96], data[96:128]
    r_int, s_int = int.from_bytes(r, "big"), int.from_bytes(s, "big")
    if v not in (27, 28) or not (0 < r_int < SECP256K1_N) or not (0 < s_int < SECP256K1_N):
        return b""
    try:
        pub = PublicKey.from_signature_and_message(r + s + bytes([v - 27]), msg_hash, hasher=None)
    except Exception:  # coincurve raises plain Exception for unrecoverable signatures
        return b""
    return bytes(12) + keccak256(pub.format(compressed=False)[1:])[12:]


def _priced(base: int, word: int) -> Callable[[bytes], int]:
    return lambda data: base + word * G.words(len(data))


BUILTINS: dict[bytes, Precompile] = {
    address_of(1): Precompile("ecrecover", lambda data: G.ECRECOVER, _ecrecover),
    address_of(2): Precompile("sha256", _priced(G.SHA256_BASE, G.SHA256_WORD), sha256),
    address_of(3): Precompile("ripemd160", _priced(G.RIPEMD160_BASE, G.RIPEMD160_WORD),
                              lambda data: bytes(12) + ripemd160(data)),
    address_of(4): Precompile("identity", _priced(G.IDENTITY_BASE, G.IDENTITY_WORD), bytes),
    address_of(9): Precompile("keccak256", _priced(G.KECCAK256_BASE, G.KECCAK256_WORD), keccak256),
}


class PrecompileRegistry:
    """The precompiles one chain runs: the built-ins plus any registered private ones."""

    def __init__(self) -> None:
        self._table: dict[bytes, Precompile] = dict(BUILTINS)

    def register(self, number: int, precompile: Precompile) -> None:
        """Add a deployment-specific precompile at an address in 0x400-0xfffff."""
        if number not in PRIVATE_RANGE:
            raise ValueError(f"private precompiles live at 0x400-0xfffff, not {number:#x}")
        addr = address_of(number)
        if addr in self._table:
            raise ValueError(f"a precompile is already registered at {number:#x}")
        self._table[addr] = precompile

    def get(self, address: bytes) -> Precompile | None:
        return self._table.get(address)

    def __contains__(self, address: bytes) -> bool:
        return address in self._table

    def addresses(self) -> list[bytes]:
        return sorted(self._table)
