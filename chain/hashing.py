"""The two hash functions of the chain.

keccak256 is Ethereum's hash: addresses, transaction hashes, code hashes and every
value that Ethereum tooling recomputes use it. The state commitment's Merkle tree uses
SHA-256 from the standard library instead: a light client can check a proof with
nothing but Python, and it is faster than keccak for the many small node hashes a
block's commitment update needs.
"""

from __future__ import annotations

import hashlib

try:  # safe-pysha3 is ~6x faster than eth-hash's default pycryptodome backend
    from sha3 import keccak_256 as _keccak_256

    def keccak256(data: bytes) -> bytes:
        """Ethereum's keccak-256 of `data`."""
        return _keccak_256(data).digest()

except ImportError:  # pragma: no cover - the fallback when the wheel is missing
    from eth_hash.auto import keccak as _eth_keccak

    def keccak256(data: bytes) -> bytes:
        """Ethereum's keccak-256 of `data`."""
        return _eth_keccak(data)


_sha256 = hashlib.sha256


def tree_hash(data: bytes) -> bytes:
    """The hash of the state commitment's Merkle tree (SHA-256)."""
    return _sha256(data).digest()


EMPTY_CODE_HASH = keccak256(b"")
