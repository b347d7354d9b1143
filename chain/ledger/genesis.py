"""Genesis: the state and the first block that a chain spec describes.

Genesis code is metered here, with this build's cost table, exactly as a deployment
would meter it: the chain never stores code it has not metered itself. A spec that
names another cost table is refused, since every node must charge the same gas, and so
is a validator-set contract whose list is not the engine's validators: the set at
genesis has one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import metering
from metering.costs import LEGACY_VERSION, describe_shipped
from chain.core.blocks import Header, genesis_header, validator_set_hash
from chain.core.hashing import EMPTY_CODE_HASH, keccak256
from chain.core.spec import ChainSpec, SpecError
from chain.core.system import VALIDATORS, read_validators
from chain.state.account import Account
from chain.state.commitment import MerkleTree
from chain.state.overlay import StateChanges

SPEC_KEY = b"spec"  # the store's meta entry holding the spec a datadir was made from
SHARD_KEY = b"shard"  # and the one naming which of its shards the datadir holds


@dataclass(frozen=True)
class Genesis:
    """Block 0: its header, and the state it commits to."""

    header: Header
    changes: StateChanges


def make_genesis(spec: ChainSpec) -> Genesis:
    """The genesis block of `spec`; SpecError for code that does not meter, or a spec
    that names another cost table."""
    check_validator_contract(spec)
    changes = genesis_state(spec)
    tree = MerkleTree()
    tree.update(changes.commitment_updates())
    validators = list(spec.engine.validators)
    header = genesis_header(shard_id=spec.params.shard_id, state_root=tree.root, timestamp=spec.timestamp,
                            gas_limit=spec.params.block_gas_limit, validator_set_hash=validator_set_hash(validators),
                            extra_data=spec.extra_data)
    return Genesis(header, changes)


def has_validator_contract(spec: ChainSpec) -> bool:
    """Whether validators vote their set on chain: an engine with validators, and the
    validator-set contract's code at its address."""
    entry = spec.accounts.get(VALIDATORS)
    return spec.engine.name in ("poa", "pbft") and entry is not None and bool(entry.code)


def check_validator_contract(spec: ChainSpec) -> None:
    """SpecError unless the validator-set contract, if the spec places it, lists exactly
    the engine's validators in the same order."""
    if not has_validator_contract(spec):
        return
    entry = spec.accounts[VALIDATORS]
    listed = read_validators(lambda slot: entry.storage.get(slot, bytes(32)))
    if listed != tuple(spec.engine.validators):
        raise SpecError(f"accounts.0x{VALIDATORS.hex()}.storage lists the validators "
                        f"{['0x' + v.hex() for v in listed]}, engine.{spec.engine.name}.validators are "
                        f"{['0x' + v.hex() for v in spec.engine.validators]}: they must be the same")


def cost_table(spec: ChainSpec) -> metering.CostTable:
    """The cost table the spec names by hash (any table this build ships). A spec that
    names none runs default-v1, the default when such specs were written; `devnet` and
    `network init` name the table they were made with."""
    named = spec.params.cost_table_hash
    if not named:
        return metering.load_costs(LEGACY_VERSION)
    costs = metering.costs_by_hash(named)
    if costs is None:
        raise SpecError(f"params.costTable names cost table {named}; this build ships {describe_shipped()}")
    return costs


def genesis_state(spec: ChainSpec) -> StateChanges:
    """The spec's accounts as state writes, their code metered."""
    costs = cost_table(spec)
    changes = StateChanges()
    for address, entry in sorted(spec.accounts.items()):
        if not spec.shards.holds(spec.params.shard_id, address):
            continue  # another shard's account
        code_hash = EMPTY_CODE_HASH
        if entry.code:
            try:
                code = metering.meter(entry.code, costs=costs, profile="ewasm")
            except ValueError as err:
                raise SpecError(f"accounts.0x{address.hex()}.code: {err}") from None
            code_hash = keccak256(code)
            changes.code[code_hash] = code
        changes.accounts[address] = Account(entry.nonce, entry.balance, code_hash)
        for slot, value in entry.storage.items():
            if any(value):
                changes.storage[(address, slot)] = value
    return changes
