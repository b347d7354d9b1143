"""Ethereum JSON-RPC methods over the node (the HTTP side is in server.py).

Values follow the Ethereum conventions: quantities are 0x-hex without leading zeros, data
is 0x-hex of whole bytes. Errors use EIP-1474 codes, with the geth convention for reverts
(code 3, the revert data in `data`), so that web3.py reports them as it does for geth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from chain.core.blocks import Header
from chain.core.cross_shard import receipt_id
from chain.core.keys import to_checksum_address
from chain.core.params import ChainParams
from chain.core.system import ValidatorVoteError
from chain.ledger.blockchain import CallResult
from chain.rpc.budget import UNLIMITED, WorkBudget
from chain.rpc.codec import (
    EXECUTION_REVERTED,
    INVALID_INPUT,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    METHOD_NOT_SUPPORTED,
    RESOURCE_NOT_FOUND,
    RESOURCE_UNAVAILABLE,
    TRANSACTION_REJECTED,
    RpcError,
)
from chain.rpc.filters import BLOCKS, LOGS, PENDING, FilterRegistry, log_criteria, log_matches
from chain.rpc.receipt_methods import receipt_methods
from chain.rpc.render import render_block, render_chain_header, render_log, render_receipt, render_transaction
from chain.rpc.values import (
    MAX_GAS,
    MAX_VALUE,
    bounded,
    data,
    flag,
    parse_address,
    parse_data,
    parse_quantity,
    parse_slot,
    quantity,
    short,
)
from chain.state.store import Snapshot, Store
from chain.tx.codec import decode_transaction
from chain.tx.errors import InvalidTransaction
from chain.tx.transaction import Transaction

MAX_LOG_BLOCK_RANGE = 10_000


MAX_LOGS = 10_000


MAX_PROOF_KEYS = 1_024


MAX_FEE_HISTORY_BLOCKS = 1_024


MAX_REWARD_PERCENTILES = 100


SUGGESTED_TIP = 1  # wei per gas above the base fee: the fee is constant, and blocks are seldom full




# Block tags that name the newest state (this node has one: it keeps no history).
_NEWEST_TAGS = ("latest", "pending")
_FINAL_TAGS = ("safe", "finalized")  # the newest final block: the head, on engines that never fork


# Where a method runs (see lanes.py): on the event loop, or in one of the lanes.
INLINE = "inline"


EXECUTION = "execution"  # runs contract code


SCAN = "scan"  # logs and proofs: work that grows with a range or a key list


READ = "read"  # renders blocks and receipts from the store


def _block_count(value: Any) -> int:
    """eth_feeHistory's blockCount: a quantity (or a plain integer, as some clients send)."""
    if type(value) is int:
        count = value
    else:
        count = parse_quantity(value, "blockCount")
    if not 0 <= count <= MAX_FEE_HISTORY_BLOCKS:
        raise RpcError(INVALID_PARAMS, f"blockCount: expected 0 to {MAX_FEE_HISTORY_BLOCKS} blocks, got {count}")
    return count


def _reward_percentiles(value: Any) -> list[float]:
    """eth_feeHistory's rewardPercentiles: rising numbers from 0 to 100."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_REWARD_PERCENTILES:
        raise RpcError(INVALID_PARAMS, f"rewardPercentiles: expected an array of at most {MAX_REWARD_PERCENTILES} "
                                       f"numbers")
    previous = -1.0
    for item in value:  # strictly rising, as geth requires
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not previous < item <= 100:
            raise RpcError(INVALID_PARAMS, "rewardPercentiles: expected strictly rising numbers from 0 to 100, "
                                           f"got {short(value)}")
        previous = item
    return value


@dataclass
class _Params:
    """Positional params with arity checking, and the request's work budget."""

    method: str
    values: list
    budget: WorkBudget = UNLIMITED
    client: str = ""  # the caller's address: filters are bounded per client

    def get(self, index: int, name: str, default: Any = ...) -> Any:
        if index < len(self.values):
            return self.values[index]
        if default is ...:
            raise RpcError(INVALID_PARAMS, f"{self.method}: missing parameter {index + 1} ({name})")
        return default


@dataclass(frozen=True)
class Method:
    """One entry of the method table."""

    fn: Callable[[_Params], Any]
    max_params: int
    lane: str = INLINE


class ChainReader(Protocol):
    """What the methods read: the chain's head, state, records and queries (a Blockchain)."""

    params: ChainParams
    store: Store  # blocks, transactions, receipts and logs, read only

    def head(self) -> Header: ...

    def snapshot(self) -> Snapshot: ...

    def call(self, *, sender: bytes, to: bytes | None, data: bytes, value: int = 0,
             gas: int | None = None) -> CallResult: ...

    def estimate_gas(self, *, on_call: Callable[[CallResult], None] | None = None, **kwargs) -> CallResult: ...

    def prove(self, address: bytes, slots: list[bytes]) -> tuple: ...


class TransactionGateway(Protocol):
    """Where transactions go in, and what is pending (the node: pool and consensus)."""

    def submit_transaction(self, tx: Transaction) -> bytes:
        """Admit (and, on a network, pass on) a transaction, or raise InvalidTransaction."""

    def pending_nonce(self, address: bytes) -> int: ...

    def pending_transaction(self, tx_hash: bytes) -> Transaction | None: ...

    def pool_status(self) -> tuple[int, int]:
        """(pending, queued) transactions in the pool."""

    def pending_since(self, cursor: int | None) -> tuple[list[bytes], int]:
        """Hashes of the transactions admitted after `cursor` (none for None: the cursor
        of now), and the cursor to ask with next time."""

    def propose_validator_vote(self, candidate: bytes, add: bool) -> bytes:
        """Sign a validator vote with the node's key and submit it; returns its hash, or
        raises ValidatorVoteError (or InvalidTransaction)."""


class NodeStatus(Protocol):
    """What the node reports of itself: its peers and its consensus."""

    def peers(self) -> list:
        """Connected peers, each with node_id, host, port and direction."""

    def consensus_status(self) -> dict:
        """{"engine", "validators", "head", "finalized", "peers", "syncing"}, plus the engine's own fields."""

    def finalized(self) -> int:
        """The newest final block's number."""

    def evidence(self) -> list[dict]:
        """Misbehaviour the engine recorded, each with the two conflicting signed items."""

    def sync_progress(self) -> tuple[int, int, int] | None:
        """(starting, current, highest block) while the node catches up with its peers."""


class RpcMethods:
    """The method table, over a chain to read, a gateway for transactions and the node's status."""

    def __init__(self, chain: ChainReader, gateway: TransactionGateway, status: NodeStatus):
        self.chain = chain
        self.gateway = gateway
        self.status = status
        self.filters = FilterRegistry()
        self.table: dict[str, Method] = {
            "web3_clientVersion": Method(self.client_version, 0),
            "net_version": Method(self.net_version, 0),
            "eth_chainId": Method(self.chain_id, 0),
            "eth_blockNumber": Method(self.block_number, 0),
            "eth_gasPrice": Method(self.gas_price, 0),
            "eth_maxPriorityFeePerGas": Method(self.max_priority_fee, 0),
            "eth_syncing": Method(self.syncing, 0),
            "eth_accounts": Method(lambda p: [], 0),
            "eth_getBalance": Method(self.get_balance, 2),
            "eth_getTransactionCount": Method(self.get_transaction_count, 2),
            "eth_getCode": Method(self.get_code, 2),
            "eth_getStorageAt": Method(self.get_storage_at, 3),
            "eth_sendRawTransaction": Method(self.send_raw_transaction, 1),
            "eth_call": Method(self.call, 2, EXECUTION),
            "eth_estimateGas": Method(self.estimate_gas, 2, EXECUTION),
            "eth_getTransactionReceipt": Method(self.get_transaction_receipt, 1, READ),
            "eth_getTransactionByHash": Method(self.get_transaction_by_hash, 1),
            "eth_getBlockByNumber": Method(self.get_block_by_number, 2, READ),
            "eth_getBlockByHash": Method(self.get_block_by_hash, 2, READ),
            "eth_getBlockTransactionCountByNumber": Method(self.transaction_count_by_number, 1),
            "eth_getBlockTransactionCountByHash": Method(self.transaction_count_by_hash, 1),
            "eth_getTransactionByBlockNumberAndIndex": Method(self.transaction_by_number_and_index, 2, READ),
            "eth_getTransactionByBlockHashAndIndex": Method(self.transaction_by_hash_and_index, 2, READ),
            "eth_getBlockReceipts": Method(self.get_block_receipts, 1, READ),
            "eth_getLogs": Method(self.get_logs, 1, SCAN),
            "eth_newFilter": Method(self.new_filter, 1),
            "eth_newBlockFilter": Method(self.new_block_filter, 0),
            "eth_newPendingTransactionFilter": Method(self.new_pending_transaction_filter, 0),
            "eth_getFilterChanges": Method(self.get_filter_changes, 1, SCAN),
            "eth_getFilterLogs": Method(self.get_filter_logs, 1, SCAN),
            "eth_uninstallFilter": Method(self.uninstall_filter, 1),
            "eth_getProof": Method(self.get_proof, 3, SCAN),
            "eth_feeHistory": Method(self.fee_history, 3, READ),
            "txpool_status": Method(self.txpool_status, 0),
            "net_peerCount": Method(self.peer_count, 0),
            "net_listening": Method(lambda p: True, 0),
            "ewasm_peers": Method(self.peers, 0),
            "ewasm_consensusStatus": Method(self.consensus_status, 0),
            "ewasm_evidence": Method(self.evidence, 0),
            "ewasm_proposeValidatorVote": Method(self.propose_validator_vote, 2, EXECUTION),
            "ewasm_getHeader": Method(self.chain_header, 1, READ),
            "ewasm_getTransactionResult": Method(self.transaction_result, 1, READ),
            "ewasm_getProof": Method(self.proof_at, 3, SCAN),
            "eth_subscribe": Method(_needs_websocket, 2),
            "eth_unsubscribe": Method(_needs_websocket, 1),
        }
        # READ: a receipt's status may be asked of another shard's process.
        for name, (fn, max_params) in receipt_methods(chain, gateway, chain.params.shards.count).items():
            self.table[name] = Method(lambda p, fn=fn: fn(p.values), max_params, READ)

    def lane(self, method: str) -> str:
        """Where `method` runs; unknown methods fail fast on the event loop."""
        entry = self.table.get(method)
        return INLINE if entry is None else entry.lane

    def dispatch(self, method: Any, params: Any, budget: WorkBudget = UNLIMITED, client: str = "") -> Any:
        """Run one method; raises RpcError for every failure the caller caused."""
        if not isinstance(method, str):
            raise RpcError(INVALID_REQUEST, "method must be a string")
        entry = self.table.get(method)
        if entry is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {short(method)} does not exist/is not available")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise RpcError(INVALID_PARAMS, f"{method}: params must be an array")
        if len(params) > entry.max_params:
            raise RpcError(INVALID_PARAMS, f"{method}: takes at most {entry.max_params} parameters, got {len(params)}")
        return entry.fn(_Params(method, params, budget, client))

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
        """A legacy transaction's price that is included: the base fee and the suggested tip."""
        return quantity(self.chain.params.base_fee_per_gas + SUGGESTED_TIP)

    def max_priority_fee(self, p):
        return quantity(SUGGESTED_TIP)

    def txpool_status(self, p):
        """geth's txpool_status: how many transactions are runnable, and how many wait."""
        pending, queued = self.gateway.pool_status()
        return {"pending": quantity(pending), "queued": quantity(queued)}

    def peer_count(self, p):
        """Peers that finished the handshake."""
        return quantity(len(self.status.peers()))

    def peers(self, p):
        return [{"id": data(peer.node_id), "remote": f"{peer.host}:{peer.port}", "direction": peer.direction}
                for peer in self.status.peers()]

    def evidence(self, p):
        return self.status.evidence()

    def syncing(self, p):
        """False, or while the node catches up with its peers, where it is."""
        progress = self.status.sync_progress()
        if progress is None:
            return False
        return dict(zip(("startingBlock", "currentBlock", "highestBlock"), map(quantity, progress)))

    def consensus_status(self, p):
        status = dict(self.status.consensus_status())
        for field in ("validators", "nextValidators"):
            if field in status:
                status[field] = [to_checksum_address(v) for v in status[field]]
        return status

    def propose_validator_vote(self, p):
        """Besu's qbft_proposeValidatorVote, on chain: this node votes, with its own key,
        to add (true) or remove (false) a validator; the vote's transaction hash."""
        candidate = parse_address(p.get(0, "address"))
        add = flag(p.get(1, "add"), "add")
        try:
            return data(self.gateway.propose_validator_vote(candidate, add))
        except ValidatorVoteError as err:
            raise RpcError(TRANSACTION_REJECTED, f"vote refused: {err}") from None
        except InvalidTransaction as err:
            raise RpcError(TRANSACTION_REJECTED, f"{err.reason}: {err}") from None

    def fee_history(self, p):
        """The blocks' fees as they were: the base fee (constant, and the next block's
        too), the share of its gas limit each block used, and at each percentile the tip
        that the block's gas paid, weighted by gas as geth weighs it."""
        count = _block_count(p.get(0, "blockCount"))
        head = self._block_number(p.get(1, "newestBlock"))
        percentiles = _reward_percentiles(p.get(2, "rewardPercentiles", None))
        count = min(count, head + 1)
        base = self.chain.params.base_fee_per_gas
        headers = [self.chain.store.header(n) for n in range(head - count + 1, head + 1)]
        history = {"oldestBlock": quantity(head - count + 1), "baseFeePerGas": [quantity(base)] * (count + 1),
                   "gasUsedRatio": [h.gas_used / h.gas_limit if h.gas_limit else 0.0 for h in headers]}
        if percentiles:
            history["reward"] = [[quantity(t) for t in self._block_tips(h, percentiles, p)] for h in headers]
        return history

    def _block_tips(self, header: Header, percentiles: list[float], p) -> list[int]:
        """The tip per gas at each percentile of the block's gas (0 for an empty block),
        by geth's rule: tips sorted, each percentile's gas threshold truncated to whole gas."""
        p.budget.check_deadline(p.method)
        store, base = self.chain.store, self.chain.params.base_fee_per_gas
        paid = []
        for tx_hash in store.block_tx_hashes(header.number):
            tx = decode_transaction(store.transaction(tx_hash).raw)
            paid.append((tx.effective_gas_price(base) - base, store.receipt(tx_hash).gas_used))
        paid.sort(key=lambda entry: entry[0])
        tips, index, covered = [], 0, 0
        for percentile in percentiles:
            if not paid:
                tips.append(0)
                continue
            threshold = int(float(header.gas_used) * percentile / 100)
            while index < len(paid) - 1 and covered + paid[index][1] < threshold:
                covered += paid[index][1]
                index += 1
            tips.append(paid[index][0])
        return tips

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
        if tag in _FINAL_TAGS:
            return self.status.finalized()
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
            return quantity(self.gateway.pending_nonce(address))
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
            self.gateway.submit_transaction(tx)
        except InvalidTransaction as err:
            raise RpcError(TRANSACTION_REJECTED, f"{err.reason}: {err}") from None
        return data(tx.hash)

    def _call_args(self, p):
        """A call object's fields, each checked against its range (-32602 otherwise)."""
        call = p.get(0, "transaction")
        if not isinstance(call, dict):
            raise RpcError(INVALID_PARAMS, f"{p.method}: the call object must be a JSON object")
        sender = parse_address(call["from"], "from") if call.get("from") is not None else bytes(20)
        to = parse_address(call["to"], "to") if call.get("to") is not None else None
        if "input" in call and "data" in call and call["input"] != call["data"]:
            raise RpcError(INVALID_PARAMS, 'both "input" and "data" are set and they differ')
        payload = parse_data(call.get("input", call.get("data", "0x")), "input")
        gas = bounded(call, "gas", MAX_GAS)
        value = bounded(call, "value", MAX_VALUE)
        return sender, to, payload, 0 if value is None else value, gas

    def call(self, p):
        sender, to, payload, value, gas = self._call_args(p)
        self._latest_state(p.get(1, "block", "latest")).close()
        p.budget.check(p.method)
        result = self.chain.call(sender=sender, to=to, data=payload, value=value, gas=gas)
        p.budget.charge(result.gas_used)
        _raise_unless_success(result, "execution failed")
        return data(result.output)

    def estimate_gas(self, p):
        sender, to, payload, value, gas = self._call_args(p)
        self._latest_state(p.get(1, "block", "latest")).close()

        def each_call(result) -> None:  # the search may run many calls: each one counts
            p.budget.charge(result.gas_used)
            p.budget.check(p.method)

        p.budget.check(p.method)
        result = self.chain.estimate_gas(sender=sender, to=to, data=payload, value=value, gas=gas, on_call=each_call)
        _raise_unless_success(result, "gas required exceeds allowance or execution failed")
        return quantity(result.gas_used)

    def get_transaction_by_hash(self, p):
        tx_hash = parse_data(p.get(0, "hash"), "hash", 32)
        location = self.chain.store.transaction(tx_hash)
        base_fee = self.chain.params.base_fee_per_gas
        if location is None:
            pending = self.gateway.pending_transaction(tx_hash)
            return None if pending is None else render_transaction(pending, None, None, base_fee)
        header = self.chain.store.header(location.block_number)
        return render_transaction(decode_transaction(location.raw), header, location.index, base_fee)

    def _mined(self, p):
        """(hash, where, receipt, block header) of the transaction the first param names,
        or None while it is not in a block."""
        tx_hash = parse_data(p.get(0, "hash"), "hash", 32)
        location = self.chain.store.transaction(tx_hash)
        if location is None:
            return None
        return tx_hash, location, self.chain.store.receipt(tx_hash), self.chain.store.header(location.block_number)

    def get_transaction_receipt(self, p):
        mined = self._mined(p)
        if mined is None:
            return None
        _, location, receipt, header = mined
        first_log_index = self._first_log_index(location.block_number, location.index)
        return render_receipt(decode_transaction(location.raw), receipt, header, location.index, first_log_index,
                              self.chain.params.base_fee_per_gas)

    def transaction_result(self, p):
        """ewasm_getTransactionResult: what this chain says of a transaction beyond its
        receipt: why it failed (null if it did not), and the ids of the cross-shard
        receipts it sent (ewasm_getCrossShardReceipt has them in full)."""
        mined = self._mined(p)
        if mined is None:
            return None
        tx_hash, _, receipt, header = mined
        sent = [data(receipt_id(header.shard_id, header.number, index))
                for index, (origin, _) in enumerate(self.chain.store.outgoing(header.number)) if origin == tx_hash]
        return {"transactionHash": data(tx_hash), "blockNumber": quantity(header.number),
                "status": quantity(receipt.status), "error": receipt.error or None, "crossShardReceipts": sent}

    def _receipt_at(self, tx_hash: bytes, number: int, index: int, first_log_index: int):
        """The rendered receipt of block `number`'s `index`-th transaction."""
        store = self.chain.store
        return render_receipt(decode_transaction(store.transaction(tx_hash).raw), store.receipt(tx_hash),
                              store.header(number), index, first_log_index, self.chain.params.base_fee_per_gas)

    def _first_log_index(self, number: int, tx_index: int) -> int:
        """The block-wide index of the first log of the block's `tx_index`-th transaction."""
        return self.chain.store.logs_before(number, tx_index)

    # -- blocks ---------------------------------------------------------------------
    def get_block_by_number(self, p):
        tag = p.get(0, "block")
        try:
            number = self._block_number(tag)
        except RpcError as err:
            if err.code == RESOURCE_NOT_FOUND:
                return None
            raise
        return self._block(number, flag(p.get(1, "fullTransactions", False), "fullTransactions"))

    def chain_header(self, p):
        """ewasm_getHeader: the header fields this chain adds (by number, tag or hash)."""
        block = p.get(0, "block")
        number = self._block_of(p, "hash" if isinstance(block, str) and len(block) == 66 else "number")
        return None if number is None else render_chain_header(self.chain.store.header(number))

    def get_block_by_hash(self, p):
        number = self.chain.store.block_number_of(parse_data(p.get(0, "hash"), "hash", 32))
        full = flag(p.get(1, "fullTransactions", False), "fullTransactions")
        return None if number is None else self._block(number, full)

    def _block_of(self, p, by: str) -> int | None:
        """The block number the first param names (a number or tag, or a hash); None
        for one this node does not have."""
        if by == "hash":
            return self.chain.store.block_number_of(parse_data(p.get(0, "hash"), "hash", 32))
        try:
            return self._block_number(p.get(0, "block"))
        except RpcError as err:
            if err.code == RESOURCE_NOT_FOUND:
                return None
            raise

    def _transaction_count(self, p, by: str):
        number = self._block_of(p, by)
        return None if number is None else quantity(len(self.chain.store.block_tx_hashes(number)))

    def transaction_count_by_number(self, p):
        return self._transaction_count(p, "number")

    def transaction_count_by_hash(self, p):
        return self._transaction_count(p, "hash")

    def _transaction_at(self, p, by: str):
        number = self._block_of(p, by)
        index = parse_quantity(p.get(1, "index"), "index")
        if number is None:
            return None
        tx_hashes = self.chain.store.block_tx_hashes(number)
        if index >= len(tx_hashes):
            return None
        store = self.chain.store
        return render_transaction(decode_transaction(store.transaction(tx_hashes[index]).raw), store.header(number),
                                  index, self.chain.params.base_fee_per_gas)

    def transaction_by_number_and_index(self, p):
        return self._transaction_at(p, "number")

    def transaction_by_hash_and_index(self, p):
        return self._transaction_at(p, "hash")

    def get_block_receipts(self, p):
        """Every receipt of a block (a number, a tag or, as geth takes it, a hash), in order."""
        block = p.get(0, "block")
        by = "hash" if isinstance(block, str) and len(block) == 66 else "number"
        number = self._block_of(p, by)
        if number is None:
            return None
        receipts, log_index = [], 0
        for index, tx_hash in enumerate(self.chain.store.block_tx_hashes(number)):
            receipts.append(self._receipt_at(tx_hash, number, index, log_index))
            log_index += len(self.chain.store.receipt(tx_hash).logs)
        return receipts

    def _block(self, number: int, full: bool):
        store, base_fee = self.chain.store, self.chain.params.base_fee_per_gas
        header = store.header(number)
        if header is None:
            return None
        tx_hashes = store.block_tx_hashes(number)
        if full:
            txs = [render_transaction(decode_transaction(store.transaction(h).raw), header, i, base_fee)
                   for i, h in enumerate(tx_hashes)]
        else:
            txs = [data(h) for h in tx_hashes]
        logs = [log for h in tx_hashes for log in store.receipt(h).logs]
        return render_block(header, txs, logs, base_fee)

    # -- logs -----------------------------------------------------------------------
    def get_logs(self, p):
        query = p.get(0, "filter")
        if not isinstance(query, dict):
            raise RpcError(INVALID_PARAMS, "eth_getLogs: the filter must be a JSON object")
        first, last = self._log_range(query)
        return self._matching_logs(p, first, last, log_criteria(query))

    def _log_range(self, query: dict) -> tuple[int, int]:
        """The blocks a log query names: its blockHash, or fromBlock..toBlock (bounded)."""
        if "blockHash" in query:
            if "fromBlock" in query or "toBlock" in query:
                raise RpcError(INVALID_PARAMS, "eth_getLogs: blockHash excludes fromBlock and toBlock")
            number = self.chain.store.block_number_of(parse_data(query["blockHash"], "blockHash", 32))
            if number is None:
                raise RpcError(RESOURCE_NOT_FOUND, "block not found")
            return number, number
        first_tag, last_tag = query.get("fromBlock", "latest"), query.get("toBlock", "latest")
        if _NUMBER.fullmatch(str(first_tag)) and _NUMBER.fullmatch(str(last_tag)):
            _check_range(parse_quantity(first_tag, "fromBlock"), parse_quantity(last_tag, "toBlock"))
        first, last = self._block_number(first_tag), self._block_number(last_tag)
        _check_range(first, last)
        if last - first >= MAX_LOG_BLOCK_RANGE:
            raise RpcError(LIMIT_EXCEEDED, f"block range too large: at most {MAX_LOG_BLOCK_RANGE} blocks")
        return first, last

    def _matching_logs(self, p, first: int, last: int, criteria) -> list[dict]:
        result = []
        headers: dict[int, Any] = {}
        for seen, (number, log_index, tx_index, tx_hash, log) in enumerate(self.chain.store.logs(first, last)):
            if seen % 1024 == 0:
                p.budget.check_deadline(p.method)
            if not log_matches(criteria, log):
                continue
            if number not in headers:
                headers[number] = self.chain.store.header(number)
            result.append(render_log(log, headers[number], tx_index, tx_hash, log_index))
            if len(result) > MAX_LOGS:
                raise RpcError(LIMIT_EXCEEDED, f"query returned more than {MAX_LOGS} logs; narrow the range")
        return result

    # -- filters (filters.py) -------------------------------------------------------
    def new_filter(self, p):
        query = p.get(0, "filter")
        if not isinstance(query, dict):
            raise RpcError(INVALID_PARAMS, "eth_newFilter: the filter must be a JSON object")
        criteria = log_criteria(query)  # checked now: a bad filter is refused at install, not at each poll
        if "blockHash" in query:
            self._log_range(query)
        for name in ("fromBlock", "toBlock"):
            tag = query.get(name, "latest")
            if tag not in (*_NEWEST_TAGS, *_FINAL_TAGS, "earliest"):
                parse_quantity(tag, name)  # a block to come is a fine bound for a filter
        return self.filters.install(p.client, LOGS, self.chain.head().number + 1, query=query, criteria=criteria)

    def new_block_filter(self, p):
        return self.filters.install(p.client, BLOCKS, self.chain.head().number + 1)

    def new_pending_transaction_filter(self, p):
        return self.filters.install(p.client, PENDING, self.gateway.pending_since(None)[1])

    def uninstall_filter(self, p):
        return self.filters.uninstall(p.get(0, "id"))

    def get_filter_changes(self, p):
        """What happened since the filter's last poll (or its install): new blocks' hashes,
        new pending transactions' hashes, or the logs of the new blocks."""
        entry = self.filters.poll(p.get(0, "id"))
        if entry.kind == PENDING:
            hashes, entry.cursor = self.gateway.pending_since(entry.cursor)
            return [data(h) for h in hashes]
        head = self.chain.head().number
        last = min(head, entry.cursor + MAX_LOG_BLOCK_RANGE - 1)
        bound = entry.query.get("toBlock", "latest") if entry.kind == LOGS else "latest"
        if bound not in _NEWEST_TAGS:
            last = min(last, self.status.finalized() if bound in _FINAL_TAGS else
                       0 if bound == "earliest" else parse_quantity(bound, "toBlock"))
        first, entry.cursor = entry.cursor, max(entry.cursor, last + 1)
        if entry.kind == BLOCKS:
            return [data(self.chain.store.header(n).hash) for n in range(first, last + 1)]
        if "blockHash" in entry.query:
            return []  # a filter on one block has nothing new to say
        return self._matching_logs(p, first, last, entry.criteria) if first <= last else []

    def get_filter_logs(self, p):
        """Every log the filter's criteria match, as eth_getLogs would answer them."""
        entry = self.filters.poll(p.get(0, "id"))
        if entry.kind != LOGS:
            raise RpcError(INVALID_PARAMS, "eth_getFilterLogs: not a log filter")
        first, last = self._log_range(entry.query)
        return self._matching_logs(p, first, last, entry.criteria)

    # -- proofs ---------------------------------------------------------------------
    def get_proof(self, p):
        return self._proof(p)[0]

    def proof_at(self, p):
        """ewasm_getProof: eth_getProof's result, with the block whose state root the
        proofs lead to (the latest; a block may commit between two requests)."""
        proof, header = self._proof(p)
        return {**proof, "blockNumber": quantity(header.number), "stateRoot": data(header.state_root)}

    def _proof(self, p) -> tuple[dict, Header]:
        address = parse_address(p.get(0, "address"))
        slots = p.get(1, "storageKeys")
        if not isinstance(slots, list) or len(slots) > MAX_PROOF_KEYS:
            raise RpcError(INVALID_PARAMS, f"storageKeys: expected an array of at most {MAX_PROOF_KEYS} keys")
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
        }, header


_NUMBER = re.compile(r"0x[0-9a-fA-F]+")


def _needs_websocket(p):
    """eth_subscribe and eth_unsubscribe over HTTP: subscriptions live on a connection."""
    raise RpcError(METHOD_NOT_SUPPORTED, f"{p.method}: subscriptions need a WebSocket connection (ws:// on the same "
                                         f"port); over HTTP, poll with eth_newFilter and eth_getFilterChanges")


def _check_range(first: int, last: int) -> None:
    """An inverted range is the caller's error, whether or not its blocks exist yet."""
    if first > last:
        raise RpcError(INVALID_PARAMS, f"eth_getLogs: fromBlock {first} is after toBlock {last}")


def _raise_unless_success(result, failure: str) -> None:
    """A call's outcome as Ethereum clients report it: a revert carries its data (3), any
    other failure says what happened (-32000)."""
    if result.status == "REVERT":
        raise RpcError(EXECUTION_REVERTED, "execution reverted", data(result.output))
    if result.status != "SUCCESS":
        raise RpcError(INVALID_INPUT, f"{failure}: {result.status}" + (f" ({result.error})" if result.error else ""))
