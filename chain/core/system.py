"""The system contracts: ordinary metered contracts that genesis places at reserved
addresses, and the ABI the chain reads them with.

0x…ff01 holds the node permission list (contracts/system/permissions.wat):
allowNode(address) and removeNode(address) for its admins, isAllowed(address) for anyone.
Its storage: 0x01 || 11 zero bytes || node = 1 for an allowed node, 0x02 || 11 zero
bytes || admin = 1 for an admin.
"""

from __future__ import annotations

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
