"""The write-ahead log of a validator's votes: what it signed at its current height, and
the prepared certificate it holds. It is written (durably, in the node's lmdb
environment) before each vote goes out, so that a validator killed at any moment and
restarted signs no second, different vote for a round it voted in, and still carries the
certificate that safety in later rounds may depend on."""

from __future__ import annotations

from dataclasses import dataclass

import rlp

from chain.consensus.pbft.messages import Kind, MessageError, Prepared

WAL_KEY = b"pbft-wal"


@dataclass(frozen=True)
class VoteLog:
    height: int
    sent: dict[tuple[Kind, int], bytes]  # (kind, round) -> the digest signed
    prepared: Prepared | None

    def encode(self) -> bytes:
        return rlp.encode([self.height, [[int(kind), round_, digest] for (kind, round_), digest in self.sent.items()],
                           b"" if self.prepared is None else self.prepared.encode()])

    @classmethod
    def decode(cls, data: bytes) -> "VoteLog":
        """MessageError if the record is damaged."""
        try:
            height, sent, prepared = rlp.decode(data, strict=True)
            votes = {(Kind(int.from_bytes(k, "big")), int.from_bytes(r, "big")): d for k, r, d in sent}
            return cls(int.from_bytes(height, "big"), votes, Prepared.decode(prepared) if prepared else None)
        except (rlp.DecodingError, ValueError, TypeError) as err:
            raise MessageError(f"a damaged vote log: {err}") from None
