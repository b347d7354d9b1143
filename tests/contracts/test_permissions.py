"""The node permission contract (system/permissions.wat) on a real chain: admins allow and
remove nodes, anyone asks, everyone else is refused."""

from __future__ import annotations

import pytest

from chain.core.keys import PrivateKey
from chain.core.spec import parse_spec
from chain.core.system import (
    ALLOW_NODE,
    IS_ALLOWED,
    PERMISSIONS,
    REMOVE_NODE,
    node_slot,
    permission_call,
    permissions_storage,
)
from chain.ledger.blockchain import Blockchain
from chain.tx.codec import decode_transaction
from chain.tx.signing import sign_scoped_transaction
from contracts import load_system
from ewasm_runtime.hashing import keccak256

ADMIN, STRANGER = PrivateKey.from_hex("ad" * 32), PrivateKey.from_hex("57" * 32)
NODE_A, NODE_B = b"\x0a" * 20, b"\x0b" * 20
CHAIN_ID = 1337


@pytest.fixture
def chain(tmp_path):
    storage = permissions_storage([ADMIN.address], [NODE_A])
    spec = {"name": "perm", "engine": {"instant": {}}, "params": {"chainId": CHAIN_ID},
            "accounts": {"0x" + k.address.hex(): {"balance": str(10**21)} for k in (ADMIN, STRANGER)}}
    spec["accounts"]["0x" + PERMISSIONS.hex()] = {
        "code": "0x" + load_system("permissions.wasm").hex(), "nonce": 1,
        "storage": {"0x" + k.hex(): "0x" + v.hex() for k, v in storage.items()}}
    chain = Blockchain.initialize(str(tmp_path / "db"), parse_spec(spec))
    yield chain
    chain.close()


def allowed(chain, node: bytes) -> bool:
    result = chain.call(sender=bytes(20), to=PERMISSIONS, data=permission_call(IS_ALLOWED, node))
    assert result.status == "SUCCESS" and len(result.output) == 32
    return result.output[-1] == 1


def send(chain, key: PrivateKey, data: bytes, nonce: int):
    tx = decode_transaction(sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=200_000,
                                                    to=PERMISSIONS, data=data, scope=[key.address, PERMISSIONS],
                                                    max_fee_per_gas=1, max_priority_fee_per_gas=1))
    _, execution = chain.build_block([tx], b"\x0c" * 20)
    return execution.receipts[0]


def test_genesis_nodes_are_allowed_and_others_are_not(chain):
    assert allowed(chain, NODE_A) and not allowed(chain, NODE_B)


def test_an_admin_allows_and_removes_a_node_and_each_change_is_logged(chain):
    receipt = send(chain, ADMIN, permission_call(ALLOW_NODE, NODE_B), 0)
    assert receipt.status == 1 and allowed(chain, NODE_B)
    assert receipt.logs[0].address == PERMISSIONS
    assert receipt.logs[0].topics == (keccak256(b"NodeAllowed(address)"), NODE_B.rjust(32, b"\x00"))
    receipt = send(chain, ADMIN, permission_call(REMOVE_NODE, NODE_A), 1)
    assert receipt.status == 1 and not allowed(chain, NODE_A)
    assert receipt.logs[0].topics[0] == keccak256(b"NodeRemoved(address)")
    with chain.snapshot() as snap:
        assert snap.get_storage(PERMISSIONS, node_slot(NODE_A)) == bytes(32)


@pytest.mark.parametrize("data", [
    permission_call(REMOVE_NODE, NODE_A),
    permission_call(ALLOW_NODE, NODE_B),
])
def test_anyone_but_an_admin_is_refused_with_a_revert(chain, data):
    receipt = send(chain, STRANGER, data, 0)
    assert receipt.status == 0
    assert allowed(chain, NODE_A) and not allowed(chain, NODE_B)


@pytest.mark.parametrize("data", [b"", IS_ALLOWED, IS_ALLOWED + b"\x01" * 32, b"\xde\xad\xbe\xef" + bytes(32)])
def test_short_calldata_dirty_addresses_and_unknown_selectors_revert(chain, data):
    result = chain.call(sender=ADMIN.address, to=PERMISSIONS, data=data)
    assert result.status == "REVERT" and result.output == b""
