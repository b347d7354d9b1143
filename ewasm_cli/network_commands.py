"""`ewasm network init`: a local consortium, ready to run.

It writes DIR/spec.json and one initialised datadir per node, DIR/node0 … (validators
first), each with `node.json`: the node's key, its RPC and p2p addresses and its peers,
which `ewasm node run --datadir DIR/nodeK` reads (flags override). Genesis funds the dev
key, the admin key and every node key with 10^24 wei (so that a node can pay for its
validator votes), and places the permission contract (0x…ff01) listing every node, with
the admin key as its admin, and the validator-set contract (0x…ff02) listing the
validators. Node k gets RPC port P+2k and p2p port P+2k+1.

With `--shards N` every node runs every shard: DIR/nodeK holds the node's `node.json`
(its key and the RPC port of its shard router) and one datadir per shard,
DIR/nodeK/shardS, each with a `node.json` of its own: the same key, and the p2p
address of that shard, P+2n+kN+S for n nodes, whose peers are the same shard on the
other nodes. The spec places the cross-shard outbox (0x…ff03), and genesis funds each
key on the shard of its address.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

from chain.core.params import DEFAULT_BASE_FEE
from chain.core.spec import default_cost_table
from ewasm_cli.arguments import integer, port, seconds
from ewasm_cli.local_network import LocalNetwork
from ewasm_cli.main import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CommandError

CONFIG_FILE = "node.json"
FUNDS = 10**24
DEFAULT_CHAIN_ID = 1337
DEFAULT_GAS_LIMIT = 10**9


def register(sub) -> None:
    network = sub.add_parser("network", help="set up a local consortium of nodes")
    network_sub = network.add_subparsers(dest="network_command", metavar="SUBCOMMAND")
    p = network_sub.add_parser("init", help="write a spec and one datadir per node")
    p.add_argument("--dir", required=True, type=Path, metavar="DIR",
                   help="where to write the network (must be new or empty)")
    p.add_argument("--validators", type=integer(1, 64), required=True, metavar="N", help="authorities that seal blocks")
    p.add_argument("--regular", type=integer(0, 64), default=0, metavar="M", help="nodes that follow and serve RPC")
    p.add_argument("--engine", choices=["poa", "pbft"], default="poa")
    p.add_argument("--step-duration", type=seconds(3600), default=1.0, metavar="S",
                   help="seconds per PoA step (default 1)")
    p.add_argument("--block-period", type=seconds(3600), default=1.0, metavar="S",
                   help="PBFT: seconds from a block to the next round 0 (default 1)")
    p.add_argument("--request-timeout", type=seconds(3600), default=2.0, metavar="S",
                   help="PBFT: round 0's timer, doubling each round (default 2)")
    p.add_argument("--epoch-length", type=integer(1, 10**9), default=30_000, metavar="N",
                   help="blocks between validator-set changes (default 30000)")
    p.add_argument("--base-port", type=port, default=8545, metavar="P",
                   help="node k serves RPC on P+2k and p2p on P+2k+1 (default 8545)")
    p.add_argument("--chain-id", type=integer(1, 2**64 - 1), default=DEFAULT_CHAIN_ID)
    base_fee_arg(p)
    p.add_argument("--shards", type=integer(1, 256), default=1, metavar="N",
                   help="split the chain into N shards; every node runs every shard (default 1)")
    p.add_argument("--dev-key", metavar="HEX", help="the funded developer key (default: generated)")
    p.add_argument("--admin-key", metavar="HEX", help="the permission contract's admin key (default: generated)")
    p.add_argument("--json", action="store_true", help="print the network as one JSON object")
    p.set_defaults(handler=cmd_network_init)
    network.set_defaults(handler=lambda args: (network.print_help(), EXIT_USAGE)[1])


def base_fee_arg(parser) -> None:
    parser.add_argument("--base-fee", type=integer(0, 10**18), default=DEFAULT_BASE_FEE, metavar="WEI",
                        help=f"the chain's constant base fee per gas (default {DEFAULT_BASE_FEE}, geth's floor; "
                             f"0 for a chain without fees)")


def key_from(text: str | None, flag: str):
    """A key given as hex (with or without 0x), or a new one."""
    from chain.core.keys import PrivateKey
    if text is None:
        return PrivateKey.generate()
    try:
        return PrivateKey.from_hex(text)
    except ValueError as err:
        raise CommandError(f"{flag}: {err}", EXIT_USAGE) from None


def engine_spec(args, validators) -> dict:
    """The spec's engine: Aura or PBFT among `validators`, with the settings of `args`."""
    hexes = ["0x" + v.hex() for v in validators]
    if getattr(args, "engine", "poa") == "pbft":
        return {"pbft": {"validators": hexes, "blockPeriod": getattr(args, "block_period", 1.0),
                         "requestTimeout": getattr(args, "request_timeout", 2.0),
                         "epochLength": getattr(args, "epoch_length", 30_000)}}
    return {"poa": {"validators": hexes, "stepDuration": args.step_duration,
                    "epochLength": getattr(args, "epoch_length", 30_000)}}


def network_spec(engine: dict, nodes, admin, funded, *, chain_id: int, shards: int = 1,
                 base_fee: int = DEFAULT_BASE_FEE) -> dict:
    """The consortium's chain spec: `engine` among its validators (in the spec and the
    validator-set contract), `nodes` on the permission list (contract and spec), `funded`
    accounts holding FUNDS each."""
    from chain.core.system import PERMISSIONS, VALIDATORS, permissions_storage, validators_storage
    from contracts import load_system

    hexes = lambda keys: ["0x" + k.hex() for k in keys]  # noqa: E731
    validators = [bytes.fromhex(v[2:]) for v in next(iter(engine.values()))["validators"]]
    accounts = {"0x" + a.hex(): {"balance": str(FUNDS)} for a in funded}
    for address, code, storage in ((PERMISSIONS, "permissions.wasm", permissions_storage([admin], nodes)),
                                   (VALIDATORS, "validators.wasm", validators_storage(validators))):
        accounts["0x" + address.hex()] = {
            "balance": "0", "nonce": 1, "code": "0x" + load_system(code).hex(),
            "storage": {"0x" + k.hex(): "0x" + v.hex() for k, v in storage.items()}}
    spec = {"name": "ewasm-network",
            "engine": engine,
            "params": {"chainId": chain_id, "gasLimit": DEFAULT_GAS_LIMIT, "baseFeePerGas": base_fee,
                       "costTable": default_cost_table()},
            "genesis": {"timestamp": 0},
            "accounts": accounts,
            "network": {"admins": hexes([admin]), "nodes": hexes(nodes)}}
    if shards > 1:
        from contracts import outbox_accounts
        spec["shards"] = {"count": shards}
        accounts.update(outbox_accounts())
    return spec


def cmd_network_init(args) -> int:
    summary = initialize_network(args)
    if args.json:
        print(json.dumps(summary))
        return EXIT_OK
    nodes = summary["nodes"]
    print(f"a network of {args.validators} validators and {args.regular} regular nodes in {args.dir.resolve()}")
    for k, node in enumerate(nodes):
        role = "validator" if node["validator"] else "regular  "
        p2p = node["p2p"] if isinstance(node["p2p"], str) else ", ".join(node["p2p"]) + " (one per shard)"
        print(f"  node{k}  {role}  {node['address']}  rpc {node['rpc']}  p2p {p2p}")
    print(f"dev key {summary['dev_key']}\nadmin key {summary['admin_key']}")
    print(f"run each node with: ewasm node run --datadir {args.dir.resolve()}/nodeK")
    return EXIT_OK


def initialize_network(args) -> dict:
    """Write the network (see the module notes); returns what --json prints."""
    from chain.core.keys import PrivateKey
    from chain.core.spec import SpecError, parse_spec
    from chain.ledger.blockchain import Blockchain
    from chain.state.store import StoreError

    if args.dir.exists() and any(args.dir.iterdir()):
        raise CommandError(f"{args.dir} is not empty: network init writes a new network", EXIT_REFUSED)
    count = args.validators + args.regular
    shards = getattr(args, "shards", 1)
    last_port = args.base_port + 2 * count - 1 + (count * shards if shards > 1 else 0)
    if last_port > 65535:
        raise CommandError(f"--base-port {args.base_port}: {count} nodes need ports up to {last_port}, above 65535",
                           EXIT_USAGE)
    dev, admin = key_from(args.dev_key, "--dev-key"), key_from(args.admin_key, "--admin-key")
    keys = [PrivateKey.generate() for _ in range(count)]
    ids = [k.address for k in keys]
    funded = [dev.address, admin.address, *ids, *getattr(args, "fund", ())]  # `fund`: extra accounts (benchmarks)
    spec = network_spec(engine_spec(args, ids[:args.validators]), ids, admin.address, funded, chain_id=args.chain_id,
                        shards=shards, base_fee=getattr(args, "base_fee", DEFAULT_BASE_FEE))
    root = args.dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    spec_path = root / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    nodes = []
    parsed = parse_spec(spec)

    def p2p_port(node: int, shard: int | None) -> int:
        if shard is None:
            return args.base_port + 2 * node + 1
        return args.base_port + 2 * count + node * shards + shard

    for k, key in enumerate(keys):
        datadir = root / f"node{k}"
        rpc = args.base_port + 2 * k
        validator = k < args.validators
        places = [(datadir, None)] if shards == 1 else [(datadir / f"shard{s}", s) for s in range(shards)]
        try:
            for place, shard in places:
                Blockchain.initialize(str(place), parsed if shard is None else parsed.for_shard(shard)).close()
        except (SpecError, StoreError) as err:
            raise CommandError(str(err), EXIT_REFUSED) from None
        for place, shard in places:
            config = {"key": key.secret.hex(), "rpc": f"127.0.0.1:{rpc if shard is None else 0}",
                      "p2p": f"127.0.0.1:{p2p_port(k, shard)}",
                      "peers": [f"127.0.0.1:{p2p_port(j, shard)}" for j in range(count) if j != k],
                      "validator": validator}
            _write_config(place, config)
        if shards > 1:
            _write_config(datadir, {"key": key.secret.hex(), "rpc": f"127.0.0.1:{rpc}", "validator": validator,
                                    "shards": shards})
        p2p = [f"127.0.0.1:{p2p_port(k, shard)}" for _, shard in places]
        nodes.append({"datadir": str(datadir), "rpc": f"http://127.0.0.1:{rpc}/",
                      "p2p": p2p[0] if shards == 1 else p2p, "address": "0x" + key.address.hex(),
                      "validator": validator})
    summary = {"spec": str(spec_path), "nodes": nodes, "dev_key": "0x" + dev.secret.hex(),
               "admin_key": "0x" + admin.secret.hex()}
    (root / "network.json").write_text(json.dumps(summary, indent=2))
    os.chmod(root / "network.json", 0o600)  # it holds the dev and admin keys
    return summary


def _write_config(datadir: Path, config: dict) -> None:
    path = datadir / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2))
    os.chmod(path, 0o600)  # it holds the node's key


def load_node_config(datadir: str) -> dict:
    """DATADIR/node.json as `network init` wrote it ({} when there is none)."""
    path = Path(datadir) / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CommandError(f"{path}: not a node config ({err})", EXIT_REFUSED) from None
    if not isinstance(config, dict):
        raise CommandError(f"{path}: not a node config (expected a JSON object)", EXIT_REFUSED)
    return config


def run_local_network(args) -> int:
    """`ewasm devnet --nodes N --engine poa`: `network init` with N validators, each run
    as a child process (`node run`), until SIGINT or SIGTERM."""
    root = Path(args.datadir or tempfile.mkdtemp(prefix="ewasm-devnet-"))
    init = SimpleNamespace(dir=root, validators=args.nodes, regular=0, engine=args.engine,
                           step_duration=args.block_period, block_period=args.block_period,
                           base_port=args.rpc_port, chain_id=args.chain_id, dev_key=args.dev_key, admin_key=None,
                           json=False, shards=args.shards, base_fee=args.base_fee)
    summary = (json.loads((root / "network.json").read_text()) if (root / "network.json").is_file()
               else initialize_network(init))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    network = LocalNetwork(root, args.nodes)
    try:
        urls = network.start()
        timing = "steps" if args.engine == "poa" else "a block period"
        print(f"devnet of {args.nodes} {args.engine.upper()} validators in {root} (chain id {args.chain_id}, "
              f"{timing} of {args.block_period:g} s)", flush=True)
        for k, url in enumerate(urls):
            print(f"node{k}  JSON-RPC on {url}  (log {network.log(k)})", flush=True)
        print(f"dev key   {summary['dev_key']}  (funded)\nadmin key {summary['admin_key']}  (the permission "
              f"contract's admin)", flush=True)
        while not stop.wait(0.5):
            network.check()
    finally:
        network.stop()
    return EXIT_OK
