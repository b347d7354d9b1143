"""`ewasm node init|run`, `ewasm devnet` and `ewasm demo-chain`: running a chain node."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import tempfile
import threading

from ewasm_cli.arguments import integer, port, seconds
from ewasm_cli.main import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CommandError
from ewasm_cli.network_commands import base_fee_arg

MAX_CHAIN_ID = 2**64 - 1


def register(sub) -> None:
    """Add the node's subcommands."""
    node = sub.add_parser("node", help="initialise or run a chain node")
    node_sub = node.add_subparsers(dest="node_command", metavar="SUBCOMMAND")

    p = node_sub.add_parser("init", help="create a node database with the genesis of a chain spec")
    p.add_argument("--spec", required=True, metavar="FILE", help="chain spec JSON")
    p.add_argument("--datadir", required=True, metavar="DIR", help="where the node keeps its lmdb database")
    p.add_argument("--shard", type=integer(0, 255), metavar="K",
                   help="of a sharded spec, the one shard this datadir holds (default: every shard, in DIR/shardK)")
    p.add_argument("--json", action="store_true", help="print the genesis block as JSON")
    p.set_defaults(handler=cmd_node_init)

    p = node_sub.add_parser("run", help="serve JSON-RPC and produce blocks",
                            description="Run a node. A datadir made by `ewasm network init` holds node.json (key, "
                                        "RPC and p2p addresses, peers); flags override it.")
    p.add_argument("--datadir", required=True, metavar="DIR")
    _run_args(p, defaults=False)
    _p2p_args(p.add_argument_group("network (a node joins one when --p2p-port is given)"))
    p.add_argument("--test-fault", type=_test_fault, action="append", default=[], help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_node_run)
    node.set_defaults(handler=lambda args: (node.print_help(), EXIT_USAGE)[1])

    p = sub.add_parser("devnet", help="start a development chain funding a dev key: one node, or a local network")
    p.add_argument("--datadir", metavar="DIR", help="database directory (default: a fresh temporary one)")
    p.add_argument("--nodes", type=integer(1, 16), default=1, metavar="N",
                   help="with N > 1 (and --engine poa): N validators as child processes, RPC on ports from "
                        "--rpc-port up (default 1)")
    p.add_argument("--dev-key", metavar="HEX", help="private key to fund (default: a generated one, printed)")
    p.add_argument("--chain-id", type=integer(1, MAX_CHAIN_ID), default=1337)
    p.add_argument("--engine", choices=["instant", "poa", "pbft"], default="instant")
    p.add_argument("--block-period", type=seconds(3600), default=1.0, metavar="S",
                   help="seconds between PoA blocks, or PBFT's block period (above 0, at most 3600; default 1)")
    p.add_argument("--shards", type=integer(1, 256), default=1, metavar="N",
                   help="split the chain into N shards, each in a process of its own, served at /shard/K")
    base_fee_arg(p)
    _run_args(p, key=False)
    p.set_defaults(handler=cmd_devnet)



def _p2p_args(group) -> None:
    group.add_argument("--p2p-port", type=port, metavar="P", help="listen for peers on this port (0: any free one)")
    group.add_argument("--p2p-host", metavar="HOST", help="default 127.0.0.1")
    group.add_argument("--peer", type=_address, action="append", default=[], metavar="HOST:PORT",
                       help="a peer to dial and keep dialing (repeat for each)")


def _address(text: str) -> tuple[str, int]:
    """--peer: HOST:PORT."""
    host, sep, number = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, port(number)


def _network(args, config: dict):
    """The network settings: flags, else node.json, else none (a single node)."""
    from chain.node.config import NetworkConfig
    host, number = _config_address(config, "p2p") if "p2p" in config else ("127.0.0.1", None)
    number = args.p2p_port if args.p2p_port is not None else number
    peers = tuple(args.peer) or tuple(_config_address({"peer": peer}, "peer") for peer in config.get("peers", []))
    if number is None:
        if peers:
            raise CommandError("--peer needs --p2p-port: a node dials peers only when it is on the network")
        return None
    return NetworkConfig(host=args.p2p_host or host, port=number, peers=peers)


def _config_address(config: dict, field: str) -> tuple[str, int]:
    try:
        return _address(str(config[field]))
    except argparse.ArgumentTypeError as err:
        raise CommandError(f"node.json {field}: {err}", EXIT_REFUSED) from None


def _run_args(p, key: bool = True, defaults: bool = True) -> None:
    """The flags of every command that runs a node; without `defaults`, an absent flag is
    None, so that node.json (or the built-in default) applies."""
    p.add_argument("--rpc-port", type=port, default=8545 if defaults else None, metavar="P",
                   help="default 8545")
    p.add_argument("--rpc-host", default="127.0.0.1" if defaults else None, metavar="HOST",
                   help="default 127.0.0.1")
    if key:
        p.add_argument("--key", metavar="HEX",
                       help="the node key: its node id on a network, and the authority's key on a PoA authority")
    p.add_argument("--workers", type=_workers, default=1, metavar="N|auto",
                   help="execute blocks on N workers, this process and N-1 helpers (default 1: serial; "
                        "auto: one per core)")
    p.add_argument("--worker-mode", choices=["process", "thread"], default="process")
    p.add_argument("--quiet", action="store_true", help="do not log each block")
    _pool_args(p.add_argument_group("transaction pool (defaults: the chain spec's \"txpool\", else geth's)"))
    _rpc_args(p.add_argument_group("JSON-RPC limits"))


# flag -> (PoolLimits field, type, help)
_POOL_FLAGS = {
    "--txpool-max-transactions": ("max_transactions", integer(1), "transactions held, pending and queued "
                                                                 "(default 100000)"),
    "--txpool-max-bytes": ("max_bytes", integer(1), "raw transaction bytes held (default 134217728)"),
    "--txpool-max-queued-per-sender": ("max_queued_per_sender", integer(1),
                                       "future-nonce transactions per sender (default 64)"),
    "--txpool-max-queued": ("max_queued", integer(1), "future-nonce transactions in all (default 1024)"),
    "--txpool-lifetime": ("queued_lifetime", seconds(), "seconds a queued transaction may wait (default 10800)"),
    "--txpool-min-tip": ("min_tip", integer(0), "smallest tip per gas admitted, in wei (default 0)"),
    "--txpool-price-bump": ("price_bump", integer(0, 1000), "percent a replacement must add (default 10)"),
}


def _pool_args(group) -> None:
    for flag, (_, kind, text) in _POOL_FLAGS.items():
        group.add_argument(flag, type=kind, metavar="N", help=text)


def _rpc_args(group) -> None:
    group.add_argument("--rpc-workers", type=integer(1, 64), metavar="N",
                       help="threads for eth_call and eth_estimateGas (default 2)")
    group.add_argument("--rpc-timeout", type=seconds(3600), metavar="S",
                       help="seconds an execution, log or block request may take (default 5)")
    group.add_argument("--rpc-batch-gas", type=integer(1), metavar="GAS",
                       help="gas the calls of one request or batch may execute together (default 300000000)")
    group.add_argument("--rpc-max-batch", type=integer(1, 100_000), metavar="N",
                       help="requests in one batch (default 1000)")
    group.add_argument("--rpc-max-requests", type=integer(1, 100_000), metavar="N",
                       help="HTTP requests in progress at once (default 256)")


def _pool_overrides(args) -> dict:
    """The pool flags given on the command line, as PoolLimits fields."""
    given = {field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _, _) in _POOL_FLAGS.items()}
    return {field: value for field, value in given.items() if value is not None}


def _rpc_limits(args):
    """RpcLimits from the RPC flags, defaults for the rest."""
    from dataclasses import replace

    from chain.rpc.methods import EXECUTION
    from chain.rpc.server import RpcLimits

    limits = RpcLimits()
    given = {name: value for name, value in (("batch_gas", args.rpc_batch_gas), ("max_batch", args.rpc_max_batch),
                                             ("max_requests", args.rpc_max_requests)) if value is not None}
    lanes = dict(limits.lanes)
    if args.rpc_timeout is not None:
        lanes = {name: replace(lane, timeout=args.rpc_timeout) for name, lane in lanes.items()}
        given["batch_timeout"] = max(limits.batch_timeout, args.rpc_timeout)
    if args.rpc_workers is not None:
        lanes[EXECUTION] = replace(lanes[EXECUTION], workers=args.rpc_workers)
    return replace(limits, lanes=lanes, **given)


def _workers(text: str) -> int:
    """--workers: a count of at least 1, or `auto` for one per core."""
    if text == "auto":  # the cores this process may run on (affinity), not all the machine has
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', not {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return count


def _key(text: str | None):
    from chain.core.keys import PrivateKey
    if text is None:
        return None
    try:
        return PrivateKey.from_hex(text)
    except ValueError as err:
        raise CommandError(f"--key: {err}", EXIT_USAGE) from None


def cmd_node_init(args) -> int:
    from chain.core.spec import SpecError, load_spec
    from chain.ledger.blockchain import Blockchain
    from chain.state.store import StoreError
    try:
        spec = load_spec(args.spec)
        everyone = spec.shards.count > 1 and args.shard is None
        shards = range(spec.shards.count) if everyone else [args.shard or 0]
        infos = []
        for k in shards:
            datadir = os.path.join(args.datadir, f"shard{k}") if everyone else args.datadir
            shard = spec.for_shard(k)
            chain = Blockchain.initialize(datadir, shard)
            head = chain.head()
            chain.close()
            infos.append({"chain": spec.name, "chainId": shard.params.chain_id, "shard": k,
                          "genesis": "0x" + head.hash.hex(), "stateRoot": "0x" + head.state_root.hex(),
                          "datadir": os.path.abspath(datadir)})
    except (SpecError, StoreError) as err:
        raise CommandError(str(err), EXIT_REFUSED if isinstance(err, StoreError) else EXIT_USAGE) from None
    if args.json:
        print(json.dumps(infos if everyone else infos[0], indent=2))
        return EXIT_OK
    for info in infos:
        note = f" shard {info['shard']} of {spec.shards.count}" if spec.shards.count > 1 else ""
        print(f"initialised {spec.name}{note} (chain id {info['chainId']}) in {info['datadir']}\n"
              f"genesis {info['genesis']}")
    if everyone:
        print(f"run every shard with: ewasm node run --datadir {os.path.abspath(args.datadir)}")
    return EXIT_OK


def _serve(config, quiet: bool, banner: str = "") -> int:
    from chain.consensus.engine import ConsensusError
    from chain.execution.helpers import HelperFailed
    from chain.node.node import Node, StartError
    from chain.state.store import StoreError
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(message)s")
    try:
        node = Node(config)
        node.start()
    except (StoreError, ValueError, ConsensusError) as err:
        raise CommandError(str(err), EXIT_REFUSED) from None
    except HelperFailed as err:
        node.chain.close()  # stops the helpers that did start
        raise CommandError(f"cannot start the parallel executor: {err}", EXIT_REFUSED) from None
    except StartError as err:
        node.chain.close()
        raise CommandError(str(err), EXIT_REFUSED) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if banner:
        print(banner, flush=True)
    print(f"JSON-RPC on http://{config.rpc_host}:{node.rpc.port}/  (chain id {node.chain.params.chain_id}, "
          f"head {node.chain.head().number}, engine {node.engine.name}{_execution(config)})", flush=True)
    if node.network is not None:
        print(f"p2p on {config.network.host}:{node.network.transport.port}  (node id 0x{config.key.address.hex()}, "
              f"{len(config.network.peers)} peers to dial)", flush=True)
    stop.wait()
    node.stop()
    return EXIT_OK


def _execution(config) -> str:
    """The banner's note on block execution: serial unless --workers asks for more."""
    if config.workers <= 1:
        return ""
    kind = "helper processes" if config.worker_mode == "process" else "helper threads"
    return f", parallel execution on {config.workers} workers: this process and {config.workers - 1} {kind}"


CRASH_POINTS = ("proposal", "prepare", "commit", "round-change")


def _test_fault(text: str) -> str:
    """A test-only fault: "equivocate", "lossy:SEED" (consensus messages lost and
    delayed), or "crash-after:KIND" (SIGKILL right after sending the first such vote)."""
    if text == "equivocate" or (text.startswith("lossy:") and text[6:].isdigit()):
        return text
    if text.startswith("crash-after:") and text[12:] in CRASH_POINTS:
        return text
    raise argparse.ArgumentTypeError(f"expected equivocate, lossy:SEED or crash-after:{{{','.join(CRASH_POINTS)}}}")


def cmd_node_run(args) -> int:
    from chain.node.config import NodeConfig
    from ewasm_cli.network_commands import load_node_config
    from ewasm_cli.shard_node import run_sharded, shard_dirs
    dirs = shard_dirs(args.datadir)
    saved = load_node_config(args.datadir)
    rpc_host, rpc_port = _config_address(saved, "rpc") if "rpc" in saved else ("127.0.0.1", 8545)
    if dirs:
        if args.p2p_port is not None or args.peer:
            raise CommandError("a sharded node's shards take their p2p addresses and peers from DIR/shardK/node.json "
                               "(`network init --shards N` writes them), not from flags", EXIT_USAGE)
        return run_sharded(dirs, args.rpc_host or rpc_host, rpc_port if args.rpc_port is None else args.rpc_port,
                           _child_args(args), _rpc_limits(args).max_body)
    config = NodeConfig(datadir=args.datadir, rpc_host=args.rpc_host or rpc_host,
                        rpc_port=args.rpc_port if args.rpc_port is not None else rpc_port,
                        key=_key(args.key or saved.get("key")), network=_network(args, saved), workers=args.workers,
                        worker_mode=args.worker_mode, pool=_pool_overrides(args), rpc=_rpc_limits(args),
                        faults=tuple(args.test_fault))
    return _serve(config, args.quiet)


def _devnet_shards(args, spec, datadir: str, key, banner: str) -> int:
    """`devnet --shards N`: a datadir per shard, each shard's node in a process of its own."""
    from chain.core.spec import SpecError
    from chain.ledger.blockchain import Blockchain
    from chain.state.store import StoreError
    from ewasm_cli.shard_node import run_sharded, shard_dirs
    try:
        for k in range(spec.shards.count):
            Blockchain.initialize(os.path.join(datadir, f"shard{k}"), spec.for_shard(k)).close()
    except (SpecError, StoreError) as err:
        raise CommandError(str(err), EXIT_REFUSED) from None
    print(banner, flush=True)
    child = ["--key", key.secret.hex(), *_child_args(args)]
    return run_sharded(shard_dirs(datadir), args.rpc_host, args.rpc_port, child, _rpc_limits(args).max_body)


def _child_args(args) -> list[str]:
    """The flags of `node run` (or `devnet`, which has no --key or test faults) that each
    shard's own process takes as they were given."""
    key = getattr(args, "key", None)
    out = ["--key", key] if key else []
    out += ["--workers", str(args.workers), "--worker-mode", args.worker_mode] + (["--quiet"] if args.quiet else [])
    for flag in [*_POOL_FLAGS, "--rpc-workers", "--rpc-timeout", "--rpc-batch-gas", "--rpc-max-batch",
                 "--rpc-max-requests"]:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            out += [flag, str(value)]
    for fault in getattr(args, "test_fault", ()):
        out += ["--test-fault", fault]
    return out


def cmd_devnet(args) -> int:
    if args.nodes > 1 or args.engine == "pbft":
        from ewasm_cli.network_commands import run_local_network
        if args.engine == "instant":
            raise CommandError(f"--nodes {args.nodes}: the instant engine runs one node; use --engine poa or pbft",
                               EXIT_USAGE)
        return run_local_network(args)
    from chain.core.keys import PrivateKey, to_checksum_address
    from chain.core.spec import SpecError, dev_spec, parse_spec
    from chain.ledger.blockchain import Blockchain
    from chain.node.config import NodeConfig
    from chain.state.store import StoreError
    key = _key(args.dev_key) if args.dev_key else PrivateKey.generate()
    datadir = args.datadir or tempfile.mkdtemp(prefix="ewasm-devnet-")
    raw = {**dev_spec(key.address, chain_id=args.chain_id, engine=args.engine, block_period=args.block_period,
                      base_fee=args.base_fee),
           "shards": {"count": args.shards}}
    if args.shards > 1:
        from contracts import outbox_accounts
        raw["accounts"].update(outbox_accounts())
    spec = parse_spec(raw)
    banner = (f"devnet in {datadir}\ndev account {to_checksum_address(key.address)}"
              + (f" (funded on shard {spec.shards.shard_of(key.address)} of {args.shards})" if args.shards > 1 else "")
              + ("" if args.dev_key else f"\ndev key     0x{key.secret.hex()}  (generated; pass --dev-key to reuse)"))
    if args.shards > 1:
        return _devnet_shards(args, spec, datadir, key, banner)
    config = NodeConfig(datadir=datadir, rpc_host=args.rpc_host, rpc_port=args.rpc_port, key=key,
                        workers=args.workers, worker_mode=args.worker_mode, pool=_pool_overrides(args),
                        rpc=_rpc_limits(args))
    try:
        Blockchain.initialize(datadir, spec).close()
        return _serve(config, args.quiet, banner)
    except (SpecError, StoreError) as err:
        failure = CommandError(str(err), EXIT_REFUSED)
    except CommandError as err:
        failure = err
    if not args.datadir:  # a devnet that never ran leaves no directory behind
        shutil.rmtree(datadir, ignore_errors=True)
    raise failure
