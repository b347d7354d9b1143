"""What makes an instant-engine header valid: no seal and no validators (one development
node; any proposer address)."""

from __future__ import annotations

from chain.core.blocks import Header, InvalidBlock, validator_set_hash


class InstantRules:
    def verify_header(self, header: Header, parent: Header) -> None:
        if header.seal:
            raise InvalidBlock(f"block {header.number}: the instant engine seals nothing, this block has a "
                               f"{len(header.seal)}-byte seal")
        if header.validator_set_hash != validator_set_hash([]):
            raise InvalidBlock(f"block {header.number}: the instant engine has no validators, the header names some")
