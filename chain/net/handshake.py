"""The handshake: both sides prove their node keys and agree on session keys.

TLS 1.3 has no secp256k1 signatures, so this follows devp2p's RLPx instead:

1. each side sends a Hello in the clear: protocol version, chain id and genesis hash
   (a node of another chain is refused here), its node id, a fresh X25519 public key
   and a random nonce, all signed with its node key (secp256k1, recoverable: the
   signature must recover to the node id);
2. each side computes the X25519 shared secret of its ephemeral key and the peer's,
   and derives two 32-byte keys with HKDF-SHA256 over it, salted with both nonces and
   bound to the hash of both Hellos: one key per direction.

A replayed Hello gets an attacker nowhere: without the ephemeral private key it cannot
derive the keys, and its first frame fails authentication (channel.py). Every primitive
is `cryptography`'s or coincurve's; nothing here is hand-written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import msgpack
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chain.core.hashing import keccak256
from chain.core.keys import InvalidSignatureError, PrivateKey, recover_address

PROTOCOL = b"ewasm-p2p"
VERSION = 1
MAX_HELLO = 512  # bytes of an encoded Hello


class HandshakeError(ValueError):
    """The peer's Hello is malformed, mis-signed, or for another chain."""


@dataclass(frozen=True)
class Hello:
    version: int
    chain_id: int
    genesis_hash: bytes
    node_id: bytes  # the address of the node key
    ephemeral: bytes  # X25519 public key
    nonce: bytes
    signature: bytes = b""  # r || s || y over `signing_hash`

    @property
    def signing_hash(self) -> bytes:
        return keccak256(PROTOCOL + msgpack.packb([self.version, self.chain_id, self.genesis_hash, self.node_id,
                                                   self.ephemeral, self.nonce], use_bin_type=True))

    def encode(self) -> bytes:
        return msgpack.packb([self.version, self.chain_id, self.genesis_hash, self.node_id, self.ephemeral,
                              self.nonce, self.signature], use_bin_type=True)

    @classmethod
    def decode(cls, data: bytes) -> "Hello":
        if len(data) > MAX_HELLO:
            raise HandshakeError(f"hello of {len(data)} bytes (at most {MAX_HELLO})")
        try:
            fields = msgpack.unpackb(data, raw=False)
        except Exception as err:  # msgpack raises several exception types for malformed input
            raise HandshakeError(f"malformed hello: {type(err).__name__}") from None
        shape = [int, int, bytes, bytes, bytes, bytes, bytes]
        lengths = [None, None, 32, 20, 32, 32, 65]
        if not isinstance(fields, list) or len(fields) != len(shape) or not all(
                type(f) is t and (n is None or len(f) == n) for f, t, n in zip(fields, shape, lengths)):
            raise HandshakeError("malformed hello: expected [version, chain id, genesis hash (32), node id (20), "
                                 "ephemeral key (32), nonce (32), signature (65)]")
        return cls(*fields)


@dataclass
class Handshake:
    """One side's part: its ephemeral key and its Hello."""

    key: PrivateKey
    chain_id: int
    genesis_hash: bytes

    def __post_init__(self) -> None:
        self._ephemeral = X25519PrivateKey.generate()
        public = self._ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        hello = Hello(VERSION, self.chain_id, self.genesis_hash, self.key.address, public, os.urandom(32))
        y, r, s = self.key.sign_hash(hello.signing_hash)
        self.hello = replace(hello, signature=r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y,)))

    def check(self, peer: Hello) -> None:
        """HandshakeError unless the peer's Hello is signed by its node id and for this chain."""
        if peer.version != VERSION:
            raise HandshakeError(f"protocol version {peer.version}, this node speaks {VERSION}")
        if peer.chain_id != self.chain_id or peer.genesis_hash != self.genesis_hash:
            raise HandshakeError(f"the peer is on another chain (chain id {peer.chain_id}, genesis "
                                 f"0x{peer.genesis_hash.hex()[:16]}…)")
        sig = peer.signature
        try:
            signer = recover_address(peer.signing_hash, sig[64], int.from_bytes(sig[:32], "big"),
                                     int.from_bytes(sig[32:64], "big"))
        except (InvalidSignatureError, ValueError):
            raise HandshakeError("the hello's signature is not valid") from None
        if signer != peer.node_id:
            raise HandshakeError(f"the hello claims node 0x{peer.node_id.hex()} but is signed by 0x{signer.hex()}")
        if peer.ephemeral == self.hello.ephemeral or peer.nonce == self.hello.nonce:
            raise HandshakeError("the peer echoed this node's own hello")

    def session_keys(self, peer: Hello, initiator: bool) -> tuple[bytes, bytes]:
        """(key for sending, key for receiving), after `check(peer)`."""
        try:
            shared = self._ephemeral.exchange(X25519PublicKey.from_public_bytes(peer.ephemeral))
        except ValueError as err:  # a low-order point gives an all-zero secret
            raise HandshakeError(f"the peer's ephemeral key is unusable: {err}") from None
        first, second = (self.hello, peer) if initiator else (peer, self.hello)
        okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=first.nonce + second.nonce,
                   info=PROTOCOL + keccak256(first.encode() + second.encode())).derive(shared)
        outbound, inbound = okm[:32], okm[32:]  # initiator -> responder, responder -> initiator
        return (outbound, inbound) if initiator else (inbound, outbound)
