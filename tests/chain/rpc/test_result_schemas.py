"""Every standard JSON-RPC result the node serves has the shape ethereum/execution-apis specifies.

The shapes are our own JSON Schema transcription of the spec, in execution_apis/ (its
README says which upstream files and commits they follow). One module fixture builds a
chain over real HTTP: an EIP-1559, an EIP-2930 and a legacy EIP-155 transfer, a token
deploy, a token transfer (with its Transfer log) and a reverting token transfer; it installs
block, pending-transaction and log filters and then calls every standard method the node
serves with valid params, keeping each answer. The tests check those answers against the
schemas. A standard method the node serves without a schema here, or that the fixture
does not call, fails the test by name: a method added later must come with its schema.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from contracts.token import balance_of_data, balance_slot, transfer_data

from chain_fixtures import TOKEN_DEPLOYER, dev_node

SCHEMA_DIR = Path(__file__).parent / "execution_apis"
SCHEMA_BASE = "https://ewasm.invalid/execution-apis/"
STANDARD_PREFIXES = ("eth_", "net_", "web3_")
ALSO_STANDARD = {"txpool_status"}  # execution-apis specifies it too (src/txpool/pool.yaml)
# WebSocket only: they answer a subscription id over a connection and push notifications;
# there is nothing to call over HTTP. Excluded by name, only these two.
WEBSOCKET_ONLY = {"eth_subscribe", "eth_unsubscribe"}
MISSING_HASH = "0x" + "ab" * 32


def _load_documents() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(SCHEMA_DIR.glob("*.json"))}


DOCUMENTS = _load_documents()
REGISTRY = Registry().with_resources((doc["$id"], Resource.from_contents(doc)) for doc in DOCUMENTS.values())
METHOD_SCHEMAS: dict[str, dict] = DOCUMENTS["methods.json"]["$defs"]


def result_validator(method: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{SCHEMA_BASE}methods.json#/$defs/{method}"}, registry=REGISTRY)


def is_standard(method: str) -> bool:
    return method.startswith(STANDARD_PREFIXES) or method in ALSO_STANDARD


# -- what the schemas say, in words -------------------------------------------------
def _path(parts) -> str:
    return "result" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _leaves(error):
    """The errors that say what is wrong: inside an anyOf/oneOf, those of the branch that
    got furthest into the instance (the schemas here use if/then instead, so that errors
    come out direct; this keeps messages precise if one is added)."""
    if not error.context:
        yield error
        return
    branches: dict[Any, list] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    best = max(branches.values(), key=lambda errs: (max(len(e.absolute_path) for e in errs), -len(errs)))
    for sub in best:
        yield from _leaves(sub)


def describe(error) -> list[tuple[str, str, str]]:
    """(path, what is wrong, the kind of wrong) for one leaf error, in the words of the standard."""
    title = error.schema.get("title", "") if isinstance(error.schema, dict) else ""
    where = _path(error.absolute_path)
    if error.validator == "required":
        name = re.match(r"'(.*)' is a required property", error.message)
        field = name.group(1) if name else error.message
        return [(f"{where}.{field}", f"is missing: {title} requires it", f"required {title}")]
    if error.validator == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        return [(f"{where}.{field}", f"= {_short(error.instance[field])} is not a standard field of {title} "
                                     f"(standard objects carry only standard fields)", "extra")
                for field in sorted(set(error.instance) - known)]
    return [(where, f"= {_short(error.instance)}: {error.message}" + (f" ({title})" if title else ""),
             f"{error.validator} {title}")]


def _problems(method: str, result: Any) -> list[tuple[str, str, str]]:
    return [problem for error in result_validator(method).iter_errors(result)
            for leaf in _leaves(error) for problem in describe(leaf)]


def problems_of(method: str, result: Any) -> list[tuple[str, str]]:
    """(path, what is wrong) for each way `result` is not what `method` must answer."""
    return [(path, what) for path, what, _ in _problems(method, result)]


# -- the node, and a client that keeps every answer ---------------------------------
@dataclass
class Answer:
    method: str
    params: list
    result: Any = None
    error: Any = None


class Client:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/"
        self.answers: list[Answer] = []

    def _post(self, payload):
        request = urllib.request.Request(self.url, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def _keep(self, method: str, params: list, reply: dict) -> Any:
        answer = Answer(method, params, reply.get("result"), reply.get("error"))
        self.answers.append(answer)
        return answer.result

    def call(self, method: str, *params) -> Any:
        reply = self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        return self._keep(method, list(params), reply)

    def batch(self, method: str, params_list: list[list]) -> list:
        replies = self._post([{"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                              for i, params in enumerate(params_list)])
        replies = sorted(replies, key=lambda reply: reply["id"])
        return [self._keep(method, params, reply) for params, reply in zip(params_list, replies)]

    def mined(self, tx_hash: str) -> dict:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            receipt = self.call("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            time.sleep(0.02)
        raise AssertionError(f"transaction {tx_hash} was not included within 30 s")


@pytest.fixture(scope="module")
def dev():
    return Account.create()


@pytest.fixture(scope="module")
def node(tmp_path_factory, dev):
    node = dev_node(str(tmp_path_factory.mktemp("schemas") / "db"), dev.address, spinner=True)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def answers(node, dev) -> list[Answer]:
    """Every answer of a session that builds a chain and calls each standard method."""
    c = Client(node.rpc.port)
    chain_id = int(c.call("eth_chainId"), 16)
    gas_price = int(c.call("eth_gasPrice"), 16)  # fees as the node says them: never hard-coded
    tip = int(c.call("eth_maxPriorityFeePerGas"), 16)
    base_fee = int(c.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    max_fee = 2 * base_fee + tip
    block_filter, pending_filter = c.call("eth_newBlockFilter"), c.call("eth_newPendingTransactionFilter")
    nonce = int(c.call("eth_getTransactionCount", dev.address, "pending"), 16)

    def send(**fields) -> str:
        nonlocal nonce
        fields.setdefault("chainId", chain_id)
        signed = dev.sign_transaction(dict(fields, nonce=nonce))
        nonce += 1
        tx_hash = c.call("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
        assert tx_hash is not None, c.answers[-1].error
        return tx_hash

    a, b, legacy_to = (to_checksum_address("0x" + byte * 20) for byte in ("a1", "b2", "c3"))
    sent = {
        "1559": send(type=2, gas=21_000, maxFeePerGas=max_fee, maxPriorityFeePerGas=tip, to=a, value=5,
                     accessList=[]),
        # an access list's addresses are the transaction's scope here: they name the sender and the recipient
        "2930": send(type=1, gas=30_000, gasPrice=gas_price, to=b, value=6,
                     accessList=[{"address": dev.address, "storageKeys": []},
                                 {"address": b, "storageKeys": ["0x" + "00" * 32]}]),
        "legacy": send(gas=21_000, gasPrice=gas_price, to=legacy_to, value=7),
        "deploy": send(type=2, gas=5_000_000, maxFeePerGas=max_fee, maxPriorityFeePerGas=tip, data=TOKEN_DEPLOYER,
                       value=0),
    }
    receipts = {name: c.mined(tx_hash) for name, tx_hash in sent.items()}
    assert [receipts[name]["type"] for name in ("1559", "2930", "legacy")] == ["0x2", "0x1", "0x0"]
    token = receipts["deploy"]["contractAddress"]
    log_filter = c.call("eth_newFilter", {"address": token, "fromBlock": receipts["deploy"]["blockNumber"]})

    recipient = to_checksum_address("0x" + "d4" * 20)
    transfer = {"from": dev.address, "to": token,
                "data": "0x" + transfer_data(bytes.fromhex(recipient[2:]), 1234).hex()}
    gas = int(c.call("eth_estimateGas", transfer, "latest"), 16)
    sent["transfer"] = send(type=2, gas=2 * gas, maxFeePerGas=max_fee, maxPriorityFeePerGas=tip, to=token,
                            data=transfer["data"], value=0)
    too_much = transfer_data(bytes.fromhex(recipient[2:]), 2**200)  # more than the supply: the token reverts
    sent["revert"] = send(type=2, gas=200_000, maxFeePerGas=max_fee, maxPriorityFeePerGas=tip, to=token,
                          data=too_much, value=0)
    for name in ("transfer", "revert"):
        receipts[name] = c.mined(sent[name])
    assert [receipts[name]["status"] for name in ("deploy", "transfer", "revert")] == ["0x1", "0x1", "0x0"]
    assert len(receipts["transfer"]["logs"]) == 1  # the Transfer log

    # filters: what changed since they were installed, each kind non-empty
    for filter_id, kind in ((block_filter, str), (pending_filter, str), (log_filter, dict)):
        changes = c.call("eth_getFilterChanges", filter_id)
        assert changes and all(isinstance(change, kind) for change in changes), (filter_id, changes)
    assert c.call("eth_getFilterLogs", log_filter)
    assert c.call("eth_uninstallFilter", block_filter) is True
    assert c.call("eth_uninstallFilter", block_filter) is False
    # Filter ids are quantities: 204 of each kind, so that a leading zero cannot hide ((15/16)**204 < 2e-6).
    # 17 of each at a time: a client holds at most 64 filters.
    for _ in range(12):
        ids = (c.batch("eth_newBlockFilter", [[]] * 17) + c.batch("eth_newPendingTransactionFilter", [[]] * 17)
               + c.batch("eth_newFilter", [[{"address": token}]] * 17))
        c.batch("eth_uninstallFilter", [[filter_id] for filter_id in ids])

    # transactions, receipts and blocks: each one, by every lookup
    for tx_hash in sent.values():
        c.call("eth_getTransactionByHash", tx_hash)
    blocks = {}
    for receipt in receipts.values():
        blocks[receipt["blockNumber"]] = receipt["blockHash"]
        c.call("eth_getTransactionByBlockNumberAndIndex", receipt["blockNumber"], receipt["transactionIndex"])
        c.call("eth_getTransactionByBlockHashAndIndex", receipt["blockHash"], receipt["transactionIndex"])
    for number, block_hash in blocks.items():
        for full in (False, True):
            c.call("eth_getBlockByNumber", number, full)
            c.call("eth_getBlockByHash", block_hash, full)
        c.call("eth_getBlockTransactionCountByNumber", number)
        c.call("eth_getBlockTransactionCountByHash", block_hash)
        c.call("eth_getBlockReceipts", number)
        c.call("eth_getBlockReceipts", block_hash)
    for tag in ("earliest", "latest", "safe", "finalized"):
        c.call("eth_getBlockByNumber", tag, True)
    # ... and the not-found answers (null)
    c.call("eth_getTransactionByHash", MISSING_HASH)
    c.call("eth_getTransactionReceipt", MISSING_HASH)
    c.call("eth_getBlockByNumber", "0xffffff", False)
    c.call("eth_getBlockByHash", MISSING_HASH, False)
    c.call("eth_getBlockTransactionCountByNumber", "0xffffff")
    c.call("eth_getBlockTransactionCountByHash", MISSING_HASH)
    c.call("eth_getBlockReceipts", MISSING_HASH)
    c.call("eth_getTransactionByBlockNumberAndIndex", receipts["transfer"]["blockNumber"], "0xff")
    c.call("eth_getTransactionByBlockHashAndIndex", receipts["transfer"]["blockHash"], "0xff")

    # logs
    assert c.call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"})
    c.call("eth_getLogs", {"address": token, "fromBlock": "earliest"})
    c.call("eth_getLogs", {"blockHash": receipts["transfer"]["blockHash"]})

    # state
    slot = "0x" + balance_slot(bytes.fromhex(recipient[2:])).hex()
    for address in (dev.address, a, token):
        c.call("eth_getBalance", address, "latest")
        c.call("eth_getCode", address, "latest")
        c.call("eth_getTransactionCount", address, "latest")
    c.call("eth_getTransactionCount", dev.address, "pending")
    c.call("eth_getStorageAt", token, slot, "latest")
    c.call("eth_call", {"from": dev.address, "to": token,
                        "data": "0x" + balance_of_data(bytes.fromhex(recipient[2:])).hex()}, "latest")
    c.call("eth_call", {"to": "0x" + "00" * 19 + "77", "data": "0x"}, "latest")
    c.call("eth_estimateGas", {"from": dev.address, "to": a, "value": "0x1"})
    c.call("eth_getProof", token, [slot], "latest")
    c.call("eth_getProof", dev.address, [], "latest")
    c.call("eth_getProof", "0x" + "e5" * 20, ["0x" + "00" * 32], "latest")

    # fees, the client and the pool
    c.call("eth_feeHistory", "0x4", "latest", [25, 75])
    c.call("eth_feeHistory", "0x2", "latest", [])
    for method in ("eth_blockNumber", "eth_syncing", "eth_accounts", "eth_gasPrice", "eth_maxPriorityFeePerGas",
                   "net_version", "net_listening", "net_peerCount", "web3_clientVersion", "txpool_status"):
        c.call(method)
    return c.answers


# -- the tests ----------------------------------------------------------------------
def test_the_schema_documents_are_valid_json_schema_and_every_reference_in_them_resolves():
    refs = []

    def walk(node, base):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append((base, node["$ref"]))
            for value in node.values():
                walk(value, base)
        elif isinstance(node, list):
            for value in node:
                walk(value, base)

    for name, document in DOCUMENTS.items():
        Draft202012Validator.check_schema(document)
        assert document["$id"] == SCHEMA_BASE + name
        walk(document, document["$id"])
    for base, ref in refs:
        REGISTRY.resolver(base_uri=base).lookup(ref)  # raises if it names nothing
    assert len(refs) > 100


def test_the_schemas_reject_a_missing_standard_field_a_non_standard_one_and_a_quantity_with_leading_zeros():
    log = {"address": "0x" + "5A" * 20, "topics": ["0x" + "11" * 32], "data": "0x", "blockNumber": "0x2",
           "blockHash": "0x" + "22" * 32, "transactionHash": "0x" + "33" * 32, "transactionIndex": "0x0",
           "logIndex": "0x0", "removed": False}
    assert problems_of("eth_getLogs", [log]) == []
    assert problems_of("eth_getLogs", [dict(log, shard="0x1")]) == [
        ("result[0].shard", '= "0x1" is not a standard field of Log (standard objects carry only standard fields)')]
    (path, what), = problems_of("eth_getLogs", [dict(log, logIndex="0x01")])
    assert path == "result[0].logIndex" and "does not match" in what
    no_hash = {k: v for k, v in log.items() if k != "transactionHash"}
    assert problems_of("eth_getLogs", [no_hash]) == [("result[0].transactionHash", "is missing: Log requires it")]
    assert problems_of("eth_getBlockByNumber", None) == [] and problems_of("eth_syncing", False) == []
    assert problems_of("eth_syncing", True) != [] and problems_of("eth_blockNumber", "0x") != []


def test_every_standard_method_the_node_serves_has_a_result_schema(node):
    served = {m for m in node.rpc.methods.table if is_standard(m)} - WEBSOCKET_ONLY
    missing = sorted(served - set(METHOD_SCHEMAS))
    assert not missing, (f"the node serves {missing} without a result schema: add one to "
                         f"{SCHEMA_DIR / 'methods.json'} from execution-apis (see the README there)")


def test_every_standard_method_the_node_serves_is_called_here_with_valid_params(node, answers):
    served = {m for m in node.rpc.methods.table if is_standard(m)} - WEBSOCKET_ONLY
    not_called = sorted(served - {answer.method for answer in answers})
    assert not not_called, f"the node serves {not_called}, but the `answers` fixture never calls them: add calls"


@pytest.mark.parametrize("method", sorted(METHOD_SCHEMAS))
def test_each_standard_result_has_the_shape_execution_apis_specifies(answers, method):
    mine = [answer for answer in answers if answer.method == method]
    assert mine, f"{method} has a result schema but the `answers` fixture never calls it"
    errors = [f"{method}{json.dumps(a.params)} answered error {a.error}" for a in mine if a.error is not None]
    if errors:
        pytest.fail("valid params, yet:\n" + "\n".join(errors), pytrace=False)
    seen: dict[tuple[str, str], list] = {}  # (path with indices as [i], kind) -> [results, first path, what, params]
    for index, answer in enumerate(mine):
        for path, what, kind in _problems(method, answer.result):
            seen.setdefault((re.sub(r"\[\d+\]", "[i]", path), kind), [set(), path, what, answer.params])[0].add(index)
    lines = [f"{method}: {path} {what}  [in {len(results)} of {len(mine)} results; first with params {_short(params)}]"
             for results, path, what, params in seen.values()]
    if lines:
        pytest.fail(f"{len(lines)} deviation(s) from execution-apis:\n" + "\n".join(lines), pytrace=False)
