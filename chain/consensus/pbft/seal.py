"""A committed PBFT block's seal: the round it committed in and the commit seals of a
quorum, RLP [round, [seal, ...]]. The block hash leaves the seal out, so the seals can
sign the hash (with the round) and be added once the block is decided."""

from __future__ import annotations

import rlp

from chain.consensus.pbft.messages import MAX_ROUND
from chain.core.blocks import Header, InvalidBlock


def encode_seal(round_: int, seals: tuple[bytes, ...]) -> bytes:
    return rlp.encode([round_, list(seals)])


def decode_seal(header: Header) -> tuple[int, list[bytes]]:
    """(round, commit seals) of a header; InvalidBlock when the seal is not of that form."""
    try:
        items = rlp.decode(header.seal, strict=True)
    except rlp.DecodingError:
        items = None
    if (not isinstance(items, list) or len(items) != 2 or not isinstance(items[0], bytes)
            or len(items[0]) > 1 or items[0][:1] == b"\x00" or not isinstance(items[1], list)
            or not all(isinstance(seal, bytes) for seal in items[1])):
        raise InvalidBlock(f"block {header.number}: a PBFT seal is RLP [round, [commit seal, ...]]")
    round_ = int.from_bytes(items[0], "big")
    if round_ > MAX_ROUND:
        raise InvalidBlock(f"block {header.number}: round {round_} is above the cap of {MAX_ROUND}")
    return round_, items[1]
