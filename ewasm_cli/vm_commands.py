"""`ewasm run` (one call against a local state) and `ewasm statetest` (GeneralStateTests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ewasm_cli.main import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CommandError

DEFAULT_CONTRACT = bytes.fromhex("00000000000000000000000000000000000c0de1")
DEFAULT_SENDER = bytes.fromhex("5e4de70000000000000000000000000000000001")


def register(sub) -> None:
    run = sub.add_parser("run", help="execute one call of a contract against a local state",
                         description="Execute one call of FILE.wasm (or .wat) and print status, gas, output and logs.")
    run.add_argument("file", help="contract module (.wasm or .wat)")
    data = run.add_mutually_exclusive_group()
    data.add_argument("--calldata", default="", help="call data as hex")
    data.add_argument("--abi", nargs="+", metavar=("SIGNATURE", "ARG"),
                      help="Ethereum ABI signature and its arguments, e.g. --abi 'transfer(address,uint256)' 0xaa.. 5")
    run.add_argument("--gas", type=int, default=10_000_000, help="gas limit (default 10000000)")
    run.add_argument("--value", type=int, default=0, help="value to send")
    run.add_argument("--state", metavar="FILE", help="JSON state file to run against; updated after the call")
    run.add_argument("--address", default=DEFAULT_CONTRACT.hex(), help="address to put the contract at")
    run.add_argument("--sender", default=DEFAULT_SENDER.hex(), help="sender address (funded if needed)")
    run.add_argument("--no-metering", action="store_true", help="run the code verbatim (conformance mode)")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.set_defaults(handler=cmd_run)

    st = sub.add_parser("statetest", help="run Ethereum GeneralStateTests whose contracts are wasm",
                        description="Run state tests and print one JSON object: test name -> post state.")
    st.add_argument("files", nargs="+", metavar="FILE.json")
    st.add_argument("--no-metering", action="store_true",
                    help="run pre-state code verbatim and store created code verbatim")
    st.set_defaults(handler=cmd_statetest)


def _address(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise CommandError(f"{what} is not hex: {text}") from None
    if len(raw) != 20:
        raise CommandError(f"{what} must be 20 bytes, got {len(raw)}")
    return raw


def _read_code(path: str) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise CommandError(f"cannot read {path}: {err.strerror}") from None
    if raw[:4] == b"\0asm":
        return raw
    import wasmtime

    try:
        return bytes(wasmtime.wat2wasm(raw.decode("utf-8")))
    except (UnicodeDecodeError, wasmtime.WasmtimeError) as err:
        raise CommandError(f"{path} is neither a wasm binary nor valid WAT: {str(err).splitlines()[0]}") from None


def _abi_value(typ: str, text: str):
    if typ.startswith(("uint", "int")):
        return int(text, 0)
    if typ == "address":
        return "0x" + _address(text, "address argument").hex()
    if typ == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"not a bool: {text}")
        return text.lower() in ("true", "1")
    if typ.startswith("bytes"):
        return bytes.fromhex(text.removeprefix("0x"))
    return text


def encode_abi_call(signature: str, args: list[str]) -> bytes:
    """Selector plus ABI-encoded arguments for a flat signature like 'f(address,uint256)'."""
    from eth_abi import encode

    from ewasm_runtime import keccak256

    sig = signature.replace(" ", "")
    if "(" not in sig or not sig.endswith(")"):
        raise CommandError(f"--abi wants a signature like 'transfer(address,uint256)', got {signature!r}")
    types = [t for t in sig[sig.index("(") + 1:-1].split(",") if t]
    if len(types) != len(args):
        raise CommandError(f"{sig} takes {len(types)} arguments, {len(args)} given")
    try:
        values = [_abi_value(t, a) for t, a in zip(types, args)]
        return keccak256(sig.encode())[:4] + encode(types, values)
    except CommandError:
        raise
    except Exception as err:  # eth-abi raises a zoo of encoding errors
        raise CommandError(f"cannot encode {sig} with {args}: {err}") from None


def cmd_run(args) -> int:
    from ewasm_runtime import InvalidCode, InvalidTransaction, JsonFileState, MemoryState, Message, Runtime, execute

    code = _read_code(args.file)
    if args.abi:
        data = encode_abi_call(args.abi[0], args.abi[1:])
    else:
        try:
            data = bytes.fromhex(args.calldata.removeprefix("0x"))
        except ValueError:
            raise CommandError("--calldata is not hex") from None
    runtime = Runtime(metering=not args.no_metering)
    try:
        state = JsonFileState(args.state) if args.state else MemoryState()
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot load state {args.state}: {err}") from None
    contract = _address(args.address, "--address")
    sender = _address(args.sender, "--sender")
    if runtime.metering:
        try:
            code = runtime.meter(code)
        except InvalidCode as err:
            raise CommandError(f"{args.file} cannot be metered: {err}", EXIT_REFUSED) from None
    state.set_code(contract, code)
    if state.get_balance(sender) < args.value:
        state.set_balance(sender, args.value)
    try:
        result = execute(Message(sender, contract, data, value=args.value, gas=args.gas), state, runtime=runtime)
    except (InvalidTransaction, ValueError) as err:
        raise CommandError(str(err), EXIT_REFUSED) from None
    if args.state:
        state.save()
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        print(f"status  {result.status}" + (f" ({result.error})" if result.error else ""))
        print(f"gas     {result.gas_used} used, {result.gas_refund} refunded")
        print(f"output  0x{result.output.hex()}")
        for log in result.logs:
            topics = " ".join("0x" + t.hex() for t in log.topics)
            print(f"log     0x{log.address.hex()} [{topics}] 0x{log.data.hex()}")
    return EXIT_OK if result.success else EXIT_REFUSED


def cmd_statetest(args) -> int:
    from ewasm_runtime import Runtime
    from ewasm_runtime.gas import EIP170_MAX_CODE_SIZE
    from ewasm_runtime.statetest import StateTestError, run_files

    try:
        out = run_files(args.files, Runtime(metering=not args.no_metering, max_code_size=EIP170_MAX_CODE_SIZE))
    except StateTestError as err:
        raise CommandError(str(err), EXIT_USAGE) from None
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()
    return EXIT_OK
