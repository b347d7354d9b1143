"""ethers v6 (from npm) against a real `ewasm devnet` process, through ethers' documented API.

tests/clients/ethers_client.mjs runs every check once against one devnet and prints a JSON
summary; each test here asserts on its part of it. Without node or npm, or when the pinned
ethers cannot be installed, the tests skip (tests/clients/npm_cache.py).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from eth_account import Account

from tests.clients.devnet import start_devnet, stop
from tests.clients.npm_cache import node_executable, npm_package_or_skip

from chain_fixtures import ERC20_ABI, REPO, TOKEN_DEPLOYER

pytestmark = pytest.mark.xdist_group("network")

ETHERS_VERSION = "6.17.0"
CHAIN_ID = 1337
CLIENT = REPO / "tests" / "clients" / "ethers_client.mjs"
CLIENT_TIMEOUT = 60  # seconds; the script takes about 10


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    prefix = npm_package_or_skip("ethers", ETHERS_VERSION)  # skips without node or npm
    node = node_executable()
    work = tmp_path_factory.mktemp("ethers")
    dev = Account.create()
    process, _, port = start_devnet(work / "devnet", "--dev-key", bytes(dev.key).hex(), "--chain-id", str(CHAIN_ID))
    try:
        config = work / "config.json"
        config.write_text(json.dumps({
            "ethersPrefix": str(prefix), "http": f"http://127.0.0.1:{port}/", "ws": f"ws://127.0.0.1:{port}/",
            "key": "0x" + bytes(dev.key).hex(), "chainId": CHAIN_ID,
            "token": {"bytecode": "0x" + TOKEN_DEPLOYER.hex(), "abi": ERC20_ABI}}))
        done = subprocess.run([node, str(CLIENT), str(config)], capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT, cwd=work)
    finally:
        stop(process)
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise AssertionError(f"ethers_client.mjs exited {done.returncode} without a summary:\n"
                             f"{done.stdout}\n{done.stderr}") from None
    assert "fatal" not in result, f"ethers_client.mjs could not run: {result['fatal']}\n{done.stderr}"
    assert done.returncode == (0 if result["ok"] else 1), done.stderr
    result["dev"] = dev.address
    return result


def passed(summary, name: str) -> dict:
    """The facts check `name` gathered, or a failure with the error ethers met (and the node's RPC errors)."""
    check = summary["checks"].get(name)
    if check is None:
        earlier = {n: c["error"] for n, c in summary["checks"].items() if not c["ok"]}
        pytest.fail(f"{name} did not run; failed before it: {earlier}")
    if not check["ok"]:
        pytest.fail(f"{name}: {check['error']}\nJSON-RPC errors the node answered: {summary['rpcErrors']}")
    return check


def test_ethers_connects_and_sees_the_chain_id_and_the_funded_dev_key(summary):
    network = passed(summary, "network")
    assert int(network["chainId"]) == CHAIN_ID
    assert int(network["balance"]) == 10**24
    assert summary["address"] == summary["dev"]


def test_ethers_fee_data_has_eip1559_fields_from_a_nonzero_base_fee(summary):
    fee = passed(summary, "feeData")
    assert fee["baseFeePerGas"] is not None and int(fee["baseFeePerGas"]) > 0, fee
    assert fee["maxFeePerGas"] is not None and fee["maxPriorityFeePerGas"] is not None, fee
    assert int(fee["maxFeePerGas"]) == 2 * int(fee["baseFeePerGas"]) + int(fee["maxPriorityFeePerGas"])
    assert fee["gasPrice"] is not None and int(fee["gasPrice"]) >= int(fee["baseFeePerGas"])


def test_a_default_ethers_transaction_is_type_2_and_its_receipt_shows_the_value_moved(summary):
    sent = passed(summary, "defaultTransaction")
    assert sent["type"] == 2 and sent["fetchedType"] == 2 and sent["receipt"]["type"] == 2
    assert sent["receipt"]["status"] == 1 and sent["receipt"]["gasUsed"] == "21000"
    assert sent["recipientBalance"] == sent["value"]


def test_an_explicit_legacy_ethers_transaction_is_mined_as_type_0_with_its_gas_price(summary):
    sent = passed(summary, "legacyTransaction")
    assert sent["type"] == 0 and sent["fetchedType"] == 0 and sent["receipt"]["type"] == 0
    assert sent["receipt"]["status"] == 1
    assert sent["fetchedGasPrice"] == sent["gasPrice"] == sent["receipt"]["gasPrice"]
    assert int(sent["fetchedChainId"]) == CHAIN_ID  # signed with EIP-155
    assert sent["recipientBalance"] == sent["value"]


def test_ethers_deploys_the_token_reads_balance_of_and_transfers_with_a_transfer_log(summary):
    deployed = passed(summary, "tokenDeploy")
    assert deployed["receipt"]["status"] == 1 and deployed["codeBytes"] > 0
    token = passed(summary, "tokenCallAndTransfer")
    supply, amount = int(token["supplyBefore"]), int(token["amount"])
    assert supply > 0 and token["receipt"]["status"] == 1
    assert int(token["senderAfter"]) == supply - amount and int(token["recipientAfter"]) == amount
    (event,) = token["receiptEvents"]
    assert event["from"] == summary["dev"] and int(event["value"]) == amount


def test_ethers_finds_the_transfer_with_query_filter_and_hears_it_with_contract_on(summary):
    token = passed(summary, "tokenCallAndTransfer")
    (found,) = passed(summary, "queryFilter")["events"]
    assert found["name"] == "Transfer" and found["from"] == summary["dev"]
    assert found["value"] == token["amount"] and found["blockNumber"] == token["receipt"]["blockNumber"]
    heard = passed(summary, "contractOn")
    assert heard["from"] == summary["dev"] and heard["value"] == token["amount"]
    assert heard["transactionHash"] == found["transactionHash"]


def test_ethers_hears_a_new_block_and_a_pending_transaction_by_polling_over_http(summary):
    sent = passed(summary, "defaultTransaction")
    assert passed(summary, "httpBlockEvent")["blockNumber"] >= 1
    assert passed(summary, "httpPendingEvent")["hash"] == sent["hash"]


def test_an_ethers_websocket_provider_connects_on_the_rpc_port(summary):
    assert int(passed(summary, "wsConnect")["chainId"]) == CHAIN_ID


def test_an_ethers_websocket_provider_hears_new_heads_logs_and_pending_transactions(summary):
    trigger = passed(summary, "wsTrigger")
    assert passed(summary, "wsBlockEvent")["blockNumber"] >= 1
    heard = passed(summary, "wsLogEvent")
    assert heard["from"] == summary["dev"] and heard["value"] == "1"
    assert heard["transactionHash"] == trigger["hash"]
    assert passed(summary, "wsPendingEvent")["hash"] == trigger["hash"]


def test_the_node_answers_ethers_with_no_json_rpc_error(summary):
    assert summary["rpcErrors"] == []
