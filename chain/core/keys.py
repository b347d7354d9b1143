"""secp256k1 keys and Ethereum addresses.

Signatures are the 65-byte recoverable form (r || s || y-parity) over a 32-byte hash,
exactly what Ethereum transactions carry, so eth-account signs for this chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve

from chain.core.hashing import keccak256

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2


class InvalidSignatureError(ValueError):
    """A signature that is malformed or from which no public key can be recovered."""


def address_of_public_key(public_key: coincurve.PublicKey) -> bytes:
    """The 20-byte Ethereum address of a public key (last 20 bytes of keccak of X||Y)."""
    return keccak256(public_key.format(compressed=False)[1:])[12:]


@dataclass(frozen=True)
class PrivateKey:
    """A secp256k1 private key with its address."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32 or not 0 < int.from_bytes(self.secret, "big") < SECP256K1_N:
            raise ValueError("a private key is 32 bytes in the range 1..n-1")

    @classmethod
    def from_hex(cls, text: str) -> "PrivateKey":
        """Parse a 64-digit hex key, with or without 0x."""
        text = text[2:] if text[:2].lower() == "0x" else text
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError("a private key is 64 hex digits") from None
        return cls(raw)

    @classmethod
    def generate(cls) -> "PrivateKey":
        """A fresh random key."""
        return cls(coincurve.PrivateKey().secret)

    @property
    def address(self) -> bytes:
        return address_of_public_key(coincurve.PrivateKey(self.secret).public_key)

    def sign_hash(self, message_hash: bytes) -> tuple[int, int, int]:
        """Sign a 32-byte hash; returns (y_parity, r, s) with low s (EIP-2)."""
        signature = coincurve.PrivateKey(self.secret).sign_recoverable(message_hash, hasher=None)
        r = int.from_bytes(signature[0:32], "big")
        s = int.from_bytes(signature[32:64], "big")
        return signature[64], r, s


def recover_address(message_hash: bytes, y_parity: int, r: int, s: int) -> bytes:
    """The address that signed `message_hash`, or InvalidSignatureError.

    Rejects what Ethereum rejects: r or s out of range, high s (EIP-2), a parity that is
    not 0 or 1.
    """
    if y_parity not in (0, 1):
        raise InvalidSignatureError(f"signature y-parity must be 0 or 1, got {y_parity}")
    if not 0 < r < SECP256K1_N:
        raise InvalidSignatureError("signature r is out of range")
    if not 0 < s <= SECP256K1_HALF_N:
        raise InvalidSignatureError("signature s is out of range (zero or high s, EIP-2)")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y_parity,))
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(signature, message_hash, hasher=None)
    except Exception as err:  # coincurve raises a bare Exception on unrecoverable signatures
        raise InvalidSignatureError(f"no public key recovers from this signature ({err})") from None
    return address_of_public_key(public_key)


SIGNATURE_LENGTH = 65  # r || s || y parity: seals and consensus messages


def sign_bytes(key: PrivateKey, message_hash: bytes) -> bytes:
    """`key`'s signature of a 32-byte hash as 65 bytes, r || s || y parity."""
    y, r, s = key.sign_hash(message_hash)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y,))


def signer_of(message_hash: bytes, signature: bytes) -> bytes:
    """The address whose 65-byte signature (r || s || y) `signature` is; InvalidSignatureError if none."""
    if len(signature) != SIGNATURE_LENGTH:
        raise InvalidSignatureError(f"a signature is {SIGNATURE_LENGTH} bytes, this one is {len(signature)}")
    return recover_address(message_hash, signature[64], int.from_bytes(signature[:32], "big"),
                           int.from_bytes(signature[32:64], "big"))


def to_checksum_address(address: bytes) -> str:
    """EIP-55 mixed-case hex of a 20-byte address."""
    hex_address = address.hex()
    digest = keccak256(hex_address.encode()).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(hex_address, digest))
