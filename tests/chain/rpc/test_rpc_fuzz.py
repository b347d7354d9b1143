"""Generated JSON-RPC requests against a real node over HTTP: every answer is strict
JSON-RPC, never an HTTP 500, and never an internal error (-32603)."""

from __future__ import annotations

import http.client
import json

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.core.spec import dev_spec, parse_spec
from chain.ledger.blockchain import Blockchain
from chain.node.config import NodeConfig
from chain.node.node import Node

from chain_fixtures import CHAIN_ID, SPINNER, with_spinner


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    datadir = str(tmp_path_factory.mktemp("fuzz") / "db")
    funded = bytes.fromhex(Account.create().address[2:])
    Blockchain.initialize(datadir, parse_spec(with_spinner(dev_spec(funded, chain_id=CHAIN_ID)))).close()
    node = Node(NodeConfig(datadir=datadir, rpc_port=0))
    node.start()
    yield node
    node.stop()


# The edges of the ranges parameters have: 64, 128 and 256 bits, JSON's safe integers.
edges = st.sampled_from([2**64 - 1, 2**64, 2**128 - 1, 2**128, 2**256 - 1, 2**53, 0]).map(hex)
quantities = st.one_of(edges, edges, st.integers(0, 2**260).map(hex), st.integers(-2**70, 2**70),
                       st.sampled_from(["0x", "0x00", "0x01", "0xg", "1", "-0x1", "0x1\n"]))
data = st.one_of(st.binary(max_size=64).map(lambda b: "0x" + b.hex()), st.sampled_from(["0x0", "0xzz", "", "0X00"]))
hashes = st.one_of(st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()), data)
addresses = st.one_of(st.sampled_from(["0x" + SPINNER.hex(), "0x" + "00" * 20, "0x" + "11" * 19]), data)
tags = st.one_of(st.sampled_from(["latest", "pending", "earliest", "safe", "finalized", "nope"]), quantities,
                 st.fixed_dictionaries({}, optional={"blockHash": hashes, "blockNumber": quantities,
                                                     "requireCanonical": st.booleans()}))
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=False)
                           | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4),
                           max_leaves=12)
call_objects = st.fixed_dictionaries({}, optional={
    "from": addresses | st.none(), "to": addresses | st.none(), "gas": quantities | json_values,
    "value": quantities | json_values, "data": data | json_values, "input": data, "gasPrice": quantities})
filters = st.fixed_dictionaries({}, optional={
    "fromBlock": tags, "toBlock": tags, "blockHash": hashes, "address": addresses | st.lists(addresses, max_size=3),
    "topics": st.lists(st.none() | hashes | st.lists(hashes, max_size=3), max_size=5)})
counts = st.one_of(quantities, st.integers(-5, 2000), st.sampled_from(["0x400", "0x401", None, True, [1]]))
percentiles = st.one_of(st.lists(st.floats(-10, 110) | st.integers(-10, 110), max_size=5), json_values)
flags = st.one_of(st.booleans(), json_values)

# Each method's positional parameters, each also drawn as any JSON value now and then.
SIGNATURES = {
    "web3_clientVersion": [], "net_version": [], "eth_chainId": [], "eth_blockNumber": [], "eth_gasPrice": [],
    "eth_maxPriorityFeePerGas": [], "eth_syncing": [], "eth_accounts": [], "txpool_status": [],
    "eth_getBalance": [addresses, tags], "eth_getTransactionCount": [addresses, tags],
    "eth_getCode": [addresses, tags], "eth_getStorageAt": [addresses, quantities | hashes, tags],
    "eth_sendRawTransaction": [data], "eth_call": [call_objects, tags], "eth_estimateGas": [call_objects, tags],
    "eth_getTransactionReceipt": [hashes], "eth_getTransactionByHash": [hashes],
    "eth_getBlockByNumber": [tags, flags], "eth_getBlockByHash": [hashes, flags], "eth_getLogs": [filters],
    "eth_getProof": [addresses, st.lists(quantities | hashes, max_size=4) | json_values, tags],
    "eth_feeHistory": [counts, tags, percentiles],
}
METHODS = list(SIGNATURES)


def params_for(method: str) -> st.SearchStrategy:
    """The method's parameters, some cut short or with one too many."""
    positions = [st.one_of(shape, shape, shape, json_values) for shape in SIGNATURES[method]]
    full = st.tuples(*positions).map(list)
    return st.one_of(full, full, full.flatmap(lambda p: st.integers(0, len(p)).map(lambda n: p[:n])),
                     full.map(lambda p: p + [None]))


def request_for(method: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": st.integers(0, 2**53), "method": st.just(method),
                                  "params": params_for(method)})


well_formed = st.sampled_from(METHODS).flatmap(request_for)
every_method = st.tuples(*map(request_for, METHODS)).map(list)  # a batch: each method once
ids = st.one_of(st.none(), st.integers(-2**60, 2**60), st.text(max_size=300), st.booleans(), st.floats(),
                st.lists(st.integers(), max_size=2))
requests = well_formed | st.fixed_dictionaries(
    {"method": st.sampled_from(METHODS) | st.text(max_size=12)},
    optional={"jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0"]), "id": ids, "params": json_values})
bodies = st.one_of(every_method, every_method, well_formed, requests, st.lists(requests, max_size=6), json_values)


def post(port: int, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def responses(decoded):
    return decoded if isinstance(decoded, list) else [decoded]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=bodies)
def test_generated_requests_get_strict_json_rpc_answers_and_never_an_internal_error(node, body):
    raw = json.dumps(body).encode()  # Python's dumps writes NaN/Infinity for some floats: those are parse errors
    status, answer = post(node.rpc.port, raw)
    assert status in (200, 204), (status, answer[:300])
    if status == 204:
        return
    decoded = json.loads(answer, parse_constant=lambda name: pytest.fail(f"{name} in an answer"))
    for response in responses(decoded):
        assert response["jsonrpc"] == "2.0" and ("result" in response) != ("error" in response)
        if "error" in response:
            assert response["error"]["code"] != -32603, (raw[:500], response)
            assert isinstance(response["error"]["message"], str) and response["error"]["message"]
    assert node.rpc.lanes["execution"].load <= 34

