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

from chain.core.spec import dev_spec, parse_spec
from chain.ledger.blockchain import Blockchain
from chain.node.config import NodeConfig
from chain.node.node import Node
from chain.state.proofs import verify_account_proof
from contracts.token import balance_slot

from chain_fixtures import CHAIN_ID, ERC20_ABI, SPIN, SPINNER, TOKEN_DEPLOYER, dev_node, with_spinner


@pytest.fixture(scope="module")
def dev():
    return Account.create()


@pytest.fixture(scope="module")
def node(tmp_path_factory, dev):
    node = dev_node(str(tmp_path_factory.mktemp("rpc") / "db"), dev.address, spinner=True)
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
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
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

    slot = balance_slot(bytes.fromhex(recipient[2:]))
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


def test_web3_filters_report_new_blocks_pending_transactions_and_matching_logs_once(node, w3, dev):
    nonce = w3.eth.get_transaction_count(dev.address)
    deploy = dev.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 5_000_000,
                                   "maxFeePerGas": w3.eth.gas_price, "maxPriorityFeePerGas": 1,
                                   "data": TOKEN_DEPLOYER, "value": 0})
    address = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(deploy.raw_transaction),
                                                  30).contractAddress
    token = w3.eth.contract(address=address, abi=ERC20_ABI)
    blocks, pending = w3.eth.filter("latest"), w3.eth.filter("pending")
    transfers = token.events.Transfer.create_filter(from_block="latest")
    recipient = Account.create().address
    signed = dev.sign_transaction(token.functions.transfer(recipient, 77).build_transaction(
        {"from": dev.address, "chainId": CHAIN_ID, "nonce": nonce + 1}))
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), 30)
    assert receipt.blockHash in blocks.get_new_entries() and blocks.get_new_entries() == []
    assert receipt.transactionHash in pending.get_new_entries()
    (event,) = transfers.get_new_entries()
    assert (event.args.to, event.args.value) == (recipient, 77) and transfers.get_new_entries() == []
    assert [e.args.value for e in transfers.get_all_entries()] == [77]  # eth_getFilterLogs: its range, the head
    assert w3.eth.uninstall_filter(blocks.filter_id) and not w3.eth.uninstall_filter(blocks.filter_id)
    answer = rpc(node, "eth_getFilterChanges", blocks.filter_id)
    assert answer["error"] == {"code": -32000, "message": "filter not found"}
    assert rpc(node, "eth_newFilter", {"topics": ["0x12"]})["error"]["code"] == -32602


def test_a_legacy_eip155_transfer_through_web3_is_included_and_rendered_as_type_0(w3, dev):
    to = Web3.to_checksum_address("0x" + "3c" * 20)
    signed = dev.sign_transaction({"nonce": w3.eth.get_transaction_count(dev.address), "gasPrice": w3.eth.gas_price,
                                   "gas": 21_000, "to": to, "value": 11, "chainId": CHAIN_ID})
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), 30)
    assert receipt.status == 1 and receipt.type == 0
    tx = w3.eth.get_transaction(receipt.transactionHash)
    assert tx.type == 0 and tx.v == signed.v and tx.gasPrice == w3.eth.gas_price and "accessList" not in tx
    assert w3.eth.get_balance(to) == 11


def test_a_blocks_transactions_and_receipts_are_found_by_number_or_hash_and_index(node, w3, dev):
    to = Web3.to_checksum_address("0x" + "3d" * 20)
    signed = dev.sign_transaction({"type": 2, "nonce": w3.eth.get_transaction_count(dev.address), "gas": 21_000,
                                   "maxFeePerGas": 10, "maxPriorityFeePerGas": 1, "to": to, "value": 1,
                                   "chainId": CHAIN_ID, "accessList": []})
    receipt = rpc(node, "eth_getTransactionReceipt", w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), 30).transactionHash.to_0x_hex())["result"]
    number, block_hash, index = receipt["blockNumber"], receipt["blockHash"], receipt["transactionIndex"]
    count = rpc(node, "eth_getBlockTransactionCountByNumber", number)["result"]
    assert int(count, 16) > int(index, 16)
    assert rpc(node, "eth_getBlockTransactionCountByHash", block_hash)["result"] == count
    for method, block in (("eth_getTransactionByBlockNumberAndIndex", number),
                          ("eth_getTransactionByBlockHashAndIndex", block_hash)):
        assert rpc(node, method, block, index)["result"]["hash"] == receipt["transactionHash"]
        assert rpc(node, method, block, count)["result"] is None  # past the last transaction
    for block in (number, block_hash):
        assert rpc(node, "eth_getBlockReceipts", block)["result"][int(index, 16)] == receipt
    assert rpc(node, "eth_getBlockTransactionCountByNumber", "0xffffff")["result"] is None
    assert rpc(node, "eth_getBlockReceipts", "0x" + "00" * 32)["result"] is None
    assert rpc(node, "eth_getTransactionByBlockNumberAndIndex", number, "one")["error"]["code"] == -32602


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
    base = {"type": 2, "chainId": CHAIN_ID, "gas": 30_000, "maxFeePerGas": 10, "maxPriorityFeePerGas": 1,
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


# -- hostile requests -----------------------------------------------------------------
def strict_json(raw: bytes):
    return json.loads(raw, parse_constant=lambda name: pytest.fail(f"{name} in a response"))


@pytest.mark.parametrize("body, code", [
    (b"[" * 100_000, -32700),  # nesting as deep as the parser goes: this killed the process
    (b"1" * 5000, -32700),  # an integer Python will not convert
    (b'{"jsonrpc": "2.0", "id": NaN, "method": "eth_chainId"}', -32700),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": [Infinity]}', -32700),
    (b"\xff\xfe\xfa", -32700),
    (b'{"jsonrpc": "2.0", "id": [1], "method": "eth_chainId"}', -32600),
    (b'{"jsonrpc": "2.0", "id": 1e999, "method": "eth_chainId"}', -32600),
    (b'{"jsonrpc": "2.0", "id": 9007199254740993, "method": "eth_chainId"}', -32600),
    (b'{"jsonrpc": "2.0", "id": "' + b"x" * 257 + b'", "method": "eth_chainId"}', -32600),
    (b'{"jsonrpc": "2.0", "id": true, "method": "eth_chainId"}', -32600),
])
def test_malformed_json_and_invalid_ids_get_json_rpc_errors_with_id_null_never_http_500(node, body, code):
    request = urllib.request.Request(f"http://127.0.0.1:{node.rpc.port}/", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # raises on any HTTP error status
        answer = strict_json(response.read())
    assert answer["id"] is None and answer["error"]["code"] == code and answer["error"]["message"]
    assert rpc(node, "eth_chainId")["result"] == hex(CHAIN_ID)


@pytest.mark.parametrize("method, params, fragment", [
    ("eth_call", [{"to": "0x" + "11" * 20, "value": hex(2**128)}, "latest"], "value: 340282366920938463463374607431768211456 is above"),
    ("eth_call", [{"to": "0x" + "11" * 20, "gas": hex(2**64)}, "latest"], "gas: 18446744073709551616 is above"),
    ("eth_estimateGas", [{"to": "0x" + "11" * 20, "value": "0x" + "f" * 64}], "value:"),
    ("eth_call", [{"to": "0x" + "11" * 20, "data": "0x00", "input": "0x01"}], "differ"),
    ("eth_feeHistory", [[1], "latest", []], "blockCount"),
    ("eth_feeHistory", [-1, "latest", []], "blockCount: expected 0 to 1024"),
    ("eth_feeHistory", ["0x401", "latest", []], "blockCount: expected 0 to 1024"),
    ("eth_feeHistory", [True, "latest"], "blockCount"),
    ("eth_feeHistory", ["0x2", "latest", [50, 10]], "rising"),
    ("eth_feeHistory", ["0x2", "latest", "x"], "rewardPercentiles"),
    ("eth_getBlockByNumber", ["latest", "yes"], "fullTransactions"),
    ("eth_getLogs", [{"fromBlock": "0x1", "toBlock": "0x0"}], "after toBlock"),
    ("eth_getLogs", [{"blockHash": "0x" + "00" * 32, "fromBlock": "0x0"}], "excludes"),
    ("eth_getLogs", [{"address": ["0x" + "11" * 20] * 1001}], "at most 1000"),
    ("eth_getProof", ["0x" + "11" * 20, ["0x0"] * 1025, "latest"], "at most 1024 keys"),
    ("eth_getBalance", ["0x" + "11" * 20, {"requireCanonical": True}], "block"),
    ("eth_getBalance", ["0x" + "11" * 20 + "\n"], "address"),
    ("ewasm_proposeValidatorVote", ["0x" + "11" * 19, True], "address"),
    ("ewasm_proposeValidatorVote", ["0x" + "11" * 20, "yes"], "add: expected true or false"),
    ("ewasm_proposeValidatorVote", ["0x" + "11" * 20], "add"),
])
def test_parameters_out_of_range_are_the_callers_error_not_an_internal_one(node, method, params, fragment):
    answer = rpc(node, method, *params)
    assert answer["error"]["code"] == -32602, answer
    assert fragment in answer["error"]["message"]


def test_a_validator_vote_on_a_chain_without_the_validator_contract_is_refused_with_the_reason(node):
    answer = rpc(node, "ewasm_proposeValidatorVote", "0x" + "11" * 20, True)
    assert answer["error"]["code"] == -32003
    assert "vote refused" in answer["error"]["message"] and "fixed in its spec" in answer["error"]["message"]


def test_a_value_above_128_bits_fails_the_range_check_before_any_balance_check(node):
    poor = "0x" + "42" * 20
    answer = rpc(node, "eth_estimateGas", {"from": poor, "to": "0x" + "11" * 20, "value": hex(2**128)})
    assert answer["error"]["code"] == -32602 and "value" in answer["error"]["message"]


def test_fee_history_takes_a_plain_count_and_shapes_the_rewards_by_the_percentiles(node):
    history = rpc(node, "eth_feeHistory", 2, "latest", [25, 75])["result"]
    assert len(history["baseFeePerGas"]) == len(history["gasUsedRatio"]) + 1
    assert all(len(rewards) == 2 for rewards in history["reward"])
    assert "reward" not in rpc(node, "eth_feeHistory", "0x1", "latest")["result"]


def test_notifications_get_no_answer_and_invalid_ones_still_get_an_error(node):
    assert post(node, '{"jsonrpc": "2.0", "method": "eth_chainId"}') == (204, None)
    status, answer = post(node, json.dumps([{"jsonrpc": "2.0", "method": "eth_chainId"},
                                            {"jsonrpc": "2.0", "method": 7}]))
    assert [a["error"]["code"] for a in answer] == [-32600]


def test_a_client_that_drops_mid_body_is_one_debug_line_not_a_traceback(node, caplog):
    import logging
    import socket

    caplog.set_level(logging.DEBUG)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", node.rpc.port)) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"jsonrpc\"")
    with socket.create_connection(("127.0.0.1", node.rpc.port)) as sock:  # and a malformed HTTP body
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        sock.recv(1000)
    deadline = time.time() + 5
    while time.time() < deadline and sum("went away" in r.getMessage() for r in caplog.records) < 20:
        time.sleep(0.05)
    assert sum("went away" in r.getMessage() for r in caplog.records) == 20
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert rpc(node, "eth_chainId")["result"] == hex(CHAIN_ID)


def test_a_batch_of_calls_that_burn_all_their_gas_stops_at_its_gas_budget_and_never_stalls_eth_chain_id(node):
    """The attack: 1,000 eth_calls that loop until out of gas, in one batch. Each call may
    use the block gas limit (30M); the batch may use 300M in all, so ten run and the rest
    are refused, while cheap requests are answered meanwhile."""
    import threading

    call = {"to": "0x" + SPINNER.hex(), "data": SPIN}
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [call, "latest"]} for i in range(1000)]
    answers, latencies = [], []
    heavy = threading.Thread(target=lambda: answers.extend(post(node, json.dumps(batch))[1]))
    heavy.start()
    while heavy.is_alive():
        started = time.perf_counter()
        assert rpc(node, "eth_chainId")["result"] == hex(CHAIN_ID)
        latencies.append(time.perf_counter() - started)
    heavy.join()
    codes = [a["error"]["code"] for a in answers]
    assert codes.count(-32000) == 10 and codes.count(-32005) == 990
    assert "OUT_OF_GAS" in answers[0]["error"]["message"] and "gas budget" in answers[-1]["error"]["message"]
    assert max(latencies) < 1.0


def test_future_nonce_spam_from_an_unfunded_key_is_refused_past_its_queue_with_its_own_error(tmp_path, dev):
    """On a chain without fees (a consortium may choose one) such spam costs its sender
    nothing upfront, so only the queue's limits stop it."""
    from chain.core.keys import PrivateKey
    from chain.tx.signing import sign_scoped_transaction

    datadir = str(tmp_path / "db")
    spec = dev_spec(bytes.fromhex(dev.address[2:]), chain_id=CHAIN_ID, base_fee=0)
    Blockchain.initialize(datadir, parse_spec(spec)).close()
    free = Node(NodeConfig(datadir=datadir, rpc_port=0))
    free.start()
    try:
        key = PrivateKey.generate()
        raws = [sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=21_000, to=b"\x22" * 20,
                                        scope=[key.address, b"\x22" * 20], max_fee_per_gas=0,
                                        max_priority_fee_per_gas=0)
                for nonce in range(1, 66)]
        status, answers = post(free, json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                                                  "params": ["0x" + raw.hex()]} for i, raw in enumerate(raws)]))
        assert all("result" in a for a in answers[:64])
        assert answers[64]["error"]["code"] == -32003
        assert answers[64]["error"]["message"].startswith("too many queued transactions: sender 0x")
        assert "send nonce 0 first" in answers[64]["error"]["message"]
        assert int(rpc(free, "txpool_status")["result"]["queued"], 16) == 64
    finally:
        free.stop()


def test_on_a_chain_with_a_base_fee_a_transaction_offering_less_is_refused_at_once(node):
    from chain.core.keys import PrivateKey
    from chain.tx.signing import sign_scoped_transaction

    key = PrivateKey.generate()
    raw = sign_scoped_transaction(key, chain_id=CHAIN_ID, nonce=1, gas_limit=21_000, to=b"\x22" * 20,
                                  scope=[key.address, b"\x22" * 20], max_fee_per_gas=6, max_priority_fee_per_gas=0)
    answer = rpc(node, "eth_sendRawTransaction", "0x" + raw.hex())
    assert answer["error"]["code"] == -32003 and "base fee" in answer["error"]["message"], answer


def test_an_execution_request_past_its_time_limit_is_answered_with_a_timeout(tmp_path, dev):
    from chain.rpc.lanes import LaneLimits
    from chain.rpc.server import RpcLimits

    from chain_fixtures import HOST_SPIN

    datadir = str(tmp_path / "db")
    from ewasm_runtime import native

    # The call must outlast the answers below: 30M gas of host calls take about 0.3 s with
    # the native EEI and 11 s with the reference one.
    gas = 300_000_000 if native.default() else 3_000_000
    spec = with_spinner(dev_spec(bytes.fromhex(dev.address[2:]), chain_id=CHAIN_ID))
    spec["params"]["gasLimit"] = max(gas, 30_000_000)
    Blockchain.initialize(datadir, parse_spec(spec)).close()
    limits = RpcLimits(lanes={**RpcLimits().lanes, "execution": LaneLimits(workers=1, queue=0, timeout=0.3)})
    slow = Node(NodeConfig(datadir=datadir, rpc_port=0, rpc=limits))
    slow.start()
    try:
        started = time.monotonic()
        answer = rpc(slow, "eth_call", {"to": "0x" + SPINNER.hex(), "data": HOST_SPIN, "gas": hex(gas)})
        assert answer["error"]["code"] == -32005 and answer["error"]["message"] == "eth_call: timed out after 0.3 s"
        assert time.monotonic() - started < 2
        busy = rpc(slow, "eth_call", {"to": "0x" + SPINNER.hex(), "data": SPIN})  # the worker is still spinning
        assert busy["error"]["code"] == -32005 and "server busy" in busy["error"]["message"]
        assert rpc(slow, "eth_chainId")["result"] == hex(CHAIN_ID)
    finally:
        slow.stop()


def test_slow_clients_hold_only_their_share_of_the_server_and_only_for_the_body_timeout(tmp_path, dev):
    import socket

    from chain.rpc.server import RpcLimits

    datadir = str(tmp_path / "db")
    Blockchain.initialize(datadir, parse_spec(dev_spec(bytes.fromhex(dev.address[2:]), chain_id=CHAIN_ID))).close()
    guarded = Node(NodeConfig(datadir=datadir, rpc_port=0, rpc=RpcLimits(max_requests_per_client=2,
                                                                        body_timeout=0.5)))
    guarded.start()
    slow = []
    try:
        for _ in range(2):  # bodies that never finish arriving
            sock = socket.create_connection(("127.0.0.1", guarded.rpc.port))
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            slow.append(sock)
        time.sleep(0.1)
        answer = rpc(guarded, "eth_chainId")
        assert answer["error"]["code"] == -32005 and "from this client (at most 2)" in answer["error"]["message"]
        for sock in slow:
            sock.settimeout(5)
            assert sock.recv(100).startswith(b"HTTP/1.1 408")
        assert rpc(guarded, "eth_chainId")["result"] == hex(CHAIN_ID)
    finally:
        for sock in slow:
            sock.close()
        guarded.stop()


def test_fee_history_gas_price_and_priority_fee_agree_with_the_blocks(node, w3, dev):
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    assert base == 7 and w3.eth.gas_price == base + w3.eth.max_priority_fee
    tx = dev.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": w3.eth.get_transaction_count(dev.address),
                               "gas": 21_000, "maxFeePerGas": base + 5, "maxPriorityFeePerGas": 3,
                               "to": Account.create().address, "value": 1})
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction), 30)
    assert receipt.effectiveGasPrice == base + 3
    history = w3.eth.fee_history(1, receipt.blockNumber, [10, 90])
    block = w3.eth.get_block(receipt.blockNumber)
    assert history.oldestBlock == receipt.blockNumber and history.baseFeePerGas == [base, base]
    assert history.gasUsedRatio == [block.gasUsed / block.gasLimit] and history.reward == [[3, 3]]


def test_fee_history_percentiles_must_rise_strictly_as_geth_requires(node):
    answer = rpc(node, "eth_feeHistory", "0x1", "latest", [50, 50])
    assert answer["error"]["code"] == -32602 and "strictly rising" in answer["error"]["message"]
