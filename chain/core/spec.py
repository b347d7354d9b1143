"""The chain spec: a JSON file in the spirit of Parity's chain spec.

    {
      "name": "ewasm-dev",
      "engine": {"instant": {}}  or  {"poa": {"validators": ["0x..", ...], "stepDuration": 1.0, "emptyBlocks": true,
                                              "epochLength": 30000}}
                                 or  {"poa": {"authority": "0x..", "blockPeriod": 1.0}}  (one authority)
                                 or  {"pbft": {"validators": [...], "blockPeriod": 1, "requestTimeout": 2,
                                               "epochLength": 30000}},
      "params": {"chainId": 1337, "shardId": 0, "gasLimit": 30000000, "maxTransactionSize": 131072,
                 "baseFeePerGas": 0, "maxCodeSize": 1048576, "costTable": "<hash of the cost table>"},
      "genesis": {"timestamp": 0, "extraData": "0x"},
      "accounts": {"0x<address>": {"balance": "1000", "nonce": 0, "code": "0x<wasm>", "storage": {"0x..": "0x.."}}},
      "builtins": {"0x0000000000000000000000000000000000000001": "ecrecover", ...},
      "txpool": {"maxTransactions": 100000, "maxBytes": 134217728, "maxQueuedPerSender": 64, "maxQueued": 1024,
                 "queuedLifetime": 10800, "minTip": 0, "priceBump": 10},
      "network": {"admins": ["0x<address>", ...], "nodes": ["0x<node id>", ...]},
      "shards": {"count": 1}
    }

"txpool" is optional, and so is each of its fields: the node's admission policy
(chain/txpool/policy.py has the defaults), which node flags override. "network" names
the consortium's admin accounts and the node ids allowed to connect (a node id is the
address of a node's key); a spec without it is a single node's.

"shards" splits the address space (chain/core/shards.py): shard K is a chain of its own,
with chain id chainId + K, holding the genesis accounts whose addresses are on it and
every system account; `ChainSpec.for_shard(K)` is its spec. Without it there is one
shard, whose id "params.shardId" may name.

The engine's validators are the set at genesis. With the validator-set contract at
0x…ff02 among the accounts (its storage listing the same validators), validators vote
changes on chain, and each applies at the next multiple of epochLength
(chain/ledger/validator_sets.py); without it the set stays fixed.

Numbers may be JSON integers, decimal strings or 0x-hex strings. Every problem is a
`SpecError` naming the field, never a KeyError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from chain.core.params import DEFAULT_BASE_FEE, ChainParams
from chain.core.shards import MAX_SHARDS, ShardLayout, is_system


class SpecError(ValueError):
    """The chain spec is malformed; the message names the offending field."""


@dataclass(frozen=True)
class GenesisAccount:
    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: dict[bytes, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineSpec:
    """Which consensus engine runs the chain, and its settings."""

    name: str  # "instant", "poa" or "pbft"
    validators: tuple[bytes, ...] = ()  # the PoA authorities in turn order; the PBFT validators
    block_period: float = 1.0  # PoA: the step duration; PBFT: from a block to the next round 0; seconds
    empty_blocks: bool = False  # PoA: seal a block at every own step, even with nothing pending
    request_timeout: float = 2.0  # PBFT: round 0's timer, seconds (round r: x 2^r)
    epoch_length: int = 30_000  # blocks between the points where validator changes apply

    @property
    def authority(self) -> bytes | None:
        """The authority of a single-authority chain (None otherwise)."""
        return self.validators[0] if len(self.validators) == 1 else None


@dataclass(frozen=True)
class NetworkSpec:
    """The consortium's membership at genesis: its admin accounts and its nodes' ids."""

    admins: tuple[bytes, ...] = ()
    nodes: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class ChainSpec:
    name: str
    engine: EngineSpec
    params: ChainParams
    timestamp: int
    extra_data: bytes
    accounts: dict[bytes, GenesisAccount]
    builtins: dict[bytes, str]
    txpool: dict[str, int | float] = field(default_factory=dict)  # PoolLimits fields
    network: NetworkSpec = field(default_factory=lambda: NetworkSpec())
    raw: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        return json.dumps(self.raw, indent=2, sort_keys=True)

    @property
    def shards(self) -> ShardLayout:
        return self.params.shards

    def for_shard(self, shard: int) -> "ChainSpec":
        """Shard `shard`'s chain: its id and chain id (chainId + shard), and of the genesis
        accounts those on it (system accounts are on every shard)."""
        layout = self.shards
        if not 0 <= shard < layout.count:
            raise SpecError(f"shard {shard}: this chain has shards 0 to {layout.count - 1}")
        if layout.count == 1:
            return self
        params = replace(self.params, shard_id=shard, chain_id=self.params.chain_id + shard)
        accounts = {a: entry for a, entry in self.accounts.items() if layout.holds(shard, a)}
        return replace(self, params=params, accounts=accounts)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        try:
            result = int(value, 16) if value[:2].lower() == "0x" else int(value, 10)
        except ValueError:
            raise SpecError(f"{where}: {value!r} is not a number") from None
    else:
        raise SpecError(f"{where}: expected a number, got {type(value).__name__}")
    if result < 0:
        raise SpecError(f"{where}: must not be negative")
    return result


def _hex(value: Any, where: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or value[:2].lower() != "0x":
        raise SpecError(f"{where}: expected a 0x-prefixed hex string")
    try:
        data = bytes.fromhex(value[2:])
    except ValueError:
        raise SpecError(f"{where}: {value!r} is not valid hex") from None
    if length is not None and len(data) != length:
        raise SpecError(f"{where}: expected {length} bytes, got {len(data)}")
    return data


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected an object")
    return value


def parse_spec(data: dict) -> ChainSpec:
    """Validate a decoded chain spec."""
    data = _object(data, "spec")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError("name: expected a non-empty string")
    engine = _parse_engine(_object(data.get("engine"), "engine"))
    p = _object(data.get("params", {}), "params")
    known = {"chainId", "shardId", "gasLimit", "maxTransactionSize", "baseFeePerGas", "maxCodeSize", "costTable"}
    unknown = set(p) - known
    if unknown:
        raise SpecError(f"params: unknown field(s) {', '.join(sorted(unknown))}")
    if "chainId" not in p:
        raise SpecError("params.chainId: required")
    shard_count = _parse_shards(_object(data.get("shards", {}), "shards"))
    if shard_count > 1 and "shardId" in p:
        raise SpecError("params.shardId: a sharded spec (shards.count > 1) numbers its shards itself")
    defaults = ChainParams()
    cost_table = p.get("costTable", "")
    if not isinstance(cost_table, str):
        raise SpecError("params.costTable: expected the cost table's hash as a hex string")
    params = ChainParams(
        chain_id=_int(p["chainId"], "params.chainId"),
        shard_id=_int(p.get("shardId", 0), "params.shardId"),
        shard_count=shard_count,
        block_gas_limit=_int(p.get("gasLimit", defaults.block_gas_limit), "params.gasLimit"),
        max_transaction_size=_int(p.get("maxTransactionSize", defaults.max_transaction_size),
                                  "params.maxTransactionSize"),
        base_fee_per_gas=_int(p.get("baseFeePerGas", 0), "params.baseFeePerGas"),
        max_code_size=_int(p.get("maxCodeSize", defaults.max_code_size), "params.maxCodeSize"),
        cost_table_hash=cost_table.removeprefix("0x"),
        block_period=engine.block_period,
    )
    if params.block_gas_limit < 21_000:
        raise SpecError("params.gasLimit: must be at least 21000")
    genesis = _object(data.get("genesis", {}), "genesis")
    accounts = {}
    for address_text, entry in _object(data.get("accounts", {}), "accounts").items():
        where = f"accounts.{address_text}"
        address = _hex(address_text, where, 20)
        entry = _object(entry, where)
        storage = {_hex(k, f"{where}.storage key", 32): _hex(v, f"{where}.storage value", 32)
                   for k, v in _object(entry.get("storage", {}), f"{where}.storage").items()}
        accounts[address] = GenesisAccount(
            balance=_int(entry.get("balance", 0), f"{where}.balance"),
            nonce=_int(entry.get("nonce", 0), f"{where}.nonce"),
            code=_hex(entry.get("code", "0x"), f"{where}.code"),
            storage=storage)
    if shard_count > 1:
        for address, entry in accounts.items():
            if is_system(address) and entry.balance:
                raise SpecError(f"accounts.0x{address.hex()}: a system address exists on every shard, so in a "
                                "sharded spec it holds no balance")
    builtins = {}
    for address_text, builtin in _object(data.get("builtins", {}), "builtins").items():
        if isinstance(builtin, dict):
            builtin = builtin.get("name")
        if not isinstance(builtin, str):
            raise SpecError(f"builtins.{address_text}: expected a precompile name")
        builtins[_hex(address_text, f"builtins.{address_text}", 20)] = builtin
    return ChainSpec(name=name, engine=engine, params=params,
                     timestamp=_int(genesis.get("timestamp", 0), "genesis.timestamp"),
                     extra_data=_hex(genesis.get("extraData", "0x"), "genesis.extraData"),
                     accounts=accounts, builtins=builtins,
                     txpool=_parse_txpool(_object(data.get("txpool", {}), "txpool")),
                     network=_parse_network(_object(data.get("network", {}), "network")), raw=data)


# "txpool" field -> (PoolLimits field, smallest allowed value)
_TXPOOL_FIELDS = {"maxTransactions": ("max_transactions", 1), "maxBytes": ("max_bytes", 1),
                  "maxQueuedPerSender": ("max_queued_per_sender", 1), "maxQueued": ("max_queued", 1),
                  "minTip": ("min_tip", 0), "priceBump": ("price_bump", 0)}


def _parse_shards(section: dict) -> int:
    """{"count": N}: the number of shards (1 without the section)."""
    unknown = set(section) - {"count"}
    if unknown:
        raise SpecError(f"shards: unknown field(s) {', '.join(sorted(unknown))}")
    count = section.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
        raise SpecError(f"shards.count: expected a whole number from 1 to {MAX_SHARDS}")
    return count


def _parse_txpool(section: dict) -> dict[str, int | float]:
    unknown = set(section) - set(_TXPOOL_FIELDS) - {"queuedLifetime"}
    if unknown:
        raise SpecError(f"txpool: unknown field(s) {', '.join(sorted(unknown))}")
    limits: dict[str, int | float] = {}
    for name, (field_name, least) in _TXPOOL_FIELDS.items():
        if name in section:
            limits[field_name] = _int(section[name], f"txpool.{name}")
            if limits[field_name] < least:
                raise SpecError(f"txpool.{name}: must be at least {least}")
    if "queuedLifetime" in section:
        lifetime = section["queuedLifetime"]
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or not lifetime > 0:
            raise SpecError("txpool.queuedLifetime: expected a positive number of seconds")
        limits["queued_lifetime"] = float(lifetime)
    return limits


def _parse_network(section: dict) -> NetworkSpec:
    unknown = set(section) - {"admins", "nodes"}
    if unknown:
        raise SpecError(f"network: unknown field(s) {', '.join(sorted(unknown))}")
    lists = {}
    for name in ("admins", "nodes"):
        entries = section.get(name, [])
        if not isinstance(entries, list):
            raise SpecError(f"network.{name}: expected a list of addresses")
        lists[name] = tuple(_hex(entry, f"network.{name}[{i}]", 20) for i, entry in enumerate(entries))
    return NetworkSpec(**lists)


def _parse_engine(engine: dict) -> EngineSpec:
    if len(engine) != 1:
        raise SpecError('engine: expected exactly one engine, e.g. {"instant": {}} or {"poa": {...}}')
    (name, settings), = engine.items()
    settings = _object(settings, f"engine.{name}")
    settings = settings.get("params", settings)  # Parity nests engine settings under "params"
    if name == "instant":
        return EngineSpec("instant", block_period=0.0)
    if name == "poa":
        return _parse_poa(settings)
    if name == "pbft":
        return _parse_pbft(settings)
    raise SpecError(f"engine: unknown engine {name!r} (known: instant, poa, pbft)")


def _parse_poa(settings: dict) -> EngineSpec:
    """{"validators": [...], "stepDuration": S, "emptyBlocks": B}, or the single-authority
    form {"authority": X, "blockPeriod": S}, which seals only when there is work."""
    _known(settings, "poa", {"authority", "validators", "stepDuration", "blockPeriod", "emptyBlocks", "epochLength"})
    if ("authority" in settings) == ("validators" in settings):
        raise SpecError("engine.poa: give either authority (one signer) or validators (a list), not both")
    if "authority" in settings:
        validators = (_hex(settings["authority"], "engine.poa.authority", 20),)
    else:
        validators = _validators(settings, "poa")
    name = "stepDuration" if "stepDuration" in settings else "blockPeriod"
    period = _seconds(settings, name, 1.0, "poa")
    empty = settings.get("emptyBlocks", "validators" in settings)
    if not isinstance(empty, bool):
        raise SpecError("engine.poa.emptyBlocks: expected true or false")
    return EngineSpec("poa", validators=validators, block_period=period, empty_blocks=empty,
                      epoch_length=_epoch_length(settings, "poa"))


def _parse_pbft(settings: dict) -> EngineSpec:
    """{"validators": [...], "blockPeriod": S, "requestTimeout": S, "epochLength": N}."""
    _known(settings, "pbft", {"validators", "blockPeriod", "requestTimeout", "epochLength"})
    if "validators" not in settings:
        raise SpecError("engine.pbft.validators: the validators are required")
    return EngineSpec("pbft", validators=_validators(settings, "pbft"),
                      block_period=_seconds(settings, "blockPeriod", 1.0, "pbft"),
                      request_timeout=_seconds(settings, "requestTimeout", 2.0, "pbft"),
                      epoch_length=_epoch_length(settings, "pbft"))


def _epoch_length(settings: dict, engine: str) -> int:
    epoch = settings.get("epochLength", 30_000)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= 10**9:
        raise SpecError(f"engine.{engine}.epochLength: expected a whole number of blocks from 1 to 10^9")
    return epoch


def _known(settings: dict, engine: str, fields: set[str]) -> None:
    unknown = set(settings) - fields
    if unknown:
        raise SpecError(f"engine.{engine}: unknown field(s) {', '.join(sorted(unknown))}")


def _validators(settings: dict, engine: str) -> tuple[bytes, ...]:
    entries = settings["validators"]
    if not isinstance(entries, list) or not entries:
        raise SpecError(f"engine.{engine}.validators: expected a non-empty list of addresses")
    validators = tuple(_hex(v, f"engine.{engine}.validators[{i}]", 20) for i, v in enumerate(entries))
    if len(set(validators)) != len(validators):
        raise SpecError(f"engine.{engine}.validators: an address is listed twice")
    return validators


def _seconds(settings: dict, name: str, default: float, engine: str) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise SpecError(f"engine.{engine}.{name}: expected seconds between 0 and 3600")
    return float(value)


def load_spec(path: str) -> ChainSpec:
    """Read and validate a chain spec file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as err:
        raise SpecError(f"cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise SpecError(f"{path} is not valid JSON: {err}") from None
    return parse_spec(data)


def default_cost_table() -> str:
    """The hash a new spec names: this build's default cost table, fixed at genesis so
    that a later default does not change the chain's rules."""
    import metering

    return "0x" + metering.load_costs().hash


def dev_spec(funded: bytes, *, chain_id: int = 1337, engine: str = "instant", authority: bytes | None = None,
             block_period: float = 1.0, balance: int = 10**24, cost_table: str | None = None,
             base_fee: int = DEFAULT_BASE_FEE) -> dict:
    """The spec of a one-node development chain whose genesis funds `funded`; it names
    this build's default cost table unless told another (or "" for default-v1)."""
    if cost_table is None:
        cost_table = default_cost_table()
    engine_json = {"instant": {}} if engine == "instant" else \
        {"poa": {"authority": "0x" + (authority or funded).hex(), "blockPeriod": block_period}}
    return {
        "name": "ewasm-devnet",
        "engine": engine_json,
        "params": {"chainId": chain_id, "gasLimit": 30_000_000, "costTable": cost_table, "baseFeePerGas": base_fee},
        "genesis": {"timestamp": 0},
        "accounts": {"0x" + funded.hex(): {"balance": str(balance)}},
        "builtins": {"0x" + (1).to_bytes(20, "big").hex(): "ecrecover", "0x" + (2).to_bytes(20, "big").hex(): "sha256",
                     "0x" + (3).to_bytes(20, "big").hex(): "ripemd160", "0x" + (4).to_bytes(20, "big").hex(): "identity",
                     "0x" + (9).to_bytes(20, "big").hex(): "keccak256"},
    }
