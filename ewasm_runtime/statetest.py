"""Ethereum GeneralStateTests whose contracts are wasm: load, run, report post states.

A test file maps test names to {env, pre, transaction, post}. The transaction lists
data, gasLimit and value arrays; each post entry's `indexes` picks one of each. The
sender is derived from `secretKey`. A transaction that is not valid (wrong nonce, too
little gas for the intrinsic cost, unaffordable) leaves the pre state untouched, as in
Ethereum's own test runners.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ewasm_runtime.hashing import keccak256
from ewasm_runtime.message import Environment, InvalidTransaction, Message
from ewasm_runtime.runtime import Runtime, execute
from ewasm_runtime.state import MemoryState, parse_address, parse_hex, parse_int


class StateTestError(ValueError):
    """A state-test file that does not follow the format."""


@dataclass(frozen=True)
class Case:
    name: str
    data: int
    gas: int
    value: int


def sender_of(secret_key: bytes) -> bytes:
    from coincurve import PrivateKey

    return keccak256(PrivateKey(secret_key).public_key.format(compressed=False)[1:])[12:]


def load(path: str | Path) -> dict:
    try:
        tests = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise StateTestError(f"{path}: {err}") from None
    if not isinstance(tests, dict):
        raise StateTestError(f"{path}: a state-test file is a JSON object of tests")
    return tests


def cases(name: str, test: dict) -> list[Case]:
    """One case per distinct (data, gas, value) index triple named by the post section."""
    seen: list[tuple[int, int, int]] = []
    for entries in (test.get("post") or {}).values():
        for entry in entries:
            ix = entry.get("indexes", {})
            triple = (int(ix.get("data", 0)), int(ix.get("gas", 0)), int(ix.get("value", 0)))
            if triple not in seen:
                seen.append(triple)
    if not seen:
        seen = [(0, 0, 0)]
    if len(seen) == 1:
        return [Case(name, *seen[0])]
    return [Case(f"{name}[d{d},g{g},v{v}]", d, g, v) for d, g, v in seen]


def state_test_block_hashes(number: int) -> dict[int, bytes]:
    """The hashes a state test's block sees, by the ethereum/tests convention (testeth's
    lastHashes): block n's hash is keccak256 of n in decimal, for the 256 blocks before
    the current one."""
    return {n: keccak256(str(n).encode()) for n in range(max(0, number - 256), number)}


def run_case(test: dict, case: Case, runtime: Runtime) -> dict:
    """The post state of one case, in `MemoryState.to_json` form."""
    try:
        env_json, tx = test["env"], test["transaction"]
        state = MemoryState.from_json(test["pre"])
        number = parse_int(env_json.get("currentNumber", 0))
        hashes = state_test_block_hashes(number)
        env = Environment(
            coinbase=parse_address(env_json.get("currentCoinbase", "0x" + "00" * 20)),
            number=number,
            timestamp=parse_int(env_json.get("currentTimestamp", 0)),
            gas_limit=parse_int(env_json.get("currentGasLimit", 10_000_000)),
            difficulty=parse_int(env_json.get("currentDifficulty", 0)),
            block_hashes=hashes,
        )
        sender = sender_of(parse_hex(tx["secretKey"]))
        to = parse_hex(tx.get("to") or "")
        message = Message(
            sender=sender,
            to=to.rjust(20, b"\0") if to else None,
            data=parse_hex(tx["data"][case.data]),
            value=parse_int(tx["value"][case.value]),
            gas=parse_int(tx["gasLimit"][case.gas]),
            gas_price=parse_int(tx.get("gasPrice", 0)),
        )
        nonce = parse_int(tx.get("nonce", 0))
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise StateTestError(f"{case.name}: malformed test: {type(err).__name__}: {err}") from None
    if runtime.metering:
        _meter_pre_state(state, runtime)
    if nonce == state.get_nonce(sender):
        try:
            execute(message, state, env, runtime)
        except InvalidTransaction:
            pass
    return state.to_json()


def _meter_pre_state(state: MemoryState, runtime: Runtime) -> None:
    """With metering on, pre-state code is deployed code: meter it as the chain would."""
    from ewasm_runtime.cache import InvalidCode

    for account in state.accounts.values():
        if account.code:
            try:
                account.code = runtime.meter(account.code)
            except InvalidCode:
                pass  # left as it is: calling it fails with INVALID_CODE


def run_files(paths, runtime: Runtime) -> dict:
    """name -> post state for every case of every file, in file order."""
    out: dict = {}
    for path in paths:
        for name, test in load(path).items():
            if not isinstance(test, dict):
                raise StateTestError(f"{path}: test {name!r} is not an object")
            for case in cases(name, test):
                out[case.name] = run_case(test, case, runtime)
    return out
