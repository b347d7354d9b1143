"""A PoA seal: the sealer's secp256k1 signature of the header hash (r || s || y parity)."""

from __future__ import annotations

from chain.core.blocks import Header, InvalidBlock
from chain.core.keys import SIGNATURE_LENGTH, InvalidSignatureError, PrivateKey, sign_bytes, signer_of

SEAL_LENGTH = SIGNATURE_LENGTH


def sign_header(key: PrivateKey, header: Header) -> bytes:
    """The seal of `header` by `key`."""
    return sign_bytes(key, header.hash)


def seal_signer(header: Header) -> bytes:
    """The address that sealed `header`; InvalidBlock when the seal is missing or bad."""
    seal = header.seal
    if len(seal) != SEAL_LENGTH:
        raise InvalidBlock(f"block {header.number}: a PoA seal is {SEAL_LENGTH} bytes, this one is {len(seal)}")
    try:
        return signer_of(header.hash, seal)
    except (InvalidSignatureError, ValueError) as err:
        raise InvalidBlock(f"block {header.number}: the seal is not a valid signature ({err})") from None
