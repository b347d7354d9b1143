"""The example token's interface (examples/token.c), for everything that talks to it.

    transfer(address,uint256) -> bool     0xa9059cbb   logs Transfer(from, to, value)
    balanceOf(address)        -> uint256  0x70a08231

A holder's balance is a big-endian uint256 word under the storage key
0x01 || 11 zero bytes || holder. The CLI demo, the benchmarks and the tests build calls,
storage reads and genesis entries from here, so that the ABI is written down once.
"""

from __future__ import annotations

from contracts import load_example

TRANSFER = bytes.fromhex("a9059cbb")  # keccak256("transfer(address,uint256)")[:4]
BALANCE_OF = bytes.fromhex("70a08231")  # keccak256("balanceOf(address)")[:4]


def runtime_code() -> bytes:
    """The token's runtime module (what genesis puts at an address; the chain meters it)."""
    return load_example("token.wasm")


def deployer_code() -> bytes:
    """The init module that deploys the token with the whole supply to its creator."""
    return load_example("token.deploy.wasm")


def address_word(address: bytes) -> bytes:
    """An address as an ABI argument: left-padded to 32 bytes."""
    return address.rjust(32, b"\x00")


def transfer_data(to: bytes, amount: int) -> bytes:
    """Calldata of transfer(to, amount)."""
    return TRANSFER + address_word(to) + amount.to_bytes(32, "big")


def balance_of_data(holder: bytes) -> bytes:
    """Calldata of balanceOf(holder)."""
    return BALANCE_OF + address_word(holder)


def balance_slot(holder: bytes) -> bytes:
    """The storage key of a holder's balance."""
    return b"\x01" + bytes(11) + holder


def genesis_entry(balances: dict[bytes, int]) -> dict:
    """A chain spec account entry: the token, with `balances` already held."""
    return {"balance": "0", "nonce": 1, "code": "0x" + runtime_code().hex(),
            "storage": {"0x" + balance_slot(holder).hex(): "0x" + amount.to_bytes(32, "big").hex()
                        for holder, amount in balances.items()}}
