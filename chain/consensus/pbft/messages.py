"""The four QBFT messages, as signed, RLP-encoded envelopes.

Every message names its height and round and is signed by its sender's node key; the
sender is whoever the signature recovers to, never a field a peer could fill in.

- PREPARE(height, round, digest): "I accept this round's proposal".
- COMMIT(height, round, digest, seal): "I have seen a quorum prepare it"; `seal` is the
  sender's commit seal, its signature over `commit_digest(digest, round)`, which the
  block's header carries once committed.
- ROUND-CHANGE(height, round, prepared): "move to `round`"; `prepared` is the sender's
  prepared certificate, if it has one: the round it prepared in, that block, and the
  quorum of PREPAREs that prove it.
- PROPOSAL(height, round, block, digest, justification): the round's proposer's block.
  In a round above 0 it carries the quorum of ROUND-CHANGEs that started the round, and
  the proposer must re-propose the block of the highest certificate among them.

The digest of a block is its header hash, which leaves the seal out; the commit seals
sign the digest with the round, so that a block re-proposed in a later round is the
same block with seals of that round.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

import rlp

from chain.core.hashing import keccak256
from chain.core.keys import InvalidSignatureError, PrivateKey, sign_bytes, signer_of

MAX_MESSAGE_BYTES = 1 << 20  # the wire's cap for a consensus message
MAX_ROUND = 64  # no round above it is ever entered or kept


class MessageError(ValueError):
    """A consensus message that is malformed or not validly signed."""


class Kind(enum.IntEnum):
    PROPOSAL = 0
    PREPARE = 1
    COMMIT = 2
    ROUND_CHANGE = 3


def commit_digest(digest: bytes, round_: int) -> bytes:
    """What a commit seal signs: the block digest with the round it committed in."""
    return keccak256(digest + round_.to_bytes(4, "big"))


sign = sign_bytes  # a 65-byte recoverable signature, r || s || y (chain/core/keys.py)


def signer(message_hash: bytes, signature: bytes) -> bytes:
    """The address that made `signature` over `message_hash` (MessageError if none)."""
    try:
        return signer_of(message_hash, signature)
    except (InvalidSignatureError, ValueError) as err:
        raise MessageError(f"invalid signature: {err}") from None


@dataclass(frozen=True)
class Prepared:
    """A prepared certificate: `block` (with its digest) prepared in `round`, proven by
    a quorum of signed PREPAREs."""

    round: int
    digest: bytes
    block: bytes
    prepares: tuple["Signed", ...]

    def fields(self) -> list:
        return [self.round, self.digest, self.block, [p.encode() for p in self.prepares]]

    def encode(self) -> bytes:
        return rlp.encode(self.fields())

    @classmethod
    def decode(cls, data: bytes) -> "Prepared":
        try:
            prepared = _prepared(rlp.decode(data, strict=True))
        except rlp.DecodingError as err:
            raise MessageError(f"bad RLP: {err}") from None
        if prepared is None:
            raise MessageError("an empty certificate")
        return prepared


@dataclass(frozen=True)
class Message:
    kind: Kind
    height: int
    round: int
    digest: bytes = b""  # PROPOSAL, PREPARE, COMMIT
    seal: bytes = b""  # COMMIT
    block: bytes = b""  # PROPOSAL
    justification: tuple["Signed", ...] = ()  # PROPOSAL above round 0: the ROUND-CHANGEs
    prepared: Prepared | None = None  # ROUND-CHANGE

    def encode(self) -> bytes:
        prepared = [] if self.prepared is None else self.prepared.fields()
        return rlp.encode([int(self.kind), self.height, self.round, self.digest, self.seal, self.block,
                           [j.encode() for j in self.justification], prepared])

    @classmethod
    def decode(cls, data: bytes) -> "Message":
        try:
            items = rlp.decode(data, strict=True)
        except rlp.DecodingError as err:
            raise MessageError(f"bad RLP: {err}") from None
        if not isinstance(items, list) or len(items) != 8:
            raise MessageError("a consensus message is a list of 8 fields")
        kind, height, round_, digest, seal, block, justification, prepared = items
        try:
            kind = Kind(_uint(kind, "kind"))
        except ValueError:
            raise MessageError("unknown message kind") from None
        message = cls(kind, _uint(height, "height"), _uint(round_, "round"), _bytes(digest, "digest", (0, 32)),
                      _bytes(seal, "seal", (0, 65)), _bytes(block, "block"),
                      tuple(Signed.decode(_bytes(j, "justification")) for j in _list(justification, "justification")),
                      _prepared(prepared))
        if message.round > MAX_ROUND:
            raise MessageError(f"round {message.round} is above the cap of {MAX_ROUND}")
        return message


@dataclass(frozen=True)
class Signed:
    """A message with its sender's signature over keccak256 of its encoding."""

    message: Message
    signature: bytes
    payload: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def make(cls, key: PrivateKey, message: Message) -> "Signed":
        payload = message.encode()
        return cls(message, sign(key, keccak256(payload)), payload)

    @cached_property
    def sender(self) -> bytes:
        """The signer's address (MessageError if the signature recovers to none)."""
        return signer(keccak256(self.payload or self.message.encode()), self.signature)

    def encode(self) -> bytes:
        return rlp.encode([self.payload or self.message.encode(), self.signature])

    @classmethod
    def decode(cls, data: bytes) -> "Signed":
        """A signed message from the wire; MessageError if malformed or not signed."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise MessageError(f"{len(data)} bytes is above the cap of {MAX_MESSAGE_BYTES}")
        try:
            items = rlp.decode(data, strict=True)
        except rlp.DecodingError as err:
            raise MessageError(f"bad RLP: {err}") from None
        if not isinstance(items, list) or len(items) != 2 or not all(isinstance(i, bytes) for i in items):
            raise MessageError("a signed message is [payload, signature]")
        signed = cls(Message.decode(items[0]), items[1], items[0])
        signed.sender  # noqa: B018  (an unsigned message goes no further)
        return signed


def _prepared(item) -> Prepared | None:
    fields = _list(item, "prepared")
    if not fields:
        return None
    if len(fields) != 4:
        raise MessageError("a prepared certificate is [round, digest, block, prepares]")
    return Prepared(_uint(fields[0], "prepared round"), _bytes(fields[1], "prepared digest", (32,)),
                    _bytes(fields[2], "prepared block"),
                    tuple(Signed.decode(_bytes(p, "prepare")) for p in _list(fields[3], "prepares")))


def _uint(item, name: str) -> int:
    if not isinstance(item, bytes) or len(item) > 8 or item[:1] == b"\x00":
        raise MessageError(f"{name}: expected an unsigned integer of at most 8 bytes")
    return int.from_bytes(item, "big")


def _bytes(item, name: str, lengths: tuple[int, ...] | None = None) -> bytes:
    if not isinstance(item, bytes):
        raise MessageError(f"{name}: expected bytes")
    if lengths is not None and len(item) not in lengths:
        raise MessageError(f"{name}: expected {' or '.join(map(str, lengths))} bytes, got {len(item)}")
    return item


def _list(item, name: str) -> list:
    if not isinstance(item, list):
        raise MessageError(f"{name}: expected a list")
    return item
