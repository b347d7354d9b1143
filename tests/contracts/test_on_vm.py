"""The example contracts deployed and called through the VM (ewasm_runtime.execute), metered."""

from __future__ import annotations

import hashlib

import pytest
from eth_abi import decode, encode
from eth_hash.auto import keccak

from contracts import load_example

vm = pytest.importorskip("ewasm_runtime")
if not hasattr(vm, "execute"):
    pytest.skip("ewasm_runtime.execute is not available yet", allow_module_level=True)

SENDER = b"\xaa" * 20
BOB = b"\xbb" * 20
GAS = 5_000_000


def fib_mod_2_64(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % 2**64
    return a


def sig(signature: str, types: list[str] | None = None, args: list | None = None) -> bytes:
    return keccak(signature.encode())[:4] + (encode(types, args) if types else b"")


@pytest.fixture(scope="module")
def chain():
    """A memory state with the three examples deployed by SENDER; returns (state, addresses)."""
    state = vm.MemoryState()
    state.put(SENDER, balance=10**24)
    addresses = {}
    for name in ("counter", "token", "workloads"):
        result = vm.execute(vm.Message(sender=SENDER, to=None, data=load_example(f"{name}.deploy.wasm"),
                                       gas=GAS), state)
        assert result.status is vm.Status.SUCCESS, (name, result.error)
        addresses[name] = result.created_address
    return state, addresses


def call(chain, name: str, data: bytes, sender: bytes = SENDER):
    state, addresses = chain
    return vm.execute(vm.Message(sender=sender, to=addresses[name], data=data, gas=GAS), state)


def test_deployed_code_runs_as_the_chain_stores_it(chain):
    state, addresses = chain
    for name, address in addresses.items():
        assert state.get_code(address), name


def test_token_on_the_vm_mints_to_the_deployer_and_transfers_with_a_log(chain):
    assert decode(["uint256"], call(chain, "token", sig("totalSupply()")).output) == (10**24,)
    result = call(chain, "token", sig("transfer(address,uint256)", ["address", "uint256"], [BOB, 9]))
    assert result.status is vm.Status.SUCCESS and decode(["bool"], result.output) == (True,)
    (log,) = result.logs
    assert log.topics == (keccak(b"Transfer(address,address,uint256)"), bytes(12) + SENDER, bytes(12) + BOB)
    assert decode(["uint256"], call(chain, "token", sig("balanceOf(address)", ["address"], [BOB])).output) == (9,)


def test_token_on_the_vm_reverts_an_overdraft_and_refunds_unused_gas(chain):
    result = call(chain, "token", sig("transfer(address,uint256)", ["address", "uint256"], [SENDER, 10**6]),
                  sender=b"\xcd" * 20)
    assert result.status is vm.Status.REVERT and result.gas_used < GAS


def test_counter_on_the_vm_counts(chain):
    first = decode(["uint256"], call(chain, "counter", sig("increment()")).output)[0]
    assert decode(["uint256"], call(chain, "counter", sig("increment()")).output) == (first + 1,)
    assert decode(["uint256"], call(chain, "counter", sig("get()")).output) == (first + 1,)


@pytest.mark.parametrize("signature,n,expected", [
    ("sumOfSquares(uint256)", 1000, sum(i * i for i in range(1001))),
    ("fib(uint256)", 100, fib_mod_2_64(100)),
    ("keccakRounds(uint256)", 3, int.from_bytes(keccak(keccak(keccak(bytes(32)))), "big")),
    ("keccakRoundsPrecompile(uint256)", 3, int.from_bytes(keccak(keccak(keccak(bytes(32)))), "big")),
    ("sha256Precompile(uint256)", 2, int.from_bytes(hashlib.sha256(bytes(i % 256 for i in range(1024))).digest(), "big")),
])
def test_workloads_on_the_vm_match_the_reference_with_the_same_gas_twice(chain, signature, n, expected):
    first = call(chain, "workloads", sig(signature, ["uint256"], [n]))
    second = call(chain, "workloads", sig(signature, ["uint256"], [n]))
    assert first.status is vm.Status.SUCCESS, first.error
    assert decode(["uint256"], first.output) == (expected,)
    assert first.gas_used == second.gas_used > 21000
