"""The example contracts after the chain's transpiler: same outputs, deterministic gas."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_hash.auto import keccak

from contracts import load_example

metering = pytest.importorskip("metering")
if not hasattr(metering, "meter"):
    pytest.skip("metering.meter is not available yet", allow_module_level=True)

GAS = 10_000_000


def metered(name: str) -> bytes:
    return metering.meter(load_example(name), profile="ewasm")


def workload_call(signature: str, n: int) -> bytes:
    return keccak(signature.encode())[:4] + encode(["uint256"], [n])


@pytest.mark.parametrize("signature,n", [("sumOfSquares(uint256)", 1000), ("fib(uint256)", 1000),
                                         ("keccakRounds(uint256)", 10), ("sha256Precompile(uint256)", 2)])
def test_metered_workload_gives_the_unmetered_output_for_the_same_gas_every_time(host, signature, n):
    plain = host.call(load_example("workloads.wasm"), workload_call(signature, n))
    code = metered("workloads.wasm")
    first = host.call(code, workload_call(signature, n), gas=GAS)
    second = host.call(code, workload_call(signature, n), gas=GAS)
    assert first.status == second.status == "finish"
    assert first.output == second.output == plain.output
    assert 0 < GAS - first.gas_left == GAS - second.gas_left


@pytest.mark.parametrize("signature", ["sumOfSquares(uint256)", "fib(uint256)", "keccakRounds(uint256)"])
def test_metered_workload_gas_grows_with_n(host, signature):
    code = metered("workloads.wasm")
    used = [GAS - host.call(code, workload_call(signature, n), gas=GAS).gas_left for n in (10, 20, 40)]
    assert used[0] < used[1] < used[2]


def test_metered_workload_runs_out_of_gas_when_n_is_too_large(host):
    result = host.call(metered("workloads.wasm"), workload_call("sumOfSquares(uint256)", 10**9), gas=100_000)
    assert result.status == "trap" and result.gas_left == -1


def test_metered_token_deploys_and_transfers(host):
    address = b"\x7e" * 20
    deployed = host.call(metered("token.deploy.wasm"), address=address, gas=GAS)
    assert deployed.status == "finish" and deployed.output == load_example("token.wasm")
    calldata = keccak(b"transfer(address,uint256)")[:4] + encode(["address", "uint256"], [b"\xb0" * 20, 7])
    result = host.call(metered("token.wasm"), calldata, address=address, gas=GAS)
    assert result.status == "finish" and len(result.logs) == 1
    assert host.storage[address][b"\x01" + bytes(11) + b"\xb0" * 20] == (7).to_bytes(32, "big")
