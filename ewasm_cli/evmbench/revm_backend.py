"""revm through pyrevm.

pyrevm never finalizes its journal: all message_calls of one `EVM` object run
as if inside one long transaction, so a slot touched by one call stays warm (and
a written slot stays "dirty") for every later call, and the gas from the second
call on is not that of a transaction. Two measures give every measured call the
gas of a first touch, which py-evm confirms slot for slot:

- Each measured call runs inside `snapshot()` / `revert()`, which undoes its
  writes and marks the slots and accounts it warmed cold again. (`commit()`
  would not help: it only closes a `snapshot()`.)
- The starting state must sit in pyrevm's database, not in its journal.
  `insert_account_storage` writes to the database only while the account is
  not loaded in the journal, and it loads the account as a side effect, so a
  second slot inserted the plain way lands in the journal, warm and dirty.
  Each slot is therefore inserted inside its own snapshot that is then
  reverted: the revert unloads the account and the slot stays in the database.
"""

from __future__ import annotations

import time

from ewasm_cli.evmbench.backend import BackendUnavailable, CallResult
from ewasm_cli.evmbench.evm_contracts import compile_contract, token_storage
from ewasm_cli.evmbench.workloads import (
    CALL_GAS,
    COMPUTE_ADDRESS,
    SENDER,
    TOKEN_ADDRESS,
    Workload,
)

# Any other spelling (e.g. "CANCUN") silently means the latest fork.
SPEC_ID = "Cancun"


def _hex(address: bytes) -> str:
    return "0x" + address.hex()


class RevmBackend:
    """Runs the Vyper contracts on revm (Cancun rules, gas price 0)."""

    name = "revm"

    def __init__(self) -> None:
        try:
            from pyrevm import EVM, AccountInfo
        except ImportError as err:
            raise BackendUnavailable("pyrevm is not installed (pip install 'ewasm[bench]')") from err
        token, compute = compile_contract("token"), compile_contract("compute")
        self.evm = EVM(spec_id=SPEC_ID, gas_limit=CALL_GAS)
        self.evm.insert_account_info(_hex(TOKEN_ADDRESS), AccountInfo(code=token.runtime))
        self.evm.insert_account_info(_hex(COMPUTE_ADDRESS), AccountInfo(code=compute.runtime))
        for slot, value in token_storage(token).items():
            self._insert_cold(_hex(TOKEN_ADDRESS), slot, value)
        self._targets = {"token": _hex(TOKEN_ADDRESS), "compute": _hex(COMPUTE_ADDRESS)}
        self._sender = _hex(SENDER)

    def _insert_cold(self, address: str, slot: int, value: int) -> None:
        """Put one storage slot into the database, leaving the journal as it was (see above)."""
        checkpoint = self.evm.snapshot()
        self.evm.insert_account_storage(address, slot, value)
        self.evm.revert(checkpoint)

    def call(self, workload: Workload, i: int) -> CallResult:
        """One message call from cold state, timed without the snapshot and revert around it."""
        evm, data, to = self.evm, workload.calldata(i), self._targets[workload.contract]
        checkpoint = evm.snapshot()
        try:
            start = time.perf_counter()
            try:
                output, success = evm.message_call(self._sender, to, data, gas=CALL_GAS), True
            except RuntimeError:  # pyrevm raises on revert and halt
                output, success = b"", False
            seconds = time.perf_counter() - start
            result = evm.result
        finally:
            evm.revert(checkpoint)
        logs = tuple((tuple(log.data[0]), bytes(log.data[1])) for log in result.logs) if result else ()
        return CallResult(success, bytes(output), logs, result.gas_used if result else None, seconds)
