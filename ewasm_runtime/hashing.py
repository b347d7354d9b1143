"""The hash functions the runtime needs, bound to their fastest maintained backend."""

from __future__ import annotations

import hashlib

import rlp

try:  # eth-hash's pysha3 backend (safe-pysha3): ~2x-5x faster than pycryptodome per call
    from eth_hash.backends.pysha3 import keccak256 as _keccak
except ImportError:  # pragma: no cover - only without safe-pysha3
    from eth_hash.auto import keccak as _keccak


def keccak256(data: bytes) -> bytes:
    return _keccak(data)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ripemd160(data: bytes) -> bytes:
    """RIPEMD-160; OpenSSL 3 may hide it from hashlib, so pycryptodome is the fallback."""
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError:
        from Crypto.Hash import RIPEMD160

        return RIPEMD160.new(data).digest()


def create_address(sender: bytes, nonce: int) -> bytes:
    """The address of a contract created by `sender` at `nonce`, as in Ethereum."""
    return keccak256(rlp.encode([sender, nonce]))[12:]
