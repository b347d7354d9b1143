"""Ethereum's hash, as the chain uses it.

keccak256 is Ethereum's hash: addresses, transaction hashes, code hashes and every
value that Ethereum tooling recomputes use it. Its one definition is the VM's
(ewasm_runtime/hashing.py); the Merkle trees hash with SHA-256 (merkle.py).
"""

from __future__ import annotations

from ewasm_runtime.hashing import keccak256

EMPTY_CODE_HASH = keccak256(b"")

__all__ = ["EMPTY_CODE_HASH", "keccak256"]
