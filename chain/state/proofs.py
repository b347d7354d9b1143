"""Checking eth_getProof answers: what a light client does with a header's state root.

Standalone: it needs the chain's hashing and Merkle verification, no node and no
database.
"""

from __future__ import annotations

from typing import Any

from chain.state.account import Account, account_key, storage_key
from chain.state.commitment import Proof, verify_proof


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if hasattr(value, "hex") and not isinstance(value, str):  # HexBytes
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text[:2].lower() == "0x" else text)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    return int(str(value), 16)


def verify_account_proof(state_root: bytes, result: dict) -> bool:
    """Whether an eth_getProof result (JSON or web3.py's AttributeDict) is consistent with
    `state_root`: the account fields and every storage value are proven by their proofs."""
    address = _bytes(result["address"])
    account = Account(_int(result["nonce"]), _int(result["balance"]), _bytes(result["codeHash"]))
    value = None if account.is_empty else account.encode()
    try:
        proof = Proof.decode([_bytes(n) for n in result["accountProof"]])
        if not verify_proof(state_root, account_key(address), value, proof):
            return False
        for entry in result["storageProof"]:
            slot = _bytes(entry["key"]).rjust(32, b"\x00")
            word = _int(entry["value"])
            stored = None if word == 0 else word.to_bytes(32, "big")
            if not verify_proof(state_root, storage_key(address, slot), stored,
                                Proof.decode([_bytes(n) for n in entry["proof"]])):
                return False
    except (ValueError, KeyError, TypeError):
        return False
    return True
