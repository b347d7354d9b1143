"""JSON-RPC over WebSocket on the HTTP port: web3.py's AsyncWeb3 with WebSocketProvider
subscribes to newHeads, logs and newPendingTransactions; a subscriber that stops reading
is dropped without holding anyone else back."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import websockets
from eth_account import Account
from web3 import AsyncWeb3, Web3, WebSocketProvider

from chain.rpc.server import RpcLimits

from chain_fixtures import CHAIN_ID, ERC20_ABI, TOKEN_DEPLOYER, dev_node

TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix("0x")
@pytest.fixture(scope="module")
def dev():
    return Account.create()


@pytest.fixture(scope="module")
def node(tmp_path_factory, dev):
    node = dev_node(str(tmp_path_factory.mktemp("ws") / "db"), dev.address, rpc=RpcLimits(websocket_outbox=16))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def w3(node):
    return Web3(Web3.HTTPProvider(f"http://127.0.0.1:{node.rpc.port}/", request_kwargs={"timeout": 30}))


def url(node) -> str:
    return f"ws://127.0.0.1:{node.rpc.port}/"


def send(w3, dev, **fields) -> bytes:
    tx = {"type": 2, "chainId": CHAIN_ID, "nonce": w3.eth.get_transaction_count(dev.address, "pending"),
          "gas": 21_000, "maxFeePerGas": 2 * w3.eth.gas_price, "maxPriorityFeePerGas": 1, "value": 1,
          "to": Account.create().address, **fields}
    return w3.eth.send_raw_transaction(dev.sign_transaction(tx).raw_transaction)


def deploy_token(w3, dev) -> str:
    tx_hash = send(w3, dev, to=None, gas=5_000_000, value=0, data=TOKEN_DEPLOYER)
    return w3.eth.wait_for_transaction_receipt(tx_hash, 30).contractAddress


async def next_of(w3, subscription: str, timeout: float = 10.0):
    """The next notification of `subscription` (others are skipped)."""
    async def wait():
        async for message in w3.socket.process_subscriptions():
            if message["subscription"] == subscription:
                return message["result"]
    return await asyncio.wait_for(wait(), timeout)


def test_web3_subscribes_over_websocket_to_new_heads_logs_and_pending_transactions(node, w3, dev):
    token = deploy_token(w3, dev)

    async def scenario():
        async with AsyncWeb3(WebSocketProvider(url(node))) as ws:
            assert await ws.eth.chain_id == CHAIN_ID  # the ordinary methods answer on the socket too
            heads = await ws.eth.subscribe("newHeads")
            logs = await ws.eth.subscribe("logs", {"address": token, "topics": [TRANSFER_TOPIC]})
            pending = await ws.eth.subscribe("newPendingTransactions")
            recipient = Account.create().address
            contract = w3.eth.contract(address=token, abi=ERC20_ABI)
            data = contract.encode_abi("transfer", [recipient, 55])
            tx_hash = await asyncio.to_thread(send, w3, dev, to=token, gas=200_000, value=0, data=data)
            assert await next_of(ws, pending) == tx_hash
            receipt = await asyncio.to_thread(w3.eth.wait_for_transaction_receipt, tx_hash, 30)
            head = await next_of(ws, heads)
            while head["number"] < receipt.blockNumber:
                head = await next_of(ws, heads)
            assert head["hash"] == receipt.blockHash and "transactions" not in head
            log = await next_of(ws, logs)
            assert log["transactionHash"] == tx_hash and log["address"] == token
            assert int.from_bytes(log["data"], "big") == 55 and log["removed"] is False
            assert await ws.eth.unsubscribe(heads) is True
            again = await ws.provider.make_request("eth_unsubscribe", [heads])
            assert again["result"] is False  # it already ended

    asyncio.run(scenario())


def test_bad_subscriptions_get_json_rpc_errors_and_http_clients_are_told_to_use_a_websocket(node, w3):
    async def scenario():
        async with websockets.connect(url(node)) as ws:
            for params, message in ((["newBlocks"], "one of newHeads"), (["logs", {"fromBlock": "0x0"}], "address"),
                                    (["newHeads", {}], "takes no filter"), ([], "one of newHeads")):
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": params}))
                answer = json.loads(await ws.recv())
                assert answer["error"]["code"] == -32602 and message in answer["error"]["message"], answer
            await ws.send("{not json")
            assert json.loads(await ws.recv())["error"]["code"] == -32700
            await ws.send(json.dumps([{"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"},
                                      {"jsonrpc": "2.0", "id": 8, "method": "eth_subscribe", "params": ["newHeads"]}]))
            batch = json.loads(await ws.recv())
            assert batch[0]["result"] == hex(CHAIN_ID) and batch[1]["result"].startswith("0x")

    asyncio.run(scenario())
    answer = w3.provider.make_request("eth_subscribe", ["newHeads"])
    assert answer["error"]["code"] == -32004 and "WebSocket" in answer["error"]["message"]


def test_a_subscriber_that_stops_reading_is_dropped_and_the_others_are_served_on_time(node, w3, dev):
    async def scenario():
        # The slow one: a small receive buffer it never reads, and many subscriptions.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", node.rpc.port))
        slow = await websockets.connect(url(node), sock=sock, max_queue=None)
        for i in range(100):
            await slow.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_subscribe",
                                        "params": ["newPendingTransactions"]}))
        async with AsyncWeb3(WebSocketProvider(url(node))) as ws:
            heads = await ws.eth.subscribe("newHeads")
            slow.transport.pause_reading()  # from here on the slow client reads nothing
            for _ in range(30):
                started = time.monotonic()
                tx_hash = await asyncio.to_thread(send, w3, dev)
                receipt = await asyncio.to_thread(w3.eth.wait_for_transaction_receipt, tx_hash, 30)
                head = await next_of(ws, heads)
                while head["number"] < receipt.blockNumber:
                    head = await next_of(ws, heads)
                assert time.monotonic() - started < 5
        slow.transport.resume_reading()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
        assert closed.value.rcvd.code == 1008 and "too slow" in closed.value.rcvd.reason

    asyncio.run(scenario())


def test_a_client_that_sends_without_reading_holds_nothing_and_the_node_still_stops_at_once(tmp_path, dev):
    node = dev_node(str(tmp_path / "db"), dev.address, rpc=RpcLimits(websocket_outbox=16))
    batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "web3_clientVersion"} for i in range(1000)])

    async def flood():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", node.rpc.port))
        ws = await websockets.connect(url(node), sock=sock, max_queue=None)
        ws.transport.pause_reading()
        for _ in range(200):  # about 14 MB of answers that nobody reads
            await ws.send(batch)
        return ws

    try:
        ws = asyncio.run(flood())
        assert Web3(Web3.HTTPProvider(f"http://127.0.0.1:{node.rpc.port}/")).eth.chain_id == CHAIN_ID
    finally:
        started = time.monotonic()
        node.stop()
    assert time.monotonic() - started < 8 and not node.rpc._thread.is_alive()
    del ws


def test_a_malformed_websocket_handshake_gets_400_not_an_internal_error(node):
    request = ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", node.rpc.port), timeout=10) as sock:
        sock.sendall(request)
        status = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 400"), status


def test_no_notification_comes_before_the_answer_that_gives_its_subscription_id(node, w3, dev):
    slow = [{"jsonrpc": "2.0", "id": i, "method": "eth_getBlockByNumber", "params": ["latest", True]}
            for i in range(1, 400)]

    async def scenario():
        async with websockets.connect(url(node), max_size=None) as ws:
            await ws.send(json.dumps([{"jsonrpc": "2.0", "id": 0, "method": "eth_subscribe",
                                       "params": ["newPendingTransactions"]}, *slow]))
            sent = [await asyncio.to_thread(send, w3, dev) for _ in range(3)]  # while the batch is answered
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert isinstance(first, list) and first[0]["id"] == 0, first  # the batch's answer comes first
            subscription = first[0]["result"]
            seen = []
            while len(seen) < 3:
                note = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert note["params"]["subscription"] == subscription
                seen.append(note["params"]["result"])
            assert seen == ["0x" + bytes(h).hex() for h in sent]

    asyncio.run(scenario())
