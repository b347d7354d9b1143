"""Ethereum JSON-RPC methods over the node (the HTTP side is in rpc_server.py).

Values follow the Ethereum conventions: quantities are 0x-hex without leading zeros, data
is 0x-hex of whole bytes. Errors use EIP-1474 codes, with the geth convention for reverts
(code 3, the revert data in `data`), so that web3.py reports them as it does for geth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from .hashing import keccak256
from .keys import to_checksum_address
from .transactions import InvalidTransaction, decode_transaction

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
INVALID_INPUT = -32000
RESOURCE_NOT_FOUND = -32001
RESOURCE_UNAVAILABLE = -32002
TRANSACTION_REJECTED = -32003
METHOD_NOT_SUPPORTED = -32004
LIMIT_EXCEEDED = -32005
EXECUTION_REVERTED = 3

MAX_LOG_BLOCK_RANGE = 10_000
MAX_LOGS = 10_000
EMPTY_UNCLES_HASH = bytes.fromhex("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")

# Block tags that name the newest state (this node has one: it keeps no history).
_NEWEST_TAGS = ("latest", "pending", "safe", "finalized")


class RpcError(Exception):
    """A JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# -- encoding -----------------------------------------------------------------------
def quantity(n: int) -> str:
    return hex(n)


def data(b: bytes) -> str:
    return "0x" + b.hex()


_QUANTITY = re.compile(r"^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$")
_DATA = re.compile(r"^0x([0-9a-fA-F]{2})*$")


def parse_quantity(value: Any, name: str) -> int:
    if isinstance(value, str) and _QUANTITY.match(value) and len(value) <= 66:
        return int(value, 16)
    raise RpcError(INVALID_PARAMS, f"{name}: expected a hex quantity like 0x1a (no leading zeros), got {value!r}")


def parse_data(value: Any, name: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not _DATA.match(value):
        raise RpcError(INVALID_PARAMS, f"{name}: expected 0x-prefixed hex bytes, got {_short(value)}")
    raw = bytes.fromhex(value[2:])
    if length is not None and len(raw) != length:
        raise RpcError(INVALID_PARAMS, f"{name}: expected {length} bytes, got {len(raw)}")
    return raw


def parse_address(value: Any, name: str = "address") -> bytes:
    return parse_data(value, name, 20)


def parse_slot(value: Any, name: str) -> bytes:
    """A storage key: 32 bytes of data, or a quantity (web3 sends either)."""
    if isinstance(value, str) and _DATA.match(value) and len(value) == 66:
        return bytes.fromhex(value[2:])
    return parse_quantity(value, name).to_bytes(32, "big")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bloom(logs) -> bytes:
    """The 2048-bit Ethereum logs bloom of addresses and topics."""
    bits = 0
    for log in logs:
        for item in (log.address, *log.topics):
            h = keccak256(item)
            for i in (0, 2, 4):
                bits |= 1 << (((h[i] << 8) | h[i + 1]) & 2047)
    return bits.to_bytes(256, "big")


@dataclass
class _Params:
    """Positional params with arity checking."""

    method: str
    values: list

    def get(self, index: int, name: str, default: Any = ...) -> Any:
        if index < len(self.values):
            return self.values[index]
        if default is ...:
            raise RpcError(INVALID_PARAMS, f"{self.method}: missing parameter {index + 1} ({name})")
        return default


class RpcMethods:
    """The method table. `node` provides chain, engine and params (see node.py)."""

    def __init__(self, node):
        self.node = node
        self.chain = node.chain
        self.table: dict[str, tuple[Callable, int]] = {
            "web3_clientVersion": (self.client_version, 0),
            "net_version": (self.net_version, 0),
            "eth_chainId": (self.chain_id, 0),
            "eth_blockNumber": (self.block_number, 0),
            "eth_gasPrice": (self.gas_price, 0),
            "eth_maxPriorityFeePerGas": (self.max_priority_fee, 0),
            "eth_syncing": (lambda p: False, 0),
            "eth_accounts": (lambda p: [], 0),
            "eth_getBalance": (self.get_balance, 2),
            "eth_getTransactionCount": (self.get_transaction_count, 2),
            "eth_getCode": (self.get_code, 2),
            "eth_getStorageAt": (self.get_storage_at, 3),
            "eth_sendRawTransaction": (self.send_raw_transaction, 1),
            "eth_call": (self.call, 2),
            "eth_estimateGas": (self.estimate_gas, 2),
            "eth_getTransactionReceipt": (self.get_transaction_receipt, 1),
            "eth_getTransactionByHash": (self.get_transaction_by_hash, 1),
            "eth_getBlockByNumber": (self.get_block_by_number, 2),
            "eth_getBlockByHash": (self.get_block_by_hash, 2),
            "eth_getLogs": (self.get_logs, 1),
            "eth_getProof": (self.get_proof, 3),
            "eth_feeHistory": (self.fee_history, 3),
        }

    def dispatch(self, method: Any, params: Any) -> Any:
        """Run one method; raises RpcError for every failure the caller caused."""
        if not isinstance(method, str):
            raise RpcError(INVALID_REQUEST, "method must be a string")
        entry = self.table.get(method)
        if entry is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {_short(method)} does not exist/is not available")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise RpcError(INVALID_PARAMS, f"{method}: params must be an array")
        fn, max_params = entry
        if len(params) > max_params:
            raise RpcError(INVALID_PARAMS, f"{method}: takes at most {max_params} parameters, got {len(params)}")
        return fn(_Params(method, params))

    # -- simple values --------------------------------------------------------------
    def client_version(self, p):
        return "ewasm/0.1.0"

    def net_version(self, p):
        return str(self.chain.params.chain_id)

    def chain_id(self, p):
        return quantity(self.chain.params.chain_id)

    def block_number(self, p):
        return quantity(self.chain.head().number)

    def gas_price(self, p):
        return quantity(max(self.chain.params.base_fee_per_gas, 1))

    def max_priority_fee(self, p):
        return quantity(1)

    def fee_history(self, p):
        count = min(parse_quantity(p.get(0, "blockCount"), "blockCount") if isinstance(p.get(0, "blockCount"), str)
                    else int(p.get(0, "blockCount")), 1024)
        head = self._block_number(p.get(1, "newestBlock"))
        count = min(count, head + 1)
        base = self.chain.params.base_fee_per_gas
        return {"oldestBlock": quantity(head - count + 1), "baseFeePerGas": [quantity(base)] * (count + 1),
                "gasUsedRatio": [0.0] * count, "reward": [[quantity(0)] for _ in range(count)]}

    # -- state ----------------------------------------------------------------------
    def _block_number(self, tag: Any) -> int:
        head = self.chain.head().number
        if isinstance(tag, dict):  # EIP-1898
            if "blockHash" in tag:
                number = self.chain.store.block_number_of(parse_data(tag["blockHash"], "blockHash", 32))
                if number is None:
                    raise RpcError(RESOURCE_NOT_FOUND, "block not found")
                return number
            tag = tag.get("blockNumber")
        if tag in _NEWEST_TAGS:
            return head
        if tag == "earliest":
            return 0
        number = parse_quantity(tag, "block")
        if number > head:
            raise RpcError(RESOURCE_NOT_FOUND, f"block {number} is beyond the head {head}")
        return number

    def _latest_state(self, tag: Any):
        """A snapshot of the latest state; this node keeps no older state.

        A tag that names the newest state ("latest", "pending", ...) takes whatever the
        snapshot holds: resolving it to a number first would race a block committed in
        between and refuse a perfectly good request.
        """
        if tag in _NEWEST_TAGS or (isinstance(tag, dict) and tag.get("blockNumber") in _NEWEST_TAGS):
            return self.chain.snapshot()
        number = self._block_number(tag)
        snapshot = self.chain.snapshot()
        if number != snapshot.number:
            snapshot.close()
            raise RpcError(RESOURCE_UNAVAILABLE,
                           f"state of block {number} is not available: this node keeps the latest state only "
                           f"(block {snapshot.number})")
        return snapshot

    def get_balance(self, p):
        address = parse_address(p.get(0, "address"))
        with self._latest_state(p.get(1, "block", "latest")) as snap:
            return quantity(snap.get_account(address).balance)

    def get_transaction_count(self, p):
        address = parse_address(p.get(0, "address"))
        tag = p.get(1, "block", "latest")
        if tag == "pending":
            return quantity(self.node.pending_nonce(address))
        with self._latest_state(tag) as snap:
            return quantity(snap.get_account(address).nonce)

    def get_code(self, p):
        address = parse_address(p.get(0, "address"))
        with self._latest_state(p.get(1, "block", "latest")) as snap:
            return data(snap.get_code(address))

    def get_storage_at(self, p):
        address = parse_address(p.get(0, "address"))
        slot = parse_slot(p.get(1, "position"), "position")
        with self._latest_state(p.get(2, "block", "latest")) as snap:
            return data(snap.get_storage(address, slot))

    # -- transactions ---------------------------------------------------------------
    def send_raw_transaction(self, p):
        raw = parse_data(p.get(0, "transaction"), "transaction")
        limit = self.chain.params.max_transaction_size
        if len(raw) > limit:
            raise RpcError(TRANSACTION_REJECTED, f"oversized transaction: {len(raw)} bytes, the limit is {limit}")
        try:
            tx = decode_transaction(raw)
            self.node.engine.submit_transaction(tx)
        except InvalidTransaction as err:
            raise RpcError(TRANSACTION_REJECTED, f"{err.reason}: {err}") from None
        return data(tx.hash)

    def _call_args(self, p):
        call = p.get(0, "transaction")
        if not isinstance(call, dict):
            raise RpcError(INVALID_PARAMS, "the call object must be a JSON object")
        sender = parse_address(call["from"], "from") if call.get("from") else bytes(20)
        to = parse_address(call["to"], "to") if call.get("to") else None
        payload = call.get("input", call.get("data", "0x"))
        gas = parse_quantity(call["gas"], "gas") if "gas" in call else None
        value = parse_quantity(call["value"], "value") if "value" in call else 0
        return sender, to, parse_data(payload, "input"), value, gas

    def call(self, p):
        sender, to, payload, value, gas = self._call_args(p)
        self._latest_state(p.get(1, "block", "latest")).close()
        result = self.chain.call(sender=sender, to=to, data=payload, value=value, gas=gas)
        _raise_unless_success(result, "execution failed")
        return data(result.output)

    def estimate_gas(self, p):
        sender, to, payload, value, gas = self._call_args(p)
        result = self.chain.estimate_gas(sender=sender, to=to, data=payload, value=value, gas=gas)
        _raise_unless_success(result, "gas required exceeds allowance or execution failed")
        return quantity(result.gas_used)

    def get_transaction_by_hash(self, p):
        tx_hash = parse_data(p.get(0, "hash"), "hash", 32)
        location = self.chain.store.transaction(tx_hash)
        if location is None:
            pending = self.node.pending_transaction(tx_hash)
            return None if pending is None else self._render_tx(pending, None, None)
        header = self.chain.store.header(location.block_number)
        return self._render_tx(decode_transaction(location.raw), header, location.index)

    def _render_tx(self, tx, header, index):
        price = tx.effective_gas_price(self.chain.params.base_fee_per_gas)
        result = {
            "hash": data(tx.hash), "nonce": quantity(tx.nonce),
            "blockHash": data(header.hash) if header else None,
            "blockNumber": quantity(header.number) if header else None,
            "transactionIndex": quantity(index) if header else None,
            "from": to_checksum_address(tx.sender), "to": to_checksum_address(tx.to) if tx.to else None,
            "value": quantity(tx.value), "gas": quantity(tx.gas_limit), "gasPrice": quantity(price),
            "input": data(tx.data), "type": quantity(tx.tx_type), "chainId": quantity(tx.chain_id),
            "v": quantity(tx.y_parity), "yParity": quantity(tx.y_parity), "r": quantity(tx.r), "s": quantity(tx.s),
        }
        if tx.tx_type != 0x01:
            result["maxFeePerGas"] = quantity(tx.max_fee_per_gas)
            result["maxPriorityFeePerGas"] = quantity(tx.max_priority_fee_per_gas)
        if tx.tx_type == 0x50:
            result["scope"] = [data(prefix) for prefix in tx.scope]
        else:
            result["accessList"] = [{"address": to_checksum_address(a), "storageKeys": [data(k) for k in keys]}
                                    for a, keys in tx.access_list]
        return result

    def get_transaction_receipt(self, p):
        tx_hash = parse_data(p.get(0, "hash"), "hash", 32)
        location = self.chain.store.transaction(tx_hash)
        if location is None:
            return None
        receipt = self.chain.store.receipt(tx_hash)
        header = self.chain.store.header(location.block_number)
        tx = decode_transaction(location.raw)
        first_log_index = self._first_log_index(location.block_number, location.index)
        logs = [self._render_log(log, header, location.index, tx_hash, first_log_index + i)
                for i, log in enumerate(receipt.logs)]
        return {
            "transactionHash": data(tx_hash), "transactionIndex": quantity(location.index),
            "blockHash": data(header.hash), "blockNumber": quantity(header.number),
            "from": to_checksum_address(tx.sender), "to": to_checksum_address(tx.to) if tx.to else None,
            "cumulativeGasUsed": quantity(receipt.cumulative_gas_used), "gasUsed": quantity(receipt.gas_used),
            "effectiveGasPrice": quantity(tx.effective_gas_price(self.chain.params.base_fee_per_gas)),
            "contractAddress": to_checksum_address(receipt.contract_address) if receipt.contract_address else None,
            "logs": logs, "logsBloom": data(bloom(receipt.logs)), "status": quantity(receipt.status),
            "type": quantity(tx.tx_type), "error": receipt.error or None,
        }

    def _first_log_index(self, number: int, tx_index: int) -> int:
        total = 0
        for i, tx_hash in enumerate(self.chain.store.block_tx_hashes(number)[:tx_index]):
            total += len(self.chain.store.receipt(tx_hash).logs)
        return total

    def _render_log(self, log, header, tx_index, tx_hash, log_index):
        return {"address": to_checksum_address(log.address), "topics": [data(t) for t in log.topics],
                "data": data(log.data), "blockNumber": quantity(header.number), "blockHash": data(header.hash),
                "transactionHash": data(tx_hash), "transactionIndex": quantity(tx_index),
                "logIndex": quantity(log_index), "removed": False}

    # -- blocks ---------------------------------------------------------------------
    def get_block_by_number(self, p):
        tag = p.get(0, "block")
        try:
            number = self._block_number(tag)
        except RpcError as err:
            if err.code == RESOURCE_NOT_FOUND:
                return None
            raise
        return self._render_block(number, bool(p.get(1, "fullTransactions", False)))

    def get_block_by_hash(self, p):
        number = self.chain.store.block_number_of(parse_data(p.get(0, "hash"), "hash", 32))
        return None if number is None else self._render_block(number, bool(p.get(1, "fullTransactions", False)))

    def _render_block(self, number: int, full: bool):
        header = self.chain.store.header(number)
        if header is None:
            return None
        tx_hashes = self.chain.store.block_tx_hashes(number)
        if full:
            txs = [self._render_tx(decode_transaction(self.chain.store.transaction(h).raw), header, i)
                   for i, h in enumerate(tx_hashes)]
        else:
            txs = [data(h) for h in tx_hashes]
        logs = [log for h in tx_hashes for log in self.chain.store.receipt(h).logs]
        return {
            "number": quantity(header.number), "hash": data(header.hash), "parentHash": data(header.parent_hash),
            "nonce": "0x0000000000000000", "sha3Uncles": data(EMPTY_UNCLES_HASH), "logsBloom": data(bloom(logs)),
            "transactionsRoot": data(header.transactions_root), "stateRoot": data(header.state_root),
            "receiptsRoot": data(header.receipts_root), "miner": to_checksum_address(header.proposer),
            "difficulty": "0x0", "totalDifficulty": "0x0", "extraData": data(header.extra_data),
            "size": quantity(len(header.encode())), "gasLimit": quantity(header.gas_limit),
            "gasUsed": quantity(header.gas_used), "timestamp": quantity(header.timestamp),
            "transactions": txs, "uncles": [], "baseFeePerGas": quantity(self.chain.params.base_fee_per_gas),
            "mixHash": data(bytes(32)), "shardId": quantity(header.shard_id),
            "outgoingReceiptsRoot": data(header.outgoing_receipts_root),
            "validatorSetHash": data(header.validator_set_hash), "seal": data(header.seal),
        }

    # -- logs -----------------------------------------------------------------------
    def get_logs(self, p):
        query = p.get(0, "filter")
        if not isinstance(query, dict):
            raise RpcError(INVALID_PARAMS, "eth_getLogs: the filter must be a JSON object")
        if "blockHash" in query:
            number = self.chain.store.block_number_of(parse_data(query["blockHash"], "blockHash", 32))
            if number is None:
                raise RpcError(RESOURCE_NOT_FOUND, "block not found")
            first = last = number
        else:
            first = self._block_number(query.get("fromBlock", "latest"))
            last = self._block_number(query.get("toBlock", "latest"))
        if last - first >= MAX_LOG_BLOCK_RANGE:
            raise RpcError(LIMIT_EXCEEDED, f"block range too large: at most {MAX_LOG_BLOCK_RANGE} blocks")
        addresses = query.get("address")
        if addresses is not None:
            addresses = {parse_address(a) for a in (addresses if isinstance(addresses, list) else [addresses])}
        topics = query.get("topics") or []
        if not isinstance(topics, list) or len(topics) > 4:
            raise RpcError(INVALID_PARAMS, "topics: expected an array of at most 4 entries")
        wanted = []
        for i, entry in enumerate(topics):
            if entry is None:
                wanted.append(None)
            else:
                entries = entry if isinstance(entry, list) else [entry]
                wanted.append({parse_data(t, f"topics[{i}]", 32) for t in entries})
        result = []
        headers: dict[int, Any] = {}
        for number, log_index, tx_index, tx_hash, log in self.chain.store.logs(first, last):
            if addresses is not None and log.address not in addresses:
                continue
            if any(w is not None and (i >= len(log.topics) or log.topics[i] not in w) for i, w in enumerate(wanted)):
                continue
            if number not in headers:
                headers[number] = self.chain.store.header(number)
            result.append(self._render_log(log, headers[number], tx_index, tx_hash, log_index))
            if len(result) > MAX_LOGS:
                raise RpcError(LIMIT_EXCEEDED, f"query returned more than {MAX_LOGS} logs; narrow the range")
        return result

    # -- proofs ---------------------------------------------------------------------
    def get_proof(self, p):
        address = parse_address(p.get(0, "address"))
        slots = p.get(1, "storageKeys")
        if not isinstance(slots, list):
            raise RpcError(INVALID_PARAMS, "storageKeys: expected an array")
        slots = [parse_slot(s, f"storageKeys[{i}]") for i, s in enumerate(slots)]
        self._latest_state(p.get(2, "block", "latest")).close()
        header, account, account_proof, storage = self.chain.prove(address, slots)
        return {
            "address": to_checksum_address(address),
            "accountProof": [data(n) for n in account_proof.encode()],
            "balance": quantity(account.balance), "nonce": quantity(account.nonce),
            "codeHash": data(account.code_hash),
            "storageHash": data(header.state_root),  # one tree holds accounts and slots
            "storageProof": [{"key": data(slot), "value": quantity(int.from_bytes(value, "big")),
                              "proof": [data(n) for n in proof.encode()]} for slot, value, proof in storage],
            "blockNumber": quantity(header.number), "stateRoot": data(header.state_root),
        }


def _raise_unless_success(result, failure: str) -> None:
    """A call's outcome as Ethereum clients report it: a revert carries its data (3), any
    other failure says what happened (-32000)."""
    if result.status == "REVERT":
        raise RpcError(EXECUTION_REVERTED, "execution reverted", data(result.output))
    if result.status != "SUCCESS":
        raise RpcError(INVALID_INPUT, f"{failure}: {result.status}" + (f" ({result.error})" if result.error else ""))
