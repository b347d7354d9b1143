"""`ewasm deploy` and `ewasm call` against a real devnet process: WAT built and deployed,
a committed deployer sent as it is, one call decoded, and each failure one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from eth_account import Account

from tests.clients.devnet import REPO, start_devnet, stop

EXAMPLES = REPO / "contracts" / "examples"
EWASM = [sys.executable, "-m", "ewasm_cli"]


def ewasm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EWASM, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=REPO)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    dev = Account.create()
    process, _, port = start_devnet(tmp_path_factory.mktemp("deploy") / "db", "--dev-key", bytes(dev.key).hex())
    yield f"http://127.0.0.1:{port}/", "0x" + bytes(dev.key).hex(), dev.address
    stop(process)


def test_a_wat_contract_is_built_deployed_and_called(devnet):
    url, key, _ = devnet
    done = ewasm("deploy", EXAMPLES / "counter.wat", "--rpc", url, "--key", key, "--json")
    assert done.returncode == 0, done.stderr
    deployed = json.loads(done.stdout)
    assert deployed["gasUsed"] > 0 and deployed["meteredCodeBytes"] > 409  # the metered code is larger
    get = ewasm("call", deployed["address"], "get() returns (uint256)", "--rpc", url)
    assert get.returncode == 0 and get.stdout.strip() == "0", get.stderr


def test_the_token_deployer_mints_to_the_deployer_and_a_call_decodes_by_the_abi_file(devnet):
    url, key, address = devnet
    done = ewasm("deploy", EXAMPLES / "token.deploy.wasm", "--rpc", url, "--key", key)
    assert done.returncode == 0 and done.stdout.startswith("deployed"), done.stderr
    token = done.stdout.split(" at ")[1].split()[0]
    balance = ewasm("call", token, "balanceOf(address)", address, "--rpc", url, "--abi",
                    EXAMPLES / "token.abi.json", "--json")
    assert json.loads(balance.stdout)["result"] == [10**24], balance.stderr
    raw = ewasm("call", token, "totalSupply()", "--rpc", url)  # no types given: the raw result
    assert raw.stdout.strip() == "0x" + (10**24).to_bytes(32, "big").hex()


def test_each_failure_is_one_line_with_its_reason(devnet, tmp_path):
    url, key, _ = devnet
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    floaty = tmp_path / "floaty.wat"
    floaty.write_text('(module (memory (export "memory") 1) (func (export "main") (drop (f32.const 1))))')
    cases = [
        (["deploy", EXAMPLES / "counter.wat", "--rpc", closed, "--key", key], 2, "cannot reach the node"),
        (["deploy", floaty, "--rpc", url, "--key", key], 1, "the chain would refuse this module"),
        (["deploy", EXAMPLES / "token.deploy.wasm", "--rpc", url, "--key", key, "--gas", "310000"], 1,
         "the deployment failed: OUT_OF_GAS"),
        (["deploy", EXAMPLES / "counter.wat", "--rpc", url, "--key", "0x12"], 2, "--key"),
        (["call", "0x" + "00" * 19 + "01", "nope", "--rpc", url], 2, "signature"),
    ]
    for args, code, reason in cases:
        done = ewasm(*args)
        assert done.returncode == code and "Traceback" not in done.stderr, (args, done.stderr)
        (line,) = done.stderr.strip().splitlines()
        assert reason in line, (args, line)
