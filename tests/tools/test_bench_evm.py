"""`ewasm bench evm`: every side returns the same outputs, and gas is reported on every side.

No timing is asserted: times depend on the machine. The quick run happens once
per test module (a few seconds) and its JSON is shared by the tests below.
"""

from __future__ import annotations

import hashlib
import json

import pytest

pytest.importorskip("vyper", reason="the EVM benchmark needs the bench extra")
pytest.importorskip("pyrevm", reason="the EVM benchmark needs the bench extra")
pytest.importorskip("eth", reason="the EVM benchmark needs the bench extra")

from eth_hash.auto import keccak  # noqa: E402

from ewasm_cli.evmbench.backend import CallResult  # noqa: E402
from ewasm_cli.evmbench.evm_contracts import compile_contract, hashmap_slot, token_storage  # noqa: E402
from ewasm_cli.evmbench.revm_backend import RevmBackend  # noqa: E402
from ewasm_cli.evmbench.runner import Row, compare, load_backends  # noqa: E402
from ewasm_cli.evmbench.workloads import SENDER, SHA256_INPUT, TOKEN_SUPPLY, workloads  # noqa: E402
from ewasm_cli.main import main  # noqa: E402

MASK64 = (1 << 64) - 1


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Run `ewasm bench evm --quick` once, with every output file."""
    out = tmp_path_factory.mktemp("bench_evm")
    paths = {"json": out / "bench.json", "plot": out / "bench.png", "markdown": out / "bench.md"}
    argv = ["bench", "evm", "--quick"]
    for option, path in paths.items():
        argv += [f"--{option}", str(path)]
    code = main(argv)
    return code, json.loads(paths["json"].read_text()), paths


def test_quick_run_succeeds_with_one_json_object_per_workload(quick_run):
    code, rows, _ = quick_run
    assert code == 0
    assert [r["name"] for r in rows] == [w.name for w in workloads(quick=True)]
    for row in rows:
        assert set(row) >= {"name", "params", "wasm_us", "wasm_unmetered_us", "revm_us", "pyevm_us",
                            "wasm_gas", "evm_gas", "outputs_match"}


def test_every_backend_runs():
    _, unavailable = load_backends()
    assert unavailable == {}


def test_every_workload_returns_the_same_outputs_on_every_side(quick_run):
    _, rows, _ = quick_run
    for row in rows:
        assert row["outputs_match"] is True, row
        assert row["compared"] == ["wasm", "wasm_unmetered", "revm", "pyevm"], row


def test_gas_is_positive_on_both_sides_and_both_evms_agree(quick_run):
    _, rows, _ = quick_run
    for row in rows:
        assert row["evm_gas"] > 0, row
        assert row["wasm_gas"] > 0, row
        assert row["gas_by_backend"]["revm"] == row["gas_by_backend"]["pyevm"], row


def test_times_are_reported_for_every_backend_that_ran(quick_run):
    _, rows, _ = quick_run
    for row in rows:
        for column in ("wasm_us", "wasm_unmetered_us", "revm_us", "pyevm_us"):
            assert row[column] > 0, (column, row)


def test_plot_and_markdown_are_written(quick_run):
    _, rows, paths = quick_run
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = paths["markdown"].read_text()
    assert table.startswith("| workload |")
    table_lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(table_lines) == len(rows) + 1  # header plus one line per workload


def _expected_output(workload) -> bytes:
    """The workload's definition computed in plain Python, independently of any contract."""
    n = workload.params.get("n")
    if workload.signature == "sumOfSquares(uint256)":
        return (sum(i * i for i in range(1, n + 1)) & MASK64).to_bytes(32, "big")
    if workload.signature == "fib(uint256)":
        a, b = 0, 1
        for _ in range(n):
            a, b = b, (a + b) & MASK64
        return a.to_bytes(32, "big")
    if workload.signature.startswith("keccakRounds"):
        h = bytes(32)
        for _ in range(n):
            h = keccak(h)
        return h
    if workload.signature == "sha256Precompile(uint256)":
        return hashlib.sha256(SHA256_INPUT).digest()
    if workload.signature == "balanceOf(address)":
        return (TOKEN_SUPPLY - 1_000).to_bytes(32, "big")
    if workload.signature == "transfer(address,uint256)":
        return (1).to_bytes(32, "big")
    raise AssertionError(workload.signature)


def test_evm_contracts_compute_what_the_workloads_define():
    revm = RevmBackend()
    for workload in workloads(quick=True):
        result = revm.call(workload, 0)
        assert result.success, workload.label
        assert result.output == _expected_output(workload), workload.label


def test_a_transfer_logs_transfer_from_sender_to_recipient():
    transfer = workloads(quick=True)[0]
    result = RevmBackend().call(transfer, 0)
    (topics, data), = result.logs
    assert topics[0] == keccak(b"Transfer(address,address,uint256)")
    assert topics[1] == SENDER.rjust(32, b"\0")
    assert int.from_bytes(data, "big") == 1


def test_the_token_constructor_leaves_the_storage_layout_the_benchmark_loads():
    from eth_abi import encode
    from pyrevm import EVM

    token = compile_contract("token")
    evm = EVM(spec_id="Cancun")
    address = evm.deploy("0x" + SENDER.hex(), token.bytecode + encode(["uint256"], [TOKEN_SUPPLY]))
    balances = token.storage_slots["balanceOf"]
    assert evm.storage(address, hashmap_slot(balances, SENDER)) == TOKEN_SUPPLY
    assert evm.storage(address, token.storage_slots["totalSupply"]) == TOKEN_SUPPLY
    assert set(token_storage(token)) >= {hashmap_slot(balances, SENDER), token.storage_slots["totalSupply"]}


def test_revm_charges_a_first_touch_on_every_measured_call():
    revm = RevmBackend()
    transfer = workloads(quick=True)[0]
    gases = {revm.call(transfer, i).gas for i in range(5)}
    assert len(gases) == 1
    # Two cold SLOADs (2100 each) and two SSTORE resets (2900 each) are in there.
    balance_of = workloads(quick=True)[2]
    assert revm.call(balance_of, 0).gas > 21_000 + 2_100


def _result(output: bytes, success: bool = True, gas: int = 1) -> CallResult:
    return CallResult(success, output, (), gas, 0.0)


def test_a_row_whose_outputs_differ_is_marked():
    row = Row(workloads(quick=True)[3])
    compare(row, {"revm": _result(b"\x01"), "pyevm": _result(b"\x02")})
    assert row.outputs_match is False
    assert any("outputs differ" in note for note in row.notes)


def test_a_row_where_a_side_fails_is_marked_even_if_outputs_agree():
    row = Row(workloads(quick=True)[3])
    compare(row, {"revm": _result(b"", success=False), "pyevm": _result(b"", success=False)})
    assert row.outputs_match is False


def test_an_unwritable_output_path_is_refused_before_the_run(tmp_path, capsys):
    code = main(["bench", "evm", "--quick", "--json", str(tmp_path / "missing" / "out.json")])
    assert code == 2
    assert "not a writable directory" in capsys.readouterr().err


def test_bench_without_a_benchmark_prints_usage(capsys):
    assert main(["bench"]) == 2
    assert "evm" in capsys.readouterr().out
