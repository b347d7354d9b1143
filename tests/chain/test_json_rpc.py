"""The node over real HTTP: web3.py with eth-account keys, and hostile requests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError

from chain.blockchain import Blockchain
from chain.node import Node, NodeConfig
from chain.proofs import verify_account_proof
from chain.spec import dev_spec, parse_spec

from chain_fixtures import CHAIN_ID, TOKEN_DEPLOYER, token_slot

ERC20_ABI = [
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "event", "name": "Transfer", "anonymous": False,
     "inputs": [{"name": "from", "type": "address", "indexed": True},
                {"name": "to", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
]


@pytest.fixture(scope="module")
def dev():
    return Account.create()


@pytest.fixture(scope="module")
def node(tmp_path_factory, dev):
    datadir = str(tmp_path_factory.mktemp("rpc") / "db")
    Blockchain.initialize(datadir, parse_spec(dev_spec(bytes.fromhex(dev.address[2:]), chain_id=CHAIN_ID))).close()
    node = Node(NodeConfig(datadir=datadir, rpc_port=0))
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def w3(node):
    return Web3(Web3.HTTPProvider(f"http://127.0.0.1:{node.rpc.port}/", request_kwargs={"timeout": 30}))


def post(node, body: bytes | str):
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(f"http://127.0.0.1:{node.rpc.port}/", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def rpc(node, method, *params):
    return post(node, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}))[1]


def test_web3_deploys_the_token_transfers_and_reads_receipt_logs_balance_and_proof(w3, dev):
    assert w3.eth.chain_id == CHAIN_ID
    assert w3.eth.get_balance(dev.address) == 10**24
    nonce = w3.eth.get_transaction_count(dev.address)
    deploy = dev.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 5_000_000,
                                   "maxFeePerGas": w3.eth.gas_price, "maxPriorityFeePerGas": 1,
                                   "data": TOKEN_DEPLOYER, "value": 0})
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(deploy.raw_transaction), timeout=30)
    assert receipt.status == 1
    token = w3.eth.contract(address=receipt.contractAddress, abi=ERC20_ABI)
    assert len(w3.eth.get_code(token.address)) > 0

    recipient = Account.create().address
    tx = token.functions.transfer(recipient, 1234).build_transaction({"from": dev.address, "chainId": CHAIN_ID,
                                                                     "nonce": nonce + 1})
    signed = dev.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt.status == 1 and receipt.transactionHash == tx_hash
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert (event.args["from"], event.args.to, event.args.value) == (dev.address, recipient, 1234)
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": token.address})
    assert [log.transactionHash for log in logs] == [tx_hash]
    assert token.functions.balanceOf(recipient).call() == 1234
    with pytest.raises(ContractLogicError):  # eth_call reverts with code 3, as geth answers
        token.functions.transfer(dev.address, 10**9).call({"from": recipient})
    assert w3.eth.get_transaction_count(dev.address, "pending") == nonce + 2
    assert w3.eth.get_transaction(tx_hash)["from"] == dev.address
    block = w3.eth.get_block(receipt.blockNumber)
    assert tx_hash in block.transactions and w3.eth.get_block(block.hash).number == block.number

    slot = token_slot(bytes.fromhex(recipient[2:]))
    proof = w3.eth.get_proof(token.address, ["0x" + slot.hex()], "latest")
    head = w3.eth.get_block("latest")
    assert int.from_bytes(proof.storageProof[0].value, "big") == 1234
    assert verify_account_proof(bytes(head.stateRoot), proof)
    sender_proof = w3.eth.get_proof(dev.address, [], "latest")
    assert verify_account_proof(bytes(head.stateRoot), sender_proof)
    forged = dict(sender_proof, balance=sender_proof.balance + 1)
    assert not verify_account_proof(bytes(head.stateRoot), forged)
    absent = w3.eth.get_proof(Account.create().address, [], "latest")
    assert absent.balance == 0 and verify_account_proof(bytes(head.stateRoot), absent)


def test_eth_call_to_an_account_without_code_returns_empty_output(node, dev):
    answer = rpc(node, "eth_call", {"from": dev.address, "to": "0x" + "00" * 19 + "77", "data": "0x"}, "latest")
    assert answer["result"] == "0x"


@pytest.mark.parametrize("body, code", [
    ("{not json", -32700),
    ("[]", -32600),
    ('{"jsonrpc": "2.0", "id": 1}', -32600),
    ('{"jsonrpc": "2.0", "id": 1, "method": "eth_nope", "params": []}', -32601),
    ('{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0x12"]}', -32602),
    ('{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0x' + "11" * 20 + '", "0x01"]}', -32602),
    ('{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": "x"}', -32602),
    ('{"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x02c0"]}', -32003),
])
def test_bad_requests_get_json_rpc_errors_and_the_node_stays_up(node, body, code):
    status, answer = post(node, body)
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert rpc(node, "eth_blockNumber")["result"].startswith("0x")


def test_transactions_with_bad_signature_wrong_chain_or_replayed_are_rejected(node, w3, dev):
    base = {"type": 2, "chainId": CHAIN_ID, "gas": 30_000, "maxFeePerGas": 1, "maxPriorityFeePerGas": 1,
            "to": "0x" + "22" * 20, "value": 1}
    wrong_chain = dev.sign_transaction(dict(base, chainId=1, nonce=0)).raw_transaction
    answer = rpc(node, "eth_sendRawTransaction", "0x" + bytes(wrong_chain).hex())
    assert answer["error"]["code"] == -32003 and "chain id" in answer["error"]["message"]

    stranger = Account.create()  # a valid signature from an unfunded account
    answer = rpc(node, "eth_sendRawTransaction",
                 "0x" + bytes(stranger.sign_transaction(dict(base, nonce=0)).raw_transaction).hex())
    assert "insufficient funds" in answer["error"]["message"]

    raw = bytearray(dev.sign_transaction(dict(base, nonce=w3.eth.get_transaction_count(dev.address))).raw_transaction)
    raw[-5] ^= 0xFF  # corrupt s
    answer = rpc(node, "eth_sendRawTransaction", "0x" + bytes(raw).hex())
    assert answer["error"]["code"] == -32003

    nonce = w3.eth.get_transaction_count(dev.address)
    good = dev.sign_transaction(dict(base, nonce=nonce)).raw_transaction
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(good), timeout=30)
    answer = rpc(node, "eth_sendRawTransaction", "0x" + bytes(good).hex())
    assert answer["error"]["code"] == -32003 and "replay" in answer["error"]["message"]


def test_an_oversized_body_is_refused_with_an_error(node):
    status, answer = post(node, b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["' + b"a" * (6 << 20) + b'"]}')
    assert status == 413 and answer["error"]["code"] == -32005
    assert rpc(node, "eth_chainId")["result"] == hex(CHAIN_ID)


def test_batches_answer_each_request(node):
    status, answer = post(node, json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                                            {"jsonrpc": "2.0", "id": 2, "method": "nope"}]))
    assert answer[0]["result"] == hex(CHAIN_ID) and answer[1]["error"]["code"] == -32601


def test_latest_state_queries_never_fail_while_blocks_are_committed(node, dev):
    """"latest" must mean whatever state the node holds when it answers: a block landing
    between reading the head and opening the state is no reason to refuse."""
    import threading

    errors, stop = [], threading.Event()

    def query():
        while not stop.is_set():
            reply = rpc(node, "eth_getTransactionCount", dev.address, "latest")
            if "error" in reply:
                errors.append(reply["error"])

    readers = [threading.Thread(target=query) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        start = int(rpc(node, "eth_getTransactionCount", dev.address, "pending")["result"], 16)
        for nonce in range(start, start + 25):
            tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "maxFeePerGas": 10, "maxPriorityFeePerGas": 1,
                  "gas": 21_000, "to": "0x" + "77" * 20, "value": 1, "accessList": []}
            raw = bytes(dev.sign_transaction(tx).raw_transaction)
            assert "result" in rpc(node, "eth_sendRawTransaction", "0x" + raw.hex())
        deadline = time.time() + 20
        while int(rpc(node, "eth_getTransactionCount", dev.address, "latest")["result"], 16) < start + 25:
            assert time.time() < deadline
            time.sleep(0.02)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
