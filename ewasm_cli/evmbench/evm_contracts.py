"""The EVM side's contracts: Vyper sources in contracts/evm/, compiled at run time.

solc cannot be downloaded here, so the EVM contracts are written in Vyper, which
installs from PyPI. The sources ship as package data of `contracts`, so an
installed package finds them without a checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from eth_hash.auto import keccak

from ewasm_cli.evmbench.backend import BackendUnavailable
from ewasm_cli.evmbench.workloads import (
    REPEAT_RECIPIENT,
    REPEAT_RECIPIENT_BALANCE,
    SENDER,
    TOKEN_SUPPLY,
)

CONTRACT_NAMES = ("token", "compute")


@dataclass(frozen=True)
class EvmContract:
    """One compiled Vyper contract: deployable and runtime code plus its storage layout."""

    name: str
    source: str
    bytecode: bytes
    runtime: bytes
    storage_slots: dict[str, int]
    vyper_version: str


def source_text(name: str) -> str:
    """The Vyper source of `name` from contracts/evm/."""
    return resources.files("contracts").joinpath("evm", f"{name}.vy").read_text()


@lru_cache(maxsize=None)
def compile_contract(name: str) -> EvmContract:
    """Compile contracts/evm/<name>.vy with the vyper package."""
    try:
        import vyper
        from vyper.compiler import compile_code
    except ImportError as err:
        raise BackendUnavailable("vyper is not installed (pip install 'ewasm[bench]')") from err
    source = source_text(name)
    out = compile_code(source, contract_path=f"{name}.vy",
                       output_formats=["bytecode", "bytecode_runtime", "layout"])
    layout = out["layout"]["storage_layout"]
    return EvmContract(
        name=name,
        source=source,
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
        runtime=bytes.fromhex(out["bytecode_runtime"].removeprefix("0x")),
        storage_slots={var: info["slot"] for var, info in layout.items()},
        vyper_version=vyper.__version__,
    )


def hashmap_slot(base_slot: int, key: bytes) -> int:
    """Storage slot of `map[key]` in Vyper: keccak256(slot ++ key), both as 32-byte words.

    (Vyper puts the slot first; Solidity puts the key first.)
    """
    return int.from_bytes(keccak(base_slot.to_bytes(32, "big") + key.rjust(32, b"\0")), "big")


def token_storage(token: EvmContract) -> dict[int, int]:
    """The token's starting storage: the holder owns the supply minus what the repeat recipient holds."""
    balances = token.storage_slots["balanceOf"]
    return {
        token.storage_slots["totalSupply"]: TOKEN_SUPPLY,
        hashmap_slot(balances, SENDER): TOKEN_SUPPLY - REPEAT_RECIPIENT_BALANCE,
        hashmap_slot(balances, REPEAT_RECIPIENT): REPEAT_RECIPIENT_BALANCE,
    }
