"""`ewasm statetest` and `ewasm run` end to end, through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

from ewasm_cli.main import main
from tests.ewasm_runtime.helpers import contract

CASES = Path(__file__).parent / "statetests" / "basic.json"
SENDER = "0xa94f5374fce5edbc8e2a8697c15331677e6ebf0b"
COINBASE = "0x2adc25665018aa1fe0e6bc666dac8fc2697ff9ba"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_statetest_prints_the_post_state_of_every_case(capsys):
    code, out, _ = run_cli(capsys, "statetest", str(CASES), "--no-metering")
    assert code == 0
    post = json.loads(out)
    assert set(post) == {"storeCallData[d0,g0,v0]", "storeCallData[d1,g0,v0]", "createContract", "wrongNonceChangesNothing"}
    store = post["storeCallData[d1,g0,v0]"]["0x0f572e5295c57f15886f9b263e2f6d2d6c7b5ec6"]["storage"]
    assert store == {"0x" + "00" * 32: "0x" + "00" * 31 + "02"}
    # 21000 + 31*4 + 68 (data) + 50 (useGas) + 6 (copy) + 20000 (store) + 375 + 256 (log)
    assert post["storeCallData[d0,g0,v0]"][COINBASE]["balance"] == hex(41879)
    created = post["createContract"]
    assert created[SENDER]["nonce"] == "0x1"
    (new,) = [a for a in created if a not in (SENDER, COINBASE)]
    assert created[new]["nonce"] == "0x1" and created[new]["balance"] == "0x64" and created[new]["code"] != "0x"
    assert post["wrongNonceChangesNothing"] == {SENDER: {"balance": "0xde0b6b3a7640000", "nonce": "0x0", "code": "0x", "storage": {}}}


def test_statetest_with_metering_meters_pre_state_and_created_code(capsys):
    code, out, _ = run_cli(capsys, "statetest", str(CASES))
    assert code == 0
    post = json.loads(out)
    stored = post["storeCallData[d0,g0,v0]"]["0x0f572e5295c57f15886f9b263e2f6d2d6c7b5ec6"]
    assert stored["storage"]  # still works when metered
    assert bytes.fromhex(stored["code"][2:]).find(b"gas_left") > 0


def test_statetest_rejects_a_malformed_file_with_exit_code_2(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"t": {"env": {}}}')
    code, _, err = run_cli(capsys, "statetest", str(bad))
    assert code == 2 and "malformed" in err
    bad.write_text("not json")
    assert run_cli(capsys, "statetest", str(bad))[0] == 2


def test_run_executes_a_call_with_abi_arguments_and_keeps_the_state(capsys, tmp_path):
    wasm = tmp_path / "echo.wasm"
    wasm.write_bytes(contract("(call $callDataCopy (i32.const 0) (i32.const 0) (call $getCallDataSize))"
                              "(call $storageStore (i32.const 4) (i32.const 4))"
                              "(call $finish (i32.const 0) (call $getCallDataSize))"))
    state = tmp_path / "state.json"
    code, out, _ = run_cli(capsys, "run", str(wasm), "--abi", "f(uint256)", "7", "--state", str(state), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["status"] == "SUCCESS" and result["output"].endswith("07") and result["output"].startswith("b3de648b")
    saved = json.loads(state.read_text())
    assert any(acct["storage"] for acct in saved.values())


def test_run_reports_failure_with_exit_code_1_and_bad_input_with_2(capsys, tmp_path):
    wasm = tmp_path / "trap.wasm"
    wasm.write_bytes(contract("unreachable"))
    code, out, _ = run_cli(capsys, "run", str(wasm), "--calldata", "00", "--gas", "100000")
    assert code == 1 and "TRAP" in out
    assert run_cli(capsys, "run", str(wasm), "--calldata", "zz")[0] == 2
    assert run_cli(capsys, "run", str(tmp_path / "missing.wasm"))[0] == 2
    assert run_cli(capsys, "run", str(wasm), "--abi", "f(uint256)")[0] == 2
