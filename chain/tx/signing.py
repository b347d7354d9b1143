"""Signing the native scoped transaction (type 0x50); Ethereum types are signed by eth-account."""

from __future__ import annotations

from typing import Sequence

import rlp

from chain.core.hashing import keccak256
from chain.core.keys import PrivateKey
from chain.tx.transaction import SCOPED_TX_TYPE


def sign_scoped_transaction(key: PrivateKey, *, chain_id: int, nonce: int, gas_limit: int,
                            to: bytes | None, value: int = 0, data: bytes = b"",
                            scope: Sequence[bytes] = (b"",), max_fee_per_gas: int = 0,
                            max_priority_fee_per_gas: int = 0) -> bytes:
    """Build and sign a native scoped (type 0x50) transaction; returns the raw envelope."""
    unsigned = [chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas_limit, to or b"",
                value, data, list(scope)]
    signing_hash = keccak256(bytes((SCOPED_TX_TYPE,)) + rlp.encode(unsigned))
    y, r, s = key.sign_hash(signing_hash)
    return bytes((SCOPED_TX_TYPE,)) + rlp.encode(unsigned + [y, r, s])
