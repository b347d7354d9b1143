"""The AssemblyScript contracts: the same behaviour as their C and WAT twins, and their build.

The committed binaries (contracts/assemblyscript/*.wasm) are checked everywhere: they follow
the ewasm conventions, and on the metered VM the token and the counter give the same outputs,
logs and storage as examples/token.c and examples/counter.wat for the same calls. Building
needs node and npm (the pinned asc is installed on first use); those tests skip with the
reason when it cannot be had.
"""

from __future__ import annotations

import functools
import json
import shutil

import pytest
import wasmtime
from eth_abi import encode
from eth_hash.auto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import metering
from contracts import load_example
from contracts.asc import ASC_PACKAGE, ASC_VERSION, PROJECT_ROOT, find_asc
from contracts.build import (
    ASSEMBLYSCRIPT_DIR,
    BuildError,
    ToolMissing,
    abi_output,
    assemblyscript_sources,
    build,
    rebuild_assemblyscript,
)
from contracts.deployer import deployer_wrapper
from contracts.npm import installed_version
from ewasm_cli.main import main as ewasm
from ewasm_runtime import Status
from tests.ewasm_runtime.helpers import SENDER, A, B, World

BINARIES = sorted(p.name for p in ASSEMBLYSCRIPT_DIR.glob("*.wasm"))
TOKEN_SUPPLY = 10**24
GAS = 1_000_000
ACCOUNTS = (SENDER, A, B)


def load(name: str) -> bytes:
    return (ASSEMBLYSCRIPT_DIR / name).read_bytes()


@functools.cache
def asc_unavailable() -> str | None:
    """Why the pinned asc cannot be run, or None; asked once (an offline install is slow to fail)."""
    try:
        find_asc()
    except ToolMissing as err:
        return str(err)
    return None


def asc_or_skip() -> None:
    """Skip the test unless the pinned asc can be run (installing it on first use)."""
    if asc_unavailable():
        pytest.skip(asc_unavailable())


def selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def transfer(to: bytes, amount: int) -> bytes:
    return selector("transfer(address,uint256)") + encode(["address", "uint256"], [to, amount])


def balance_of(owner: bytes) -> bytes:
    return selector("balanceOf(address)") + encode(["address"], [owner])


# --- the committed binaries ------------------------------------------------------------------

def test_both_contracts_have_a_runtime_a_deployer_and_an_abi_committed():
    assert BINARIES == ["counter.deploy.wasm", "counter.wasm", "token.deploy.wasm", "token.wasm"]
    for source in assemblyscript_sources():
        assert abi_output(source).is_file(), source


@pytest.mark.parametrize("name", BINARIES)
def test_ewasm_check_accepts_the_committed_binary(name, capsys):
    assert metering.check(load(name), profile="ewasm") == []
    assert ewasm(["check", "--profile", "ewasm", str(ASSEMBLYSCRIPT_DIR / name)]) == 0


@pytest.mark.parametrize("name", BINARIES)
def test_the_committed_binary_imports_only_eei_functions_with_their_signatures(name, eei):
    module = wasmtime.Module(wasmtime.Engine(), load(name))
    assert sorted(e.name for e in module.exports) == ["main", "memory"]
    for imp in module.imports:
        assert imp.module == "ethereum" and imp.name in eei, (imp.module, imp.name)
        params, results = eei[imp.name]
        assert [str(t) for t in imp.type.params] == params and [str(t) for t in imp.type.results] == results


@pytest.mark.parametrize("name", ["token.abi.json", "counter.abi.json"])
def test_the_abi_is_the_same_as_the_twins(name):
    assert json.loads(load(name)) == json.loads(load_example(name))


def test_the_counter_without_a_constructor_is_deployed_by_the_generic_wrapper():
    assert load("counter.deploy.wasm") == deployer_wrapper(load("counter.wasm"))


# --- the same behaviour as the twins, on the metered VM --------------------------------------

@pytest.fixture(scope="module", autouse=True)
def vm_runtime():
    """The VM made before the first test: it raises the recursion limit when it is made,
    which hypothesis would otherwise see change during a test."""
    import ewasm_runtime
    return ewasm_runtime.default_runtime()


def deployed(deploy_code: bytes) -> tuple[World, bytes]:
    """A metered world with `deploy_code` run by SENDER; the new contract's address."""
    world = World(metering=True)
    result = world.call(None, deploy_code, gas=5_000_000)
    assert result.status is Status.SUCCESS, result.error
    return world, result.created_address


class Twins:
    """The AssemblyScript contract and its twin, each deployed in its own world by the same
    sender at the same nonce, so both live at the same address and their logs compare whole."""

    def __init__(self, assemblyscript_deployer: bytes, twin_deployer: bytes):
        self.ours, self.address = deployed(assemblyscript_deployer)
        self.theirs, twin_address = deployed(twin_deployer)
        assert twin_address == self.address

    def call(self, data: bytes, sender: bytes = SENDER):
        """Run the call on both; assert the same status, output and logs; return ours."""
        ours = self.ours.call(self.address, data, gas=GAS, sender=sender)
        theirs = self.theirs.call(self.address, data, gas=GAS, sender=sender)
        assert (ours.status, ours.output, ours.logs) == (theirs.status, theirs.output, theirs.logs), data.hex()
        return ours

    def storage(self) -> dict[bytes, bytes]:
        """Our contract's storage, after asserting it equals the twin's."""
        ours = self.ours.state.accounts[self.address].storage
        assert ours == self.theirs.state.accounts[self.address].storage
        return ours


@pytest.fixture
def tokens() -> Twins:
    return Twins(load("token.deploy.wasm"), load_example("token.deploy.wasm"))


@pytest.fixture
def counters() -> Twins:
    return Twins(load("counter.deploy.wasm"), load_example("counter.deploy.wasm"))


def test_the_token_deployer_returns_the_committed_runtime_code_and_mints_to_the_deployer(tokens):
    assert tokens.ours.state.get_code(tokens.address) == tokens.ours.runtime.meter(load("token.wasm"))
    assert tokens.storage() == {
        bytes(32): TOKEN_SUPPLY.to_bytes(32, "big"),
        b"\x01" + bytes(11) + SENDER: TOKEN_SUPPLY.to_bytes(32, "big"),
    }


def test_the_token_transfers_logs_and_answers_like_the_c_token(tokens):
    result = tokens.call(transfer(A, 1234))
    assert result.status is Status.SUCCESS and result.output == (1).to_bytes(32, "big")
    (log,) = result.logs
    assert log.topics == (keccak(b"Transfer(address,address,uint256)"), bytes(12) + SENDER, bytes(12) + A)
    assert log.data == (1234).to_bytes(32, "big")
    assert tokens.call(balance_of(A)).output == (1234).to_bytes(32, "big")
    assert tokens.call(selector("totalSupply()")).output == TOKEN_SUPPLY.to_bytes(32, "big")
    tokens.call(transfer(A, 34), sender=A)  # to oneself: the balance stays
    tokens.call(transfer(B, 0), sender=B)  # nothing, and still a log
    assert tokens.storage()[b"\x01" + bytes(11) + A] == (1234).to_bytes(32, "big")


@pytest.mark.parametrize("calldata", [
    b"",
    selector("transfer(address,uint256)")[:3],
    selector("mint(address,uint256)") + encode(["address", "uint256"], [A, 1]),
    selector("transfer(address,uint256)") + encode(["address"], [A]),  # the amount is missing
    selector("balanceOf(address)") + b"\x01" + bytes(11) + A,  # a dirty address word
    selector("transfer(address,uint256)") + b"\x00" * 11 + b"\x01" + A + encode(["uint256"], [1]),
    transfer(B, TOKEN_SUPPLY + 1),  # more than the balance
], ids=["empty", "short selector", "unknown selector", "short arguments", "dirty balanceOf address",
        "dirty transfer address", "insufficient balance"])
def test_the_token_reverts_with_empty_data_where_the_c_token_does(tokens, calldata):
    result = tokens.call(calldata)
    assert result.status is Status.REVERT and result.output == b"" and result.logs == ()
    tokens.storage()


def test_the_counter_counts_and_reverts_like_the_wat_counter(counters):
    for expected in (1, 2, 3):
        assert counters.call(selector("increment()")).output == expected.to_bytes(32, "big")
    assert counters.call(selector("get()")).output == (3).to_bytes(32, "big")
    for calldata in (b"", b"\xd0\x9d\xe0", selector("decrement()")):
        result = counters.call(calldata)
        assert result.status is Status.REVERT and result.output == b""
    assert counters.storage() == {bytes(32): (3).to_bytes(32, "big")}


def test_the_counter_wraps_at_2_to_the_64_like_the_wat_counter(counters):
    for world in (counters.ours, counters.theirs):
        world.state.set_storage(counters.address, bytes(32), (2**64 - 1).to_bytes(32, "big"))
    assert counters.call(selector("increment()")).output == bytes(32)
    counters.storage()


# One call of a generated sequence: which function, from whom, to whom, how much.
token_calls = st.one_of(
    st.tuples(st.just("transfer"), st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS),
              st.one_of(st.integers(0, 2000), st.just(TOKEN_SUPPLY), st.integers(0, 2**256 - 1))),
    st.tuples(st.just("balanceOf"), st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS), st.just(0)),
    st.tuples(st.just("totalSupply"), st.sampled_from(ACCOUNTS), st.just(SENDER), st.just(0)),
    st.tuples(st.just("garbage"), st.sampled_from(ACCOUNTS), st.just(SENDER), st.integers(0, 2**40 - 1)),
)


def token_calldata(kind: str, to: bytes, amount: int) -> bytes:
    if kind == "transfer":
        return transfer(to, amount)
    if kind == "balanceOf":
        return balance_of(to)
    if kind == "totalSupply":
        return selector("totalSupply()")
    return amount.to_bytes(5, "big")[: amount % 6]  # short or unknown calldata


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(token_calls, min_size=1, max_size=12))
def test_a_generated_sequence_of_token_calls_gives_the_same_results_and_state(calls):
    tokens = Twins(load("token.deploy.wasm"), load_example("token.deploy.wasm"))
    for kind, sender, to, amount in calls:
        tokens.call(token_calldata(kind, to, amount), sender=sender)
    tokens.storage()


# --- building (needs node and npm) -------------------------------------------------------------

def test_without_node_ewasm_compile_of_a_ts_file_exits_2_with_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    code = ewasm(["compile", str(ASSEMBLYSCRIPT_DIR / "token.ts"), "-o", str(tmp_path / "t.wasm")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "node is not installed" in err and ASC_VERSION in err
    assert not (tmp_path / "t.wasm").exists()


def test_a_failing_npm_install_is_one_line_from_ewasm_compile(monkeypatch, tmp_path, capsys):
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("needs node and npm on PATH (to see the install fail)")
    if installed_version(PROJECT_ROOT, ASC_PACKAGE) == ASC_VERSION:
        pytest.skip("the project's node_modules holds the pinned asc: nothing is installed")
    monkeypatch.setenv("EWASM_NPM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm"))  # and nothing is cached
    monkeypatch.setenv("npm_config_fetch_retry_mintimeout", "10")  # fail at once, not after 10 s
    monkeypatch.setenv("npm_config_fetch_retry_maxtimeout", "10")
    code = ewasm(["compile", str(ASSEMBLYSCRIPT_DIR / "counter.ts"), "-o", str(tmp_path / "c.wasm")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and f"npm install {ASC_PACKAGE}@{ASC_VERSION} failed" in err


def test_ewasm_compile_of_token_ts_reproduces_the_committed_binary_and_writes_the_abi(tmp_path, capsys):
    asc_or_skip()
    assert ewasm(["compile", str(ASSEMBLYSCRIPT_DIR / "token.ts"), "-o", str(tmp_path / "token.wasm")]) == 0
    assert (tmp_path / "token.wasm").read_bytes() == load("token.wasm")
    assert json.loads((tmp_path / "token.abi.json").read_text()) == json.loads(load("token.abi.json"))
    assert "wrote ABI" in capsys.readouterr().out


def test_the_committed_assemblyscript_binaries_rebuild_byte_for_byte():
    """The builds are reproducible: asc is pinned, and no path of this machine reaches the output."""
    asc_or_skip()
    assert rebuild_assemblyscript(check=True) == []


def test_an_assemblyscript_compile_error_carries_ascs_diagnostics(tmp_path):
    asc_or_skip()
    source = tmp_path / "bad.ts"
    source.write_text("export function main(): void { undefinedThing(); }\n")
    with pytest.raises(BuildError, match="undefinedThing"):
        build(source)


def test_a_contract_that_allocates_is_refused_with_the_reason(tmp_path, capsys):
    """`new` needs the runtime's heap, whose start function a contract may not have."""
    asc_or_skip()
    source = tmp_path / "alloc.ts"
    source.write_text("export function main(): void { const a = new Uint8Array(32); a[0] = 1; }\n")
    assert ewasm(["compile", str(source)]) == 1
    assert "start function" in capsys.readouterr().err


# --- the SDK's arithmetic, against Python's integers -------------------------------------------

PROBE = """
import {
  abiArgU256, abiArgU64, abiReturnBool, abiReturnU256, abiReturnU64, abiSelector, fail,
  u128ToU256, u256Add, u256Eq, u256Lt, u256Sub, u256ToU128,
} from "./ewasm";

const X: usize = memory.data(32);
const Y: usize = memory.data(32);
const V: usize = memory.data(16);

export function main(): void {
  const op = abiSelector();
  if (op == 5) { abiReturnU64(abiArgU64(0) + 1); return; }
  abiArgU256(0, X);
  abiArgU256(1, Y);
  if (op == 1) { if (u256Add(X, X, Y)) fail(); abiReturnU256(X); }
  else if (op == 2) { if (u256Sub(X, X, Y)) fail(); abiReturnU256(X); }
  else if (op == 3) abiReturnBool(u256Lt(X, Y));
  else if (op == 4) abiReturnBool(u256Eq(X, Y));
  else if (op == 6) { if (!u256ToU128(X, V)) fail(); u128ToU256(V, Y); abiReturnU256(Y); }
  else fail();
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """The SDK probe, built next to a copy of ewasm.ts (it imports the SDK by relative path)."""
    asc_or_skip()
    folder = tmp_path_factory.mktemp("probe")
    (folder / "ewasm.ts").write_text((ASSEMBLYSCRIPT_DIR / "ewasm.ts").read_text())
    (folder / "probe.ts").write_text(PROBE)
    wasm = build(folder / "probe.ts").runtime
    assert metering.check(wasm, profile="ewasm") == []
    return wasm


def probe_call(host, wasm: bytes, op: int, *words: int):
    return host.call(wasm, op.to_bytes(4, "big") + b"".join(w.to_bytes(32, "big") for w in words))


U256 = st.one_of(st.integers(0, 2**256 - 1), st.sampled_from([0, 1, 2**64 - 1, 2**64, 2**128 - 1, 2**128,
                                                               2**255, 2**256 - 1]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=U256, y=U256)
def test_the_sdks_u256_arithmetic_matches_pythons_integers(host, probe, x, y):
    add, sub = probe_call(host, probe, 1, x, y), probe_call(host, probe, 2, x, y)
    assert (add.status, add.output) == (("finish", (x + y).to_bytes(32, "big")) if x + y < 2**256 else ("revert", b""))
    assert (sub.status, sub.output) == (("finish", (x - y).to_bytes(32, "big")) if x >= y else ("revert", b""))
    assert probe_call(host, probe, 3, x, y).output == int(x < y).to_bytes(32, "big")
    assert probe_call(host, probe, 4, x, y).output == int(x == y).to_bytes(32, "big")
    assert probe_call(host, probe, 4, x, x).output == (1).to_bytes(32, "big")
    to128 = probe_call(host, probe, 6, x, 0)
    assert (to128.status, to128.output) == (("finish", x.to_bytes(32, "big")) if x < 2**128 else ("revert", b""))
    as64 = probe_call(host, probe, 5, x)
    assert (as64.status, as64.output) == (("finish", ((x + 1) % 2**64).to_bytes(32, "big")) if x < 2**64
                                          else ("revert", b""))
