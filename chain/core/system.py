"""The system contracts: ordinary metered contracts that genesis places at reserved
addresses, and the ABI the chain reads them with.

0x…ff01 holds the node permission list (contracts/system/permissions.wat):
allowNode(address) and removeNode(address) for its admins, isAllowed(address) for anyone.
Its storage: 0x01 || 11 zero bytes || node = 1 for an allowed node, 0x02 || 11 zero
bytes || admin = 1 for an admin.

0x…ff03 is the cross-shard outbox (contracts/system/outbox.wat): a transaction sending it
value with a 20-byte destination as calldata moves the value to that address's shard.
Its storage holds the receipts this shard has consumed (chain/core/cross_shard.py,
consumed_slot); deliveries run with it as their caller.

0x…ff02 holds the validator list and the votes on it (contracts/system/validators.wat):
proposeValidator(address, bool add) for its validators, getValidators() for anyone. The
chain reads the list straight from its storage: 0x03 || 31 zero bytes = n, and
0x04 || 27 zero bytes || i (4 bytes, big-endian) = the address word of validator i;
0x05 || 11 zero bytes || validator = its index + 1.
"""

from __future__ import annotations

from typing import Callable

PERMISSIONS = bytes(18) + b"\xff\x01"

ALLOW_NODE = bytes.fromhex("40d4e378")  # keccak256("allowNode(address)")[:4]
REMOVE_NODE = bytes.fromhex("b2b99ec9")  # keccak256("removeNode(address)")[:4]
IS_ALLOWED = bytes.fromhex("babcc539")  # keccak256("isAllowed(address)")[:4]
YES = (1).to_bytes(32, "big")


def permission_call(selector: bytes, node: bytes) -> bytes:
    """Calldata of allowNode, removeNode or isAllowed for `node`."""
    return selector + node.rjust(32, b"\x00")


def node_slot(node: bytes) -> bytes:
    return b"\x01" + bytes(11) + node


def admin_slot(admin: bytes) -> bytes:
    return b"\x02" + bytes(11) + admin


def permissions_storage(admins, nodes) -> dict[bytes, bytes]:
    """The permission contract's genesis storage for these admins and nodes."""
    return {**{admin_slot(a): YES for a in admins}, **{node_slot(n): YES for n in nodes}}


VALIDATORS = bytes(18) + b"\xff\x02"
OUTBOX = bytes(18) + b"\xff\x03"

PROPOSE_VALIDATOR = bytes.fromhex("52b341fb")  # keccak256("proposeValidator(address,bool)")[:4]
GET_VALIDATORS = bytes.fromhex("b7ab4db5")  # keccak256("getValidators()")[:4]
MAX_VALIDATORS = 1024  # the contract refuses to list more


class ValidatorVoteError(ValueError):
    """A validator vote that cannot be cast (the message says why)."""


def propose_validator_call(candidate: bytes, add: bool) -> bytes:
    """Calldata of proposeValidator(candidate, add)."""
    return PROPOSE_VALIDATOR + candidate.rjust(32, b"\x00") + int(add).to_bytes(32, "big")


def validator_count_slot() -> bytes:
    return b"\x03" + bytes(31)


def validator_entry_slot(index: int) -> bytes:
    return b"\x04" + bytes(27) + index.to_bytes(4, "big")


def validator_position_slot(validator: bytes) -> bytes:
    return b"\x05" + bytes(11) + validator


def validators_storage(validators) -> dict[bytes, bytes]:
    """The validator contract's genesis storage for this list (in this order)."""
    storage = {validator_count_slot(): len(validators).to_bytes(32, "big")}
    for index, validator in enumerate(validators):
        storage[validator_entry_slot(index)] = validator.rjust(32, b"\x00")
        storage[validator_position_slot(validator)] = (index + 1).to_bytes(32, "big")
    return storage


def read_validators(get_storage: Callable[[bytes], bytes]) -> tuple[bytes, ...]:
    """The contract's list, read through `get_storage(slot) -> word`."""
    count = min(int.from_bytes(get_storage(validator_count_slot()), "big"), MAX_VALIDATORS)
    return tuple(get_storage(validator_entry_slot(i))[12:] for i in range(count))
