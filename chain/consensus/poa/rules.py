"""What makes a single-authority PoA header valid: its authority proposed and sealed it,
and it names the validator set {authority}."""

from __future__ import annotations

from dataclasses import dataclass

from chain.consensus.poa.seal import seal_signer
from chain.core.blocks import Header, InvalidBlock, validator_set_hash


@dataclass(frozen=True)
class PoaRules:
    authority: bytes

    def verify_header(self, header: Header, parent: Header) -> None:
        if header.proposer != self.authority:
            raise InvalidBlock(f"block {header.number}: proposer 0x{header.proposer.hex()} is not the authority "
                               f"0x{self.authority.hex()}")
        signer = seal_signer(header)
        if signer != self.authority:
            raise InvalidBlock(f"block {header.number}: sealed by 0x{signer.hex()}, not by the authority "
                               f"0x{self.authority.hex()}")
        if header.validator_set_hash != validator_set_hash([self.authority]):
            raise InvalidBlock(f"block {header.number}: the validator-set hash does not name the authority")
