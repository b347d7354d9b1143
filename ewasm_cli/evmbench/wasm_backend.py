"""This runtime: the example contracts from contracts/ on ewasm_runtime, metered or not.

The starting state is made by the contracts themselves: the token's deployer
mints the supply to the sender, one committed transfer gives the repeat
recipient its tokens (the same balances the EVM side loads), and the compute
workloads' deployer creates that contract. With metering on (the chain's mode)
the runtime meters the code that creation returns before storing it; with it
off, the same contracts are stored and run verbatim.

Every measured call runs `execute` against a fresh copy of that state, so each
call starts from the same balances; the copy is made before the clock starts.
"""

from __future__ import annotations

import time

from ewasm_cli.evmbench.backend import BackendUnavailable, CallResult
from ewasm_cli.evmbench.workloads import (
    CALL_GAS,
    REPEAT_RECIPIENT,
    REPEAT_RECIPIENT_BALANCE,
    SENDER,
    Workload,
    selector,
)

# Committed builds in contracts/examples/: init modules that deploy each contract.
DEPLOYERS = {"token": "token.deploy.wasm", "compute": "workloads.deploy.wasm"}


class WasmBackend:
    """Runs the C contracts on this runtime, with the chain's metering or without it."""

    def __init__(self, metered: bool = True) -> None:
        self.metered = metered
        self.name = "wasm" if metered else "wasm_unmetered"
        try:
            import ewasm_runtime as vm
            from contracts import load_example
        except ImportError as err:
            raise BackendUnavailable(f"ewasm_runtime cannot be imported ({err})") from err
        self._vm = vm
        self._runtime = vm.Runtime(metering=metered)
        self._env = vm.Environment(gas_limit=4 * CALL_GAS)
        self._base = vm.MemoryState()
        self._base.put(SENDER, balance=10**18)
        self._targets = {}
        for contract, deployer in DEPLOYERS.items():
            try:
                init_code = load_example(deployer)
            except FileNotFoundError as err:
                raise BackendUnavailable(str(err)) from err
            result = self._run(vm.Message(sender=SENDER, to=None, data=init_code, gas=CALL_GAS), self._base)
            if not result.success:
                raise BackendUnavailable(f"deploying {deployer} failed: {result.status} {result.error}")
            self._targets[contract] = result.created_address
        self._fund_repeat_recipient()

    def _run(self, message, state):
        return self._vm.execute(message, state, self._env, self._runtime)

    def _fund_repeat_recipient(self) -> None:
        from eth_abi import encode

        data = selector("transfer(address,uint256)") + encode(
            ["address", "uint256"], ["0x" + REPEAT_RECIPIENT.hex(), REPEAT_RECIPIENT_BALANCE])
        message = self._vm.Message(sender=SENDER, to=self._targets["token"], data=data, gas=CALL_GAS)
        result = self._run(message, self._base)
        if not result.success:
            raise BackendUnavailable(f"setting up the token's balances failed: {result.status} {result.error}")

    def _fresh_state(self):
        """A copy of the starting state that one call may change freely."""
        vm = self._vm
        return vm.MemoryState({
            address: vm.Account(acct.nonce, acct.balance, acct.code, dict(acct.storage))
            for address, acct in self._base.accounts.items()
        })

    def call(self, workload: Workload, i: int) -> CallResult:
        """One transaction through `execute`, timed from the call to its result."""
        message = self._vm.Message(sender=SENDER, to=self._targets[workload.contract],
                                   data=workload.calldata(i), gas=CALL_GAS)
        state = self._fresh_state()
        start = time.perf_counter()
        result = self._vm.execute(message, state, self._env, self._runtime)
        seconds = time.perf_counter() - start
        logs = tuple((tuple(log.topics), bytes(log.data)) for log in result.logs)
        output = bytes(result.output) if result.success else b""
        return CallResult(result.success, output, logs, result.gas_used, seconds)
