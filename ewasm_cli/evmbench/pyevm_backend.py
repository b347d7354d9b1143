"""py-evm: the Python reference EVM, run at the state level.

The contracts and their storage are placed in the genesis state, so no
deployment transaction runs. Each measured call is a whole transaction applied
to the state (validation, intrinsic gas, execution, refunds), with the sender
spoofed as `eth_call` does, so no signature is recovered on this side either.
A state snapshot taken before the call and reverted after it gives every call
the same starting state; py-evm keeps warm slots in that journal too.
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

CHAIN_ID = 1337


def _genesis_state() -> dict:
    token, compute = compile_contract("token"), compile_contract("compute")

    def account(code: bytes = b"", storage: dict | None = None, balance: int = 0) -> dict:
        return {"balance": balance, "nonce": 0, "code": code, "storage": storage or {}}

    return {
        SENDER: account(balance=10**18),
        TOKEN_ADDRESS: account(token.runtime, token_storage(token)),
        COMPUTE_ADDRESS: account(compute.runtime),
    }


class PyEvmBackend:
    """Runs the Vyper contracts on py-evm's Cancun VM (gas price 0)."""

    name = "pyevm"

    def __init__(self) -> None:
        try:
            from eth.chains.base import MiningChain
            from eth.db.atomic import AtomicDB
            from eth.vm.forks.cancun import CancunVM
            from eth.vm.spoof import SpoofTransaction
        except ImportError as err:
            raise BackendUnavailable("py-evm is not installed (pip install 'ewasm[bench]')") from err
        chain_class = MiningChain.configure(
            __name__="EvmBenchChain", vm_configuration=((0, CancunVM),), chain_id=CHAIN_ID)
        # Cancun's genesis must have difficulty 0 (proof of stake); base fee 0 lets
        # transactions with gas price 0 through, as on revm.
        genesis = {"difficulty": 0, "gas_limit": 4 * CALL_GAS, "timestamp": 1,
                   "coinbase": b"\0" * 20, "base_fee_per_gas": 0}
        chain = chain_class.from_genesis(AtomicDB(), genesis, _genesis_state())
        self._vm = chain.get_vm()
        self._state = self._vm.state
        self._spoof = SpoofTransaction
        self._targets = {"token": TOKEN_ADDRESS, "compute": COMPUTE_ADDRESS}

    def _transaction(self, to: bytes, data: bytes):
        tx = self._vm.create_unsigned_transaction(
            nonce=self._state.get_nonce(SENDER), gas_price=0, gas=CALL_GAS, to=to, value=0, data=data)
        return self._spoof(tx, from_=SENDER)

    def call(self, workload: Workload, i: int) -> CallResult:
        """One transaction from the genesis state, timed without the snapshot and revert."""
        tx = self._transaction(self._targets[workload.contract], workload.calldata(i))
        state = self._state
        snapshot = state.snapshot()
        try:
            start = time.perf_counter()
            computation = state.apply_transaction(tx)
            seconds = time.perf_counter() - start
        finally:
            state.revert(snapshot)
        success = computation.is_success
        logs = tuple(
            (tuple(topic.to_bytes(32, "big") for topic in topics), bytes(data))
            for _address, topics, data in computation.get_log_entries()
        ) if success else ()
        output = bytes(computation.output) if success else b""
        return CallResult(success, output, logs, _transaction_gas(computation), seconds)


def _transaction_gas(computation) -> int:
    """Gas the whole transaction used, as a receipt reports it (and as revm does).

    The computation's own figure leaves out intrinsic gas and refunds; this adds
    the first and subtracts the second, capped at a fifth of the gas used (EIP-3529),
    exactly as py-evm's own `finalize_computation` does.
    """
    used = CALL_GAS - computation.get_gas_remaining()
    refund = min(computation.get_gas_refund(), used // 5)
    return used - refund + getattr(computation, "data_floor_gas", 0)
