"""web3.py contract objects over the examples' ABI files, unchanged: transact() (signed
locally by web3's own middleware), call(), and events decoded from a receipt."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder

from contracts.build import EXAMPLES_DIR

from chain_fixtures import dev_node


def abi(name: str) -> list:
    return json.loads((EXAMPLES_DIR / f"{name}.abi.json").read_text())


@pytest.fixture(scope="module")
def w3(tmp_path_factory):
    dev = Account.create()
    node = dev_node(str(tmp_path_factory.mktemp("objects") / "db"), dev.address)
    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{node.rpc.port}/", request_kwargs={"timeout": 30}))
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(dev), layer=0)
    w3.eth.default_account = dev.address
    yield w3
    node.stop()


def deploy(w3, name: str) -> str:
    code = (EXAMPLES_DIR / f"{name}.deploy.wasm").read_bytes()
    tx_hash = w3.eth.send_transaction({"data": code, "gas": 5_000_000})
    return w3.eth.wait_for_transaction_receipt(tx_hash, 30).contractAddress


def test_the_token_transfers_answers_and_logs_through_its_abi_file(w3):
    token = w3.eth.contract(address=deploy(w3, "token"), abi=abi("token"))
    recipient = Account.create().address
    supply = token.functions.totalSupply().call()
    assert token.functions.balanceOf(w3.eth.default_account).call() == supply == 10**24
    receipt = w3.eth.wait_for_transaction_receipt(token.functions.transfer(recipient, 1234).transact(), 30)
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert (event.args["from"], event.args.to, event.args.value) == (w3.eth.default_account, recipient, 1234)
    assert token.functions.balanceOf(recipient).call() == 1234


def test_the_counter_and_the_workloads_answer_through_their_abi_files(w3):
    counter = w3.eth.contract(address=deploy(w3, "counter"), abi=abi("counter"))
    w3.eth.wait_for_transaction_receipt(counter.functions.increment().transact(), 30)
    assert counter.functions.get().call() == 1
    workloads = w3.eth.contract(address=deploy(w3, "workloads"), abi=abi("workloads"))
    assert workloads.functions.fib(10).call() == 55 and workloads.functions.sumOfSquares(3).call() == 14
