"""A PoA seal: the sealer's secp256k1 signature of the header hash (r || s || y parity)."""

from __future__ import annotations

from chain.core.blocks import Header, InvalidBlock
from chain.core.keys import InvalidSignatureError, PrivateKey, recover_address

SEAL_LENGTH = 65


def sign_header(key: PrivateKey, header: Header) -> bytes:
    """The seal of `header` by `key`."""
    y, r, s = key.sign_hash(header.hash)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y,))


def seal_signer(header: Header) -> bytes:
    """The address that sealed `header`; InvalidBlock when the seal is missing or bad."""
    seal = header.seal
    if len(seal) != SEAL_LENGTH:
        raise InvalidBlock(f"block {header.number}: a PoA seal is {SEAL_LENGTH} bytes, this one is {len(seal)}")
    try:
        return recover_address(header.hash, seal[64], int.from_bytes(seal[:32], "big"),
                               int.from_bytes(seal[32:64], "big"))
    except (InvalidSignatureError, ValueError) as err:
        raise InvalidBlock(f"block {header.number}: the seal is not a valid signature ({err})") from None
