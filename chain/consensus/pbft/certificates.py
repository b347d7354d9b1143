"""What a set of signed messages proves: a prepared certificate, the round-change quorum
that justifies a proposal above round 0, and a block's commit seals.

Each check counts distinct validators only, and only messages of the height and round
in question: a duplicate, a stranger's vote or a vote for another block proves nothing.
"""

from __future__ import annotations

from chain.consensus.pbft.committee import Committee
from chain.consensus.pbft.messages import Kind, MessageError, Prepared, Signed, commit_digest, signer


class JustificationError(ValueError):
    """A certificate or justification that does not prove what it claims."""


def voters(messages: tuple[Signed, ...], committee: Committee, kind: Kind, height: int, round_: int,
           digest: bytes | None = None) -> set[bytes]:
    """The distinct validators among `messages` that voted `kind` at (height, round) for
    `digest` (any digest when None); JustificationError for one that is off."""
    found = set()
    for signed in messages:
        m = signed.message
        if m.kind != kind or m.height != height or m.round != round_ or (digest is not None and m.digest != digest):
            raise JustificationError(f"a {m.kind.name} of height {m.height} round {m.round} where a {kind.name} of "
                                     f"height {height} round {round_} was expected")
        try:
            sender = signed.sender
        except MessageError as err:
            raise JustificationError(str(err)) from None
        if sender not in committee:
            raise JustificationError(f"0x{sender.hex()} is not a validator")
        found.add(sender)
    return found


def check_prepared(prepared: Prepared, committee: Committee, height: int, digest_of) -> None:
    """A prepared certificate: its block has its digest, and a quorum prepared it."""
    if digest_of(prepared.block) != prepared.digest:
        raise JustificationError("the prepared block does not have the certificate's digest")
    count = len(voters(prepared.prepares, committee, Kind.PREPARE, height, prepared.round, prepared.digest))
    if count < committee.quorum:
        raise JustificationError(f"{count} PREPAREs prove nothing (a quorum is {committee.quorum})")


def highest_prepared(round_changes: tuple[Signed, ...], committee: Committee, height: int, round_: int,
                     digest_of) -> Prepared | None:
    """The certificate a proposal of `round_` must honour, after checking that the
    round changes are a quorum for that round and each certificate among them holds."""
    count = len(voters(round_changes, committee, Kind.ROUND_CHANGE, height, round_))
    if count < committee.quorum:
        raise JustificationError(f"{count} ROUND-CHANGEs for round {round_} (a quorum is {committee.quorum})")
    best = None
    for signed in round_changes:
        prepared = signed.message.prepared
        if prepared is None:
            continue
        if prepared.round >= round_:
            raise JustificationError(f"a certificate of round {prepared.round} in a change to round {round_}")
        check_prepared(prepared, committee, height, digest_of)
        if best is None or prepared.round > best.round:
            best = prepared
    return best


def commit_signers(seals: list[bytes], committee: Committee, digest: bytes, round_: int) -> set[bytes]:
    """The distinct validators whose commit seals sign (digest, round)."""
    found = set()
    target = commit_digest(digest, round_)
    for seal in seals:
        try:
            sender = signer(target, seal)
        except MessageError as err:
            raise JustificationError(f"a commit seal: {err}") from None
        if sender not in committee:
            raise JustificationError(f"a commit seal by 0x{sender.hex()}, who is not a validator")
        found.add(sender)
    return found
