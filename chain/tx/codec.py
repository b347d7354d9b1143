"""Decoding signed transaction envelopes: strict RLP, every field checked, a precise
MalformedTransaction for anything else.
"""

from __future__ import annotations

import rlp
from rlp.codec import consume_length_prefix, length_prefix

from chain.core.hashing import keccak256
from chain.tx.errors import MalformedTransaction, UnsupportedTransactionType
from chain.tx.transaction import ACCESS_LIST_TX_TYPE, DYNAMIC_FEE_TX_TYPE, LEGACY_TX_TYPE, SCOPED_TX_TYPE, Transaction

_FIELD_COUNT = {ACCESS_LIST_TX_TYPE: 11, DYNAMIC_FEE_TX_TYPE: 12, SCOPED_TX_TYPE: 12}


_FIELD_NAMES = {
    ACCESS_LIST_TX_TYPE: ("chainId", "nonce", "gasPrice", "gasLimit", "to", "value", "data", "accessList",
                          "yParity", "r", "s"),
    DYNAMIC_FEE_TX_TYPE: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value",
                          "data", "accessList", "yParity", "r", "s"),
    SCOPED_TX_TYPE: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value",
                     "data", "scope", "yParity", "r", "s"),
}


def _uint(item, name: str) -> int:
    """A canonical RLP integer (no leading zero bytes), at most 256 bits."""
    if not isinstance(item, bytes):
        raise MalformedTransaction(f"field {name} must be an integer, got a list")
    if item[:1] == b"\x00":
        raise MalformedTransaction(f"field {name} has leading zero bytes")
    if len(item) > 32:
        raise MalformedTransaction(f"field {name} exceeds 256 bits")
    return int.from_bytes(item, "big")


def _bytes(item, name: str, *, lengths: tuple[int, ...] | None = None, max_length: int | None = None) -> bytes:
    if not isinstance(item, bytes):
        raise MalformedTransaction(f"field {name} must be a byte string, got a list")
    if lengths is not None and len(item) not in lengths:
        raise MalformedTransaction(f"field {name} must be {' or '.join(map(str, lengths))} bytes, got {len(item)}")
    if max_length is not None and len(item) > max_length:
        raise MalformedTransaction(f"field {name} must be at most {max_length} bytes, got {len(item)}")
    return item


def _access_list(item) -> tuple[tuple[bytes, tuple[bytes, ...]], ...]:
    if not isinstance(item, list):
        raise MalformedTransaction("field accessList must be a list")
    entries = []
    for entry in item:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], list):
            raise MalformedTransaction("an access list entry is [address, [storage keys]]")
        address = _bytes(entry[0], "accessList address", lengths=(20,))
        keys = tuple(_bytes(k, "accessList storage key", lengths=(32,)) for k in entry[1])
        entries.append((address, keys))
    return tuple(entries)


def _unsigned_encoding(body: bytes, unsigned_count: int) -> bytes:
    """The RLP list of the first `unsigned_count` fields, cut from the signed encoding.

    Re-encoding the decoded fields would cost more than the decode itself; the fields'
    encodings are already in `body`, so only the list header is new.
    """
    start, end = _fields_span(body, unsigned_count)
    return length_prefix(end - start, 0xC0) + body[start:end]


def _fields_span(body: bytes, count: int) -> tuple[int, int]:
    """Where the encodings of the first `count` fields of the RLP list `body` lie."""
    _, _, _, position = consume_length_prefix(body, 0)
    start = position
    for _ in range(count):
        _, _, length, payload_start = consume_length_prefix(body, position)
        position = payload_start + length
    return start, position


def decode_transaction(raw: bytes) -> Transaction:
    """Decode a signed typed transaction envelope; MalformedTransaction on bad bytes."""
    if not raw:
        raise MalformedTransaction("empty transaction")
    raw = bytes(raw)
    tx_type = raw[0]
    if tx_type >= 0xC0:
        return decode_legacy(raw)
    count = _FIELD_COUNT.get(tx_type)
    if count is None:
        raise UnsupportedTransactionType(f"transaction type 0x{tx_type:02x} is not supported (accepted: 0x01, 0x02, 0x50)")
    try:
        fields = rlp.decode(raw[1:], strict=True)
    except rlp.DecodingError as err:
        raise MalformedTransaction(f"bad RLP in type 0x{tx_type:02x} transaction: {err}") from None
    if not isinstance(fields, list) or len(fields) != count:
        raise MalformedTransaction(
            f"a type 0x{tx_type:02x} transaction is a list of {count} fields: {', '.join(_FIELD_NAMES[tx_type])}")
    names = _FIELD_NAMES[tx_type]
    ints = {i: _uint(fields[i], names[i]) for i in range(count) if names[i] not in ("to", "data", "accessList", "scope")}
    if tx_type == ACCESS_LIST_TX_TYPE:
        priority = max_fee = ints[2]
        gas_limit, to_index = ints[3], 4
    else:
        priority, max_fee, gas_limit, to_index = ints[2], ints[3], ints[4], 5
    to = _bytes(fields[to_index], "to", lengths=(0, 20))
    value = ints[to_index + 1]
    data = _bytes(fields[to_index + 2], "data")
    tail = fields[to_index + 3]
    if tx_type == SCOPED_TX_TYPE:
        if not isinstance(tail, list):
            raise MalformedTransaction("field scope must be a list of address prefixes")
        scope = tuple(_bytes(p, "scope prefix", max_length=20) for p in tail)
        access_list: tuple = ()
    else:
        access_list = _access_list(tail)
        addresses = tuple(dict.fromkeys(address for address, _ in access_list))
        scope = addresses if addresses else (b"",)
    tx = Transaction(
        tx_type=tx_type, chain_id=ints[0], nonce=ints[1], max_priority_fee_per_gas=priority,
        max_fee_per_gas=max_fee, gas_limit=gas_limit, to=to or None, value=value, data=data,
        scope=scope, access_list=access_list,
        y_parity=ints[count - 3], r=ints[count - 2], s=ints[count - 1], raw=raw)
    # Cache the signing hash from the encoding we already have.
    tx.__dict__["signing_hash"] = keccak256(bytes((tx_type,)) + _unsigned_encoding(raw[1:], count - 3))
    return tx


_LEGACY_NAMES = ("nonce", "gasPrice", "gasLimit", "to", "value", "data", "v", "r", "s")


def decode_legacy(raw: bytes) -> Transaction:
    """An untyped transaction (an RLP list), accepted only as EIP-155 made it: with the
    chain id in v, so that it cannot be replayed on another chain."""
    try:
        fields = rlp.decode(raw, strict=True)
    except rlp.DecodingError as err:
        raise MalformedTransaction(f"bad RLP in a legacy transaction: {err}") from None
    if not isinstance(fields, list) or len(fields) != 9:
        raise MalformedTransaction(f"a legacy transaction is a list of 9 fields: {', '.join(_LEGACY_NAMES)}")
    nonce, gas_price, gas_limit = (_uint(fields[i], _LEGACY_NAMES[i]) for i in range(3))
    to = _bytes(fields[3], "to", lengths=(0, 20))
    value, data = _uint(fields[4], "value"), _bytes(fields[5], "data")
    v, r, s = (_uint(fields[i], _LEGACY_NAMES[i]) for i in range(6, 9))
    if v in (27, 28):
        raise UnsupportedTransactionType(
            "a legacy transaction without a chain id (v = 27 or 28, before EIP-155) can be replayed on any chain: "
            "sign it with the chain id (EIP-155), or send an EIP-1559 (type 2) transaction")
    if v < 35:
        raise MalformedTransaction(f"field v is {v}: an EIP-155 legacy transaction has v = chain id x 2 + 35 or 36")
    chain_id, y_parity = (v - 35) // 2, (v - 35) % 2
    tx = Transaction(
        tx_type=LEGACY_TX_TYPE, chain_id=chain_id, nonce=nonce, max_priority_fee_per_gas=gas_price,
        max_fee_per_gas=gas_price, gas_limit=gas_limit, to=to or None, value=value, data=data, scope=(b"",),
        access_list=(), y_parity=y_parity, r=r, s=s, raw=raw)
    start, end = _fields_span(raw, 6)  # the six fields as signed, then EIP-155's chain id, 0, 0
    payload = raw[start:end] + rlp.encode(chain_id) + b"\x80\x80"
    tx.__dict__["signing_hash"] = keccak256(length_prefix(len(payload), 0xC0) + payload)
    return tx
