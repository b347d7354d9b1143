"""`ewasm deploy` and `ewasm call`: a contract onto a running node, and one call of it.

deploy, in steps: build the source if it is one (contracts/build.py: C, WAT), wrap a
runtime module in the deployer (a NAME.deploy.wasm is deployed as it is), refuse what
the chain's transpiler would refuse, sign an EIP-1559 creation with eth-account at the
latest block's base fee, send it, wait for its receipt, and report the address, the
gas used and the size of the metered code the chain stored.

call: one eth_call of a function given by its signature, its arguments ABI-encoded by
eth-abi, and its result decoded by the types the signature (or the contract's ABI file)
says it returns.

Every failure is one line: the node cannot be reached, the module is refused (with its
violations), the deployment fails (out of gas, a revert), the call reverts.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from ewasm_cli.main import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CommandError

RECEIPT_TIMEOUT = 60.0  # seconds to wait for the deployment's receipt
SOURCES = (".c", ".wat", ".ts")


def register(sub) -> None:
    p = sub.add_parser("deploy", help="build (if needed) and deploy a contract to a node over JSON-RPC")
    p.add_argument("file", type=Path, metavar="FILE",
                   help="a contract: NAME.c or NAME.wat (built first), NAME.wasm (wrapped in the deployer) "
                        "or NAME.deploy.wasm (sent as it is)")
    p.add_argument("--rpc", default="http://127.0.0.1:8545/", metavar="URL", help="the node (default: local 8545)")
    p.add_argument("--key", required=True, metavar="HEX", help="the deploying account's private key")
    p.add_argument("--gas", type=int, metavar="N", help="gas limit (default: the node's estimate, plus a margin)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=cmd_deploy)

    p = sub.add_parser("call", help="call a contract's function once (eth_call) and decode the result")
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("signature", metavar="SIGNATURE",
                   help="e.g. 'balanceOf(address)' or 'balanceOf(address) returns (uint256)'")
    p.add_argument("args", nargs="*", metavar="ARG")
    p.add_argument("--rpc", default="http://127.0.0.1:8545/", metavar="URL")
    p.add_argument("--abi", type=Path, metavar="FILE", help="the contract's ABI JSON, for the result's types")
    p.add_argument("--from", dest="sender", metavar="ADDRESS", help="the caller (default: the zero address)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_call)


# -- JSON-RPC ---------------------------------------------------------------------------
class Node:
    """A node's JSON-RPC endpoint; each failure a CommandError of one line."""

    def __init__(self, url: str):
        self.url = url

    def __call__(self, method: str, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise CommandError(f"cannot reach the node at {self.url}: {reason}", EXIT_USAGE) from None
        if "error" in answer:
            raise RpcFailure(method, answer["error"])
        return answer["result"]


class RpcFailure(CommandError):
    def __init__(self, method: str, error: dict):
        super().__init__(f"{method}: {error.get('message', error)}", EXIT_REFUSED)
        self.error = error


# -- deploy -----------------------------------------------------------------------------
def init_code(path: Path) -> tuple[bytes, bytes | None]:
    """(the init code to send, the runtime module it deploys, when known)."""
    from contracts.build import BuildError, build
    from contracts.deployer import deployer_wrapper

    if path.suffix in SOURCES:
        try:
            built = build(path, deployer=True)
        except BuildError as err:
            raise CommandError(f"{path}: {str(err).strip().splitlines()[0]}", EXIT_USAGE) from None
        return built.deployer, built.runtime
    try:
        wasm = path.read_bytes()
    except OSError as err:
        raise CommandError(f"{path}: {err.strerror or err}", EXIT_USAGE) from None
    if path.name.endswith(".deploy.wasm"):
        return wasm, None
    return deployer_wrapper(wasm), wasm


def refuse_unless_valid(path: Path, wasm: bytes) -> None:
    """The chain's transpiler's verdict on a module, before anything is sent."""
    import metering

    try:
        violations = metering.check(wasm, "ewasm")
    except (metering.MalformedModule, metering.InvalidModule) as err:
        raise CommandError(f"{path}: {err}", EXIT_USAGE) from None
    if violations:
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise CommandError(f"{path}: the chain would refuse this module: {violations[0]}{more}", EXIT_REFUSED)


def cmd_deploy(args) -> int:
    from eth_account import Account

    code, runtime = init_code(args.file)
    for module in (code, runtime) if runtime is not None else (code,):
        refuse_unless_valid(args.file, module)
    try:
        account = Account.from_key(args.key)
    except (ValueError, TypeError) as err:
        raise CommandError(f"--key: not a private key ({err})", EXIT_USAGE) from None
    node = Node(args.rpc)
    chain_id = int(node("eth_chainId"), 16)
    base_fee = int(node("eth_getBlockByNumber", "latest", False).get("baseFeePerGas", "0x0"), 16)
    tip = int(node("eth_maxPriorityFeePerGas"), 16)
    nonce = int(node("eth_getTransactionCount", account.address, "pending"), 16)
    gas = args.gas or _estimate(node, account.address, code)
    signed = account.sign_transaction({"type": 2, "chainId": chain_id, "nonce": nonce, "gas": gas, "value": 0,
                                       "maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip,
                                       "data": code, "accessList": []})
    tx_hash = node("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
    receipt = _wait_for_receipt(node, tx_hash)
    if int(receipt["status"], 16) != 1:
        why = (node("ewasm_getTransactionResult", tx_hash) or {}).get("error") or "failed"
        raise CommandError(f"{args.file}: the deployment failed: {why} (gas used {int(receipt['gasUsed'], 16)} "
                           f"of {gas}; transaction {tx_hash})", EXIT_REFUSED)
    address = receipt["contractAddress"]
    stored = (len(node("eth_getCode", address, "latest")) - 2) // 2
    result = {"address": address, "transactionHash": tx_hash, "blockNumber": int(receipt["blockNumber"], 16),
              "gasUsed": int(receipt["gasUsed"], 16), "initCodeBytes": len(code), "meteredCodeBytes": stored}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"deployed {args.file} at {address}\n  gas used {result['gasUsed']}, metered code {stored} bytes, "
              f"block {result['blockNumber']}, transaction {tx_hash}")
    return EXIT_OK


def _estimate(node: Node, sender: str, code: bytes) -> int:
    """The node's estimate with a fifth more: state may change before the block."""
    try:
        estimate = int(node("eth_estimateGas", {"from": sender, "data": "0x" + code.hex()}), 16)
    except RpcFailure as err:
        raise CommandError(f"the deployment would fail: {err.error.get('message', err.error)}", EXIT_REFUSED) from None
    return estimate + estimate // 5


def _wait_for_receipt(node: Node, tx_hash: str) -> dict:
    deadline = time.monotonic() + RECEIPT_TIMEOUT
    while time.monotonic() < deadline:
        receipt = node("eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return receipt
        time.sleep(0.1)
    raise CommandError(f"transaction {tx_hash}: no receipt after {RECEIPT_TIMEOUT:g} s", EXIT_REFUSED)


# -- call -------------------------------------------------------------------------------
def cmd_call(args) -> int:
    from eth_abi import decode

    from ewasm_cli.vm_commands import encode_abi_call

    signature, _, returns = args.signature.partition("returns")
    signature = signature.strip()
    output_types = _types(returns) if returns else _abi_outputs(args.abi, signature)
    data = encode_abi_call(signature, args.args)
    node = Node(args.rpc)
    call = {"to": args.address, "data": "0x" + data.hex(), **({"from": args.sender} if args.sender else {})}
    try:
        output = bytes.fromhex(node("eth_call", call, "latest")[2:])
    except RpcFailure as err:
        detail = f" (revert data {err.error['data']})" if err.error.get("data") not in (None, "0x") else ""
        raise CommandError(f"{signature}: {err.error.get('message')}{detail}", EXIT_REFUSED) from None
    if output_types is None:
        values = ["0x" + output.hex()]
    else:
        try:
            values = [_plain(v) for v in decode(output_types, output)]
        except Exception as err:  # eth-abi's decoding errors
            raise CommandError(f"{signature}: the result 0x{output.hex()} is not {output_types}: {err}",
                               EXIT_REFUSED) from None
    if args.json:
        print(json.dumps({"result": values, "types": output_types, "raw": "0x" + output.hex()}))
    else:
        print("\n".join(str(v) for v in values))
    return EXIT_OK


def _types(text: str) -> list[str]:
    inner = text.strip().removeprefix("(").removesuffix(")")
    return [t.strip().split()[0] for t in inner.split(",") if t.strip()]


def _abi_outputs(path: Path | None, signature: str) -> list[str] | None:
    """The output types of `signature` in the ABI file, or None (print the raw bytes)."""
    if path is None:
        return None
    try:
        abi = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CommandError(f"--abi {path}: {err}", EXIT_USAGE) from None
    name, _, params = signature.replace(" ", "").partition("(")
    wanted = [t for t in params.removesuffix(")").split(",") if t]
    for item in abi:
        if item.get("type") == "function" and item.get("name") == name and \
                [p["type"] for p in item.get("inputs", [])] == wanted:
            return [p["type"] for p in item.get("outputs", [])]
    raise CommandError(f"--abi {path}: no function {signature}", EXIT_USAGE)


def _plain(value):
    """A decoded value as JSON can hold it."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
