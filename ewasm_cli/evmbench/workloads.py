"""The workloads of the EVM comparison and the starting state they run against.

Every backend receives the same call data (Ethereum ABI) for a workload, so the
outputs and logs of the two sides can be compared byte for byte. Each measured
call starts from the same state: the token holder owns the supply, the repeat
recipient already holds some tokens (so its write is a reset, not a fresh set),
and a fresh recipient has never held any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from eth_abi import encode
from eth_hash.auto import keccak

# Accounts shared by every backend. The sender signs nothing: the benchmark
# measures execution, not signature recovery, on every side.
SENDER = bytes.fromhex("1111111111111111111111111111111111111111")
REPEAT_RECIPIENT = bytes.fromhex("2222222222222222222222222222222222222222")
TOKEN_ADDRESS = bytes.fromhex("00000000000000000000000000000000000a0001")
COMPUTE_ADDRESS = bytes.fromhex("00000000000000000000000000000000000a0002")

TOKEN_SUPPLY = 10**24
REPEAT_RECIPIENT_BALANCE = 1_000
TRANSFER_AMOUNT = 1

# Gas limit of every call on every side: far above what the largest workload needs.
CALL_GAS = 100_000_000

# The 1 KiB input of the sha256 workloads, built into both contracts: byte i is i mod 256.
SHA256_INPUT = bytes(range(256)) * 4


def fresh_recipient(i: int) -> bytes:
    """The i-th never-used recipient: a distinct address for every call."""
    return bytes.fromhex("f0") + i.to_bytes(19, "big")


def selector(signature: str) -> bytes:
    """The 4-byte Ethereum ABI function selector of a signature."""
    return keccak(signature.encode())[:4]


@dataclass(frozen=True)
class Workload:
    """One row of the benchmark: a contract function and how to call it.

    `args(i)` gives the ABI arguments of the i-th call, so that a workload such
    as "fresh recipient" can vary its arguments per call while every backend
    still sees the same i-th call.
    """

    name: str
    params: dict
    contract: str  # "token" or "compute"
    signature: str
    args: Callable[[int], tuple] = field(compare=False)
    description: str = ""

    @property
    def label(self) -> str:
        """Name plus parameters, as shown in tables and plots."""
        if not self.params:
            return self.name
        return self.name + " " + ",".join(f"{k}={v}" for k, v in self.params.items())

    @property
    def arg_types(self) -> list[str]:
        """The ABI types inside the signature's parentheses."""
        inner = self.signature[self.signature.index("(") + 1 : -1]
        return inner.split(",") if inner else []

    def calldata(self, i: int) -> bytes:
        """Selector plus ABI-encoded arguments of the i-th call."""
        return selector(self.signature) + encode(self.arg_types, list(self.args(i)))


def _address(raw: bytes) -> str:
    return "0x" + raw.hex()


def workloads(quick: bool = False) -> list[Workload]:
    """All workloads in table order; `quick` drops the N = 100k compute rows and shortens the keccak loop."""
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    keccak_n = 100 if quick else 1_000
    rows = [
        Workload(
            "transfer (repeat recipient)", {}, "token", "transfer(address,uint256)",
            lambda i: (_address(REPEAT_RECIPIENT), TRANSFER_AMOUNT),
            "token transfer to a recipient that already holds tokens",
        ),
        Workload(
            "transfer (fresh recipient)", {}, "token", "transfer(address,uint256)",
            lambda i: (_address(fresh_recipient(i)), TRANSFER_AMOUNT),
            "token transfer to a new recipient on every call",
        ),
        Workload(
            "balanceOf", {}, "token", "balanceOf(address)",
            lambda i: (_address(SENDER),),
            "view of the holder's balance",
        ),
    ]
    for n in sizes:
        rows.append(Workload(
            "sum of squares", {"n": n}, "compute", "sumOfSquares(uint256)", lambda i, n=n: (n,),
            "sum of i*i for i in 1..n, mod 2^64",
        ))
    for n in sizes:
        rows.append(Workload(
            "fib", {"n": n}, "compute", "fib(uint256)", lambda i, n=n: (n,),
            "iterative Fibonacci F(n) mod 2^64",
        ))
    rows.append(Workload(
        "keccak rounds", {"n": keccak_n}, "compute", "keccakRounds(uint256)", lambda i: (keccak_n,),
        "h = keccak256(h) n times from 32 zero bytes; wasm hashes inside the contract",
    ))
    rows.append(Workload(
        "keccak rounds (precompile)", {"n": keccak_n}, "compute", "keccakRoundsPrecompile(uint256)",
        lambda i: (keccak_n,),
        "the same chain; wasm calls the keccak256 precompile 0x09, the EVM uses its opcode",
    ))
    for n in (1, 100):
        rows.append(Workload(
            "sha256 1KiB", {"n": n}, "compute", "sha256Precompile(uint256)", lambda i, n=n: (n,),
            "sha256 of a 1 KiB constant (byte i = i mod 256) through precompile 0x02, n times",
        ))
    return rows
