"""The committed example contracts: ewasm conventions, and behaviour against Python references."""

from __future__ import annotations

import hashlib
import re

import pytest
import wasmtime
from eth_abi import decode, encode
from eth_hash.auto import keccak

from contracts import EXAMPLES_DIR, load_example
from contracts.build import EXAMPLE_SOURCES
from ewasm_runtime.shard_host import SHARD_EEI

MASK64 = (1 << 64) - 1
TOKEN_SUPPLY = 10**24
DEPLOYER = bytes.fromhex("aa" * 20)
ALICE = bytes.fromhex("a1" * 20)
BOB = bytes.fromhex("b0" * 20)
TOKEN_ADDRESS = bytes.fromhex("7e" * 20)

SHARD_SIGNATURES = {name: (list(params), list(results)) for name, (params, results, _) in SHARD_EEI.items()}
COMMITTED = sorted(p.name for p in EXAMPLES_DIR.glob("*.wasm"))
RUNTIMES = [name for name in COMMITTED if not name.endswith(".deploy.wasm")]


def selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def abi_call(signature: str, types: list[str] | None = None, args: list | None = None) -> bytes:
    return selector(signature) + (encode(types, args) if types else b"")


def as_uint(output: bytes) -> int:
    assert len(output) == 32
    return decode(["uint256"], output)[0]


def has_start_section(wasm: bytes) -> bool:
    pos = 8
    while pos < len(wasm):
        section_id, size, shift, pos = wasm[pos], 0, 0, pos + 1
        while True:
            byte = wasm[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if section_id == 8:
            return True
        pos += size
    return False


def test_every_example_source_has_both_committed_binaries():
    stems = [source.rsplit(".", 1)[0] for source in EXAMPLE_SOURCES]
    assert stems == ["counter", "forwarder", "spinner", "token", "workloads", "xtoken"]
    assert COMMITTED == sorted(f"{stem}{suffix}" for stem in stems for suffix in (".wasm", ".deploy.wasm"))


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_binary_follows_the_ewasm_conventions(name, eei):
    wasm = load_example(name)
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    exports = {e.name: e.type for e in module.exports}
    assert set(exports) == {"main", "memory"}
    assert isinstance(exports["memory"], wasmtime.MemoryType)
    assert [str(t) for t in exports["main"].params] == [] and list(exports["main"].results) == []
    assert not has_start_section(wasm)
    for imp in module.imports:
        assert imp.module in ("ethereum", "shard"), imp.module
        table = eei if imp.module == "ethereum" else SHARD_SIGNATURES
        assert imp.name in table, imp.name
        params, results = table[imp.name]
        assert [str(t) for t in imp.type.params] == params, imp.name
        assert [str(t) for t in imp.type.results] == results, imp.name


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_binary_passes_the_transpilers_ewasm_checks(name):
    metering = pytest.importorskip("metering")
    if not hasattr(metering, "check"):
        pytest.skip("metering.check is not available yet")
    assert metering.check(load_example(name), profile="ewasm") == []


@pytest.mark.parametrize("name", RUNTIMES)
def test_deployer_returns_exactly_the_runtime_code(host, name):
    deploy = load_example(name.replace(".wasm", ".deploy.wasm"))
    result = host.call(deploy, caller=DEPLOYER)
    assert result.status == "finish"
    assert result.output == load_example(name)


def test_header_declares_each_eei_function_once(eei):
    header = (EXAMPLES_DIR.parent / "include" / "ewasm.h").read_text()
    declared = re.findall(r"^EEI_IMPORT\((\w+)\)", header, re.MULTILINE)
    assert sorted(declared) == sorted(eei)
    assert len(eei) == 33


# --- counter ---------------------------------------------------------------------------------

def test_counter_counts_up_from_zero_and_keeps_a_big_endian_word(host):
    counter = load_example("counter.wasm")
    assert as_uint(host.call(counter, abi_call("get()")).output) == 0
    for expected in (1, 2, 3):
        result = host.call(counter, abi_call("increment()"))
        assert result.status == "finish" and as_uint(result.output) == expected
    assert as_uint(host.call(counter, abi_call("get()")).output) == 3
    assert host.storage[b"\xcc" * 20] == {bytes(32): (3).to_bytes(32, "big")}


@pytest.mark.parametrize("calldata", [b"", b"\xd0\x9d\xe0", selector("decrement()")])
def test_counter_reverts_on_short_calldata_or_unknown_selector(host, calldata):
    result = host.call(load_example("counter.wasm"), calldata)
    assert result.status == "revert" and result.output == b""


# --- token -----------------------------------------------------------------------------------

@pytest.fixture
def token(host):
    """A deployed token: the deployer's init code ran with DEPLOYER as caller."""
    deployed = host.call(load_example("token.deploy.wasm"), caller=DEPLOYER, address=TOKEN_ADDRESS)
    assert deployed.status == "finish"
    code = deployed.output

    def call(calldata: bytes, caller: bytes = DEPLOYER):
        return host.call(code, calldata, caller=caller, address=TOKEN_ADDRESS)

    return call


def balance_of(token, owner: bytes) -> int:
    result = token(abi_call("balanceOf(address)", ["address"], [owner]))
    assert result.status == "finish"
    return as_uint(result.output)


def test_token_deployment_mints_the_supply_to_the_deployer(token):
    assert as_uint(token(abi_call("totalSupply()")).output) == TOKEN_SUPPLY
    assert balance_of(token, DEPLOYER) == TOKEN_SUPPLY
    assert balance_of(token, ALICE) == 0


def test_token_transfer_moves_balance_returns_true_and_logs_transfer(token, host):
    result = token(abi_call("transfer(address,uint256)", ["address", "uint256"], [ALICE, 1234]))
    assert result.status == "finish"
    assert decode(["bool"], result.output) == (True,)
    assert len(result.logs) == 1
    log = result.logs[0]
    assert log.topics == [
        keccak(b"Transfer(address,address,uint256)"),
        bytes(12) + DEPLOYER,
        bytes(12) + ALICE,
    ]
    assert log.data == (1234).to_bytes(32, "big")
    assert balance_of(token, DEPLOYER) == TOKEN_SUPPLY - 1234
    assert balance_of(token, ALICE) == 1234
    assert as_uint(token(abi_call("totalSupply()")).output) == TOKEN_SUPPLY
    # The storage layout the README documents: 0x01 || 11 zero bytes || address.
    assert host.storage[TOKEN_ADDRESS][b"\x01" + bytes(11) + ALICE] == (1234).to_bytes(32, "big")
    assert host.storage[TOKEN_ADDRESS][bytes(32)] == TOKEN_SUPPLY.to_bytes(32, "big")


def test_token_transfer_of_more_than_the_balance_reverts_and_changes_nothing(token):
    token(abi_call("transfer(address,uint256)", ["address", "uint256"], [ALICE, 10]))
    result = token(abi_call("transfer(address,uint256)", ["address", "uint256"], [BOB, 11]), caller=ALICE)
    assert result.status == "revert" and result.output == b"" and result.logs == []
    assert balance_of(token, ALICE) == 10 and balance_of(token, BOB) == 0


def test_token_transfer_of_the_whole_balance_and_to_oneself_keep_the_sum(token):
    token(abi_call("transfer(address,uint256)", ["address", "uint256"], [ALICE, 500]))
    assert token(abi_call("transfer(address,uint256)", ["address", "uint256"], [ALICE, 500]),
                 caller=ALICE).status == "finish"
    assert balance_of(token, ALICE) == 500
    assert token(abi_call("transfer(address,uint256)", ["address", "uint256"], [BOB, 500]),
                 caller=ALICE).status == "finish"
    assert balance_of(token, ALICE) == 0 and balance_of(token, BOB) == 500
    assert balance_of(token, DEPLOYER) + 500 == TOKEN_SUPPLY


def test_token_transfer_of_zero_succeeds_and_still_logs(token):
    result = token(abi_call("transfer(address,uint256)", ["address", "uint256"], [BOB, 0]), caller=ALICE)
    assert result.status == "finish" and len(result.logs) == 1


@pytest.mark.parametrize(
    "calldata",
    [
        b"",
        selector("transfer(address,uint256)") + encode(["address"], [ALICE]),  # amount missing
        selector("balanceOf(address)") + b"\x01" + bytes(11) + ALICE,  # dirty upper address bytes
        selector("mint(address,uint256)") + encode(["address", "uint256"], [ALICE, 1]),
    ],
    ids=["empty", "short", "dirty-address", "unknown-selector"],
)
def test_token_reverts_on_malformed_calls(token, calldata):
    result = token(calldata)
    assert result.status == "revert" and result.output == b""


# --- compute workloads -----------------------------------------------------------------------

SHA256_INPUT = bytes(i % 256 for i in range(1024))


def ref_sum_of_squares(n: int) -> int:
    return (n * (n + 1) * (2 * n + 1) // 6) & MASK64


def ref_fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) & MASK64
    return a


def ref_keccak_rounds(n: int) -> int:
    h = bytes(32)
    for _ in range(n):
        h = keccak(h)
    return int.from_bytes(h, "big")


def ref_sha256(n: int) -> int:
    return int.from_bytes(hashlib.sha256(SHA256_INPUT).digest(), "big") if n else 0


WORKLOADS = {
    "sumOfSquares(uint256)": (ref_sum_of_squares, [0, 1, 2, 10, 1000, 5_000_000]),
    "fib(uint256)": (ref_fib, [0, 1, 2, 10, 93, 94, 100, 20_000]),
    "keccakRounds(uint256)": (ref_keccak_rounds, [0, 1, 2, 17]),
    "keccakRoundsPrecompile(uint256)": (ref_keccak_rounds, [0, 1, 2, 17]),
    "sha256Precompile(uint256)": (ref_sha256, [0, 1, 3]),
}
CASES = [(sig, n) for sig, (_, ns) in WORKLOADS.items() for n in ns]


@pytest.mark.parametrize("signature,n", CASES, ids=[f"{s.split('(')[0]}-{n}" for s, n in CASES])
def test_workload_returns_what_the_python_reference_computes(host, signature, n):
    result = host.call(load_example("workloads.wasm"), abi_call(signature, ["uint256"], [n]))
    assert result.status == "finish", result.error
    assert as_uint(result.output) == WORKLOADS[signature][0](n)


def test_sum_of_squares_wraps_modulo_2_to_the_64():
    assert ref_sum_of_squares(5_000_000) != 5_000_000 * 5_000_001 * 10_000_001 // 6


@pytest.mark.parametrize("signature", ["keccakRoundsPrecompile(uint256)", "sha256Precompile(uint256)"])
def test_precompile_workloads_call_the_precompile_once_per_round(host, signature):
    result = host.call(load_example("workloads.wasm"), abi_call(signature, ["uint256"], [5]))
    assert result.host_calls["call"] == 5


def test_keccak_rounds_in_the_contract_make_no_host_calls_per_round(host):
    result = host.call(load_example("workloads.wasm"), abi_call("keccakRounds(uint256)", ["uint256"], [50]))
    assert "call" not in result.host_calls and result.host_calls["finish"] == 1


@pytest.mark.parametrize("signature", list(WORKLOADS))
def test_workload_reverts_when_n_does_not_fit_in_64_bits(host, signature):
    result = host.call(load_example("workloads.wasm"), abi_call(signature, ["uint256"], [1 << 64]))
    assert result.status == "revert"


@pytest.mark.parametrize("calldata", [b"", selector("fib(uint256)"), abi_call("nope(uint256)", ["uint256"], [1])])
def test_workloads_revert_on_short_calldata_or_unknown_selector(host, calldata):
    assert host.call(load_example("workloads.wasm"), calldata).status == "revert"
