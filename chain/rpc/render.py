"""Chain records as the JSON objects of the Ethereum JSON-RPC: transactions, receipts,
logs and blocks, with the fields and encodings that ethereum/execution-apis specifies
(and web3.py and ethers expect), and no others.

What this chain adds to a header (its shard, cross-shard roots, validator set and seal)
and to a receipt (why a failed transaction failed) is rendered apart, for the ewasm_*
methods: a standard object carries only standard fields, so that clients validating
them strictly accept them.

Each function takes the record and the block it belongs to (None for a pending
transaction) and returns the object; nothing here reads the store.
"""

from __future__ import annotations

from chain.core.blocks import Header
from chain.core.bloom import bloom
from chain.core.keys import to_checksum_address
from chain.core.receipts import Log, Receipt
from chain.rpc.values import data, quantity
from chain.tx.transaction import ACCESS_LIST_TX_TYPE, LEGACY_TX_TYPE, SCOPED_TX_TYPE, Transaction

EMPTY_UNCLES_HASH = bytes.fromhex("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")


def render_transaction(tx: Transaction, header: Header | None, index: int | None, base_fee: int) -> dict:
    """A transaction, with its block's fields null while it is pending."""
    result = {
        "hash": data(tx.hash), "nonce": quantity(tx.nonce),
        "blockHash": data(header.hash) if header else None,
        "blockNumber": quantity(header.number) if header else None,
        "blockTimestamp": quantity(header.timestamp) if header else None,
        "transactionIndex": quantity(index) if header else None,
        "from": to_checksum_address(tx.sender), "to": to_checksum_address(tx.to) if tx.to else None,
        "value": quantity(tx.value), "gas": quantity(tx.gas_limit),
        "gasPrice": quantity(tx.effective_gas_price(base_fee)),
        "input": data(tx.data), "type": quantity(tx.tx_type), "chainId": quantity(tx.chain_id),
        "v": quantity(tx.v), "r": quantity(tx.r), "s": quantity(tx.s),
    }
    if tx.tx_type == LEGACY_TX_TYPE:
        return result  # gasPrice and v say it all
    result["yParity"] = quantity(tx.y_parity)
    if tx.tx_type != ACCESS_LIST_TX_TYPE:
        result["maxFeePerGas"] = quantity(tx.max_fee_per_gas)
        result["maxPriorityFeePerGas"] = quantity(tx.max_priority_fee_per_gas)
    if tx.tx_type == SCOPED_TX_TYPE:
        result["scope"] = [data(prefix) for prefix in tx.scope]
    else:
        result["accessList"] = [{"address": to_checksum_address(a), "storageKeys": [data(k) for k in keys]}
                                for a, keys in tx.access_list]
    return result


def render_log(log: Log, header: Header, tx_index: int, tx_hash: bytes, log_index: int) -> dict:
    return {"address": to_checksum_address(log.address), "topics": [data(t) for t in log.topics],
            "data": data(log.data), "blockNumber": quantity(header.number), "blockHash": data(header.hash),
            "transactionHash": data(tx_hash), "transactionIndex": quantity(tx_index),
            "logIndex": quantity(log_index), "removed": False}


def render_receipt(tx: Transaction, receipt: Receipt, header: Header, index: int, first_log_index: int,
                   base_fee: int) -> dict:
    """A receipt; `first_log_index` is the block-wide index of its first log."""
    logs = [render_log(log, header, index, tx.hash, first_log_index + i) for i, log in enumerate(receipt.logs)]
    return {
        "transactionHash": data(tx.hash), "transactionIndex": quantity(index),
        "blockHash": data(header.hash), "blockNumber": quantity(header.number),
        "from": to_checksum_address(tx.sender), "to": to_checksum_address(tx.to) if tx.to else None,
        "cumulativeGasUsed": quantity(receipt.cumulative_gas_used), "gasUsed": quantity(receipt.gas_used),
        "effectiveGasPrice": quantity(tx.effective_gas_price(base_fee)),
        "contractAddress": to_checksum_address(receipt.contract_address) if receipt.contract_address else None,
        "logs": logs, "logsBloom": data(bloom(receipt.logs)), "status": quantity(receipt.status),
        "type": quantity(tx.tx_type),
    }


def render_header(header: Header, logs: list[Log], base_fee: int) -> dict:
    """A block's header as eth_subscribe's newHeads sends it; `logs` are the block's."""
    return {
        "number": quantity(header.number), "hash": data(header.hash), "parentHash": data(header.parent_hash),
        "nonce": "0x0000000000000000", "sha3Uncles": data(EMPTY_UNCLES_HASH), "logsBloom": data(bloom(logs)),
        "transactionsRoot": data(header.transactions_root), "stateRoot": data(header.state_root),
        "receiptsRoot": data(header.receipts_root), "miner": to_checksum_address(header.proposer),
        "difficulty": "0x0", "extraData": data(header.extra_data), "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used), "timestamp": quantity(header.timestamp),
        "baseFeePerGas": quantity(base_fee), "mixHash": data(bytes(32)),
    }


def render_block(header: Header, transactions: list, logs: list[Log], base_fee: int) -> dict:
    """A block; `transactions` are hashes (0x-hex) or rendered transactions."""
    return {**render_header(header, logs, base_fee), "totalDifficulty": "0x0", "size": quantity(len(header.encode())),
            "transactions": transactions, "uncles": []}


def render_chain_header(header: Header) -> dict:
    """ewasm_getHeader: the header fields this chain adds to Ethereum's."""
    return {
        "number": quantity(header.number), "hash": data(header.hash), "shardId": quantity(header.shard_id),
        "proposer": to_checksum_address(header.proposer),
        "outgoingReceiptsRoot": data(header.outgoing_receipts_root), "deliveriesRoot": data(header.deliveries_root),
        "validatorSetHash": data(header.validator_set_hash), "seal": data(header.seal),
    }
