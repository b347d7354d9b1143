"""Signed transactions: Ethereum typed transactions and the native scoped type.

Three typed envelopes are accepted, all as `type byte || rlp(fields)`:

- 0x01, EIP-2930: [chainId, nonce, gasPrice, gasLimit, to, value, data, accessList, y, r, s]
- 0x02, EIP-1559: [chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gasLimit, to, value,
  data, accessList, y, r, s]
- 0x50, native scoped: [chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gasLimit, to,
  value, data, scope, y, r, s] where scope is a list of address prefixes of 0..20 bytes
  (EIP-648 style; the empty prefix covers every address).

For the Ethereum types the access list's addresses become the scope, so that eth-account
signs scoped transactions unchanged. An empty access list means "no declared scope": the
transaction may touch any address (scope = the empty prefix) and the parallel executor
runs it in conflict with everything. The signing hash is keccak(type || rlp(fields
without the signature)), as in EIP-2718.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol, Sequence

import rlp
from rlp.codec import consume_length_prefix, length_prefix

from ewasm_runtime.gas import intrinsic_gas

from .hashing import keccak256
from .keys import InvalidSignatureError, PrivateKey, recover_address
from .params import ChainParams

ACCESS_LIST_TX_TYPE = 0x01
DYNAMIC_FEE_TX_TYPE = 0x02
SCOPED_TX_TYPE = 0x50

class InvalidTransaction(ValueError):
    """A transaction the chain refuses; the message says exactly why."""

    reason = "invalid transaction"


class MalformedTransaction(InvalidTransaction):
    reason = "malformed"


class UnsupportedTransactionType(InvalidTransaction):
    reason = "unsupported type"


class BadSignature(InvalidTransaction):
    reason = "bad signature"


class WrongChainId(InvalidTransaction):
    reason = "wrong chain id"


class NonceTooLow(InvalidTransaction):
    reason = "nonce too low"


class NonceTooHigh(InvalidTransaction):
    reason = "nonce too high"


class InsufficientFunds(InvalidTransaction):
    reason = "insufficient funds"


class GasLimitError(InvalidTransaction):
    reason = "gas limit"


class FeeTooLow(InvalidTransaction):
    reason = "fee too low"


class OversizedTransaction(InvalidTransaction):
    reason = "oversized"


class OutOfScope(InvalidTransaction):
    reason = "out of scope"


@dataclass(frozen=True)
class Transaction:
    """A decoded signed transaction. `sender` is recovered on first use (the costly part)."""

    tx_type: int
    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas_limit: int
    to: bytes | None  # None creates a contract
    value: int
    data: bytes
    scope: tuple[bytes, ...]  # address prefixes; (b"",) = every address
    access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...]
    y_parity: int
    r: int
    s: int
    raw: bytes

    @cached_property
    def hash(self) -> bytes:
        """keccak256 of the raw envelope, as Ethereum computes transaction hashes."""
        return keccak256(self.raw)

    @cached_property
    def signing_hash(self) -> bytes:
        """The hash the sender signed: keccak(type || rlp(unsigned fields))."""
        return keccak256(bytes((self.tx_type,)) + rlp.encode(self._unsigned_fields()))

    @cached_property
    def sender(self) -> bytes:
        """The signer's address (secp256k1 recovery); BadSignature if none recovers."""
        try:
            return recover_address(self.signing_hash, self.y_parity, self.r, self.s)
        except InvalidSignatureError as err:
            raise BadSignature(str(err)) from None

    @property
    def is_create(self) -> bool:
        return self.to is None

    def effective_gas_price(self, base_fee: int) -> int:
        """Price per gas actually paid: EIP-1559's min(maxFee, baseFee + priorityFee)."""
        return min(self.max_fee_per_gas, base_fee + self.max_priority_fee_per_gas)

    def intrinsic_gas(self) -> int:
        """Gas charged before execution: ewasm's rule, the VM's own function (21000, 53000
        for a creation, 68 per non-zero and 4 per zero data byte), so that what the pool
        accepts is exactly what the VM can run."""
        return intrinsic_gas(self.data, self.to is None)

    def _unsigned_fields(self) -> list:
        """The unsigned fields as RLP items (byte strings and lists)."""
        to = self.to or b""
        if self.tx_type == ACCESS_LIST_TX_TYPE:
            return [self.chain_id, self.nonce, self.max_fee_per_gas, self.gas_limit, to, self.value,
                    self.data, [[a, list(k)] for a, k in self.access_list]]
        tail = [[a, list(k)] for a, k in self.access_list] if self.tx_type == DYNAMIC_FEE_TX_TYPE else list(self.scope)
        return [self.chain_id, self.nonce, self.max_priority_fee_per_gas, self.max_fee_per_gas,
                self.gas_limit, to, self.value, self.data, tail]


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
    _, _, _, position = consume_length_prefix(body, 0)
    start = position
    for _ in range(unsigned_count):
        _, _, length, payload_start = consume_length_prefix(body, position)
        position = payload_start + length
    return length_prefix(position - start, 0xC0) + body[start:position]


def decode_transaction(raw: bytes) -> Transaction:
    """Decode a signed typed transaction envelope; MalformedTransaction on bad bytes."""
    if not raw:
        raise MalformedTransaction("empty transaction")
    raw = bytes(raw)
    tx_type = raw[0]
    if tx_type >= 0xC0:
        raise UnsupportedTransactionType(
            "legacy (untyped) transactions are not accepted; send an EIP-1559 (type 2) or EIP-2930 (type 1) transaction")
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


def sign_scoped_transaction(key: PrivateKey, *, chain_id: int, nonce: int, gas_limit: int,
                            to: bytes | None, value: int = 0, data: bytes = b"",
                            scope: Sequence[bytes] = (b"",), max_fee_per_gas: int = 0,
                            max_priority_fee_per_gas: int = 0) -> bytes:
    """Build and sign a native scoped (type 0x50) transaction; returns the raw envelope."""
    unsigned = [chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas_limit, to or b"",
                value, data, list(scope)]
    signing_hash = keccak256(bytes((SCOPED_TX_TYPE,)) + rlp.encode(unsigned))
    y, r, s = key.sign_hash(signing_hash)
    return bytes((SCOPED_TX_TYPE,)) + rlp.encode(unsigned + [y, r, s])


def contract_address(sender: bytes, nonce: int) -> bytes:
    """The address a creation by `sender` at `nonce` deploys to (as in Ethereum)."""
    return keccak256(rlp.encode([sender, nonce]))[12:]


def in_scope(address: bytes, scope: Sequence[bytes]) -> bool:
    """Whether some prefix of the scope is a prefix of `address`."""
    return any(address.startswith(prefix) for prefix in scope)


class AccountReader(Protocol):
    """What stateful validation needs to know about an account."""

    def get_nonce(self, address: bytes) -> int: ...

    def get_balance(self, address: bytes) -> int: ...


def validate_stateless(tx: Transaction, params: ChainParams) -> None:
    """Checks that need no state: size, chain id, gas, fees, signature and scope."""
    if len(tx.raw) > params.max_transaction_size:
        raise OversizedTransaction(
            f"transaction is {len(tx.raw)} bytes, the limit is {params.max_transaction_size}")
    if tx.chain_id != params.chain_id:
        raise WrongChainId(f"transaction is for chain id {tx.chain_id}, this chain is {params.chain_id}")
    if tx.gas_limit > params.block_gas_limit:
        raise GasLimitError(f"gas limit {tx.gas_limit} exceeds the block gas limit {params.block_gas_limit}")
    intrinsic = tx.intrinsic_gas()
    if tx.gas_limit < intrinsic:
        raise GasLimitError(f"gas limit {tx.gas_limit} is below the intrinsic gas {intrinsic}")
    if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
        raise FeeTooLow(f"max priority fee {tx.max_priority_fee_per_gas} exceeds max fee {tx.max_fee_per_gas}")
    if tx.max_fee_per_gas < params.base_fee_per_gas:
        raise FeeTooLow(f"max fee per gas {tx.max_fee_per_gas} is below the base fee {params.base_fee_per_gas}")
    if tx.is_create and len(tx.data) > params.max_code_size:
        raise OversizedTransaction(f"init code is {len(tx.data)} bytes, the limit is {params.max_code_size}")
    sender = tx.sender  # raises BadSignature
    if not in_scope(sender, tx.scope):
        raise OutOfScope(f"sender 0x{sender.hex()} is outside the transaction's scope")
    target = tx.to if tx.to is not None else contract_address(sender, tx.nonce)
    if not in_scope(target, tx.scope):
        what = "recipient" if tx.to is not None else "created contract"
        raise OutOfScope(f"{what} 0x{target.hex()} is outside the transaction's scope")


def upfront_cost(tx: Transaction) -> int:
    """What the sender must hold before execution: gas at the maximum fee plus value."""
    return tx.gas_limit * tx.max_fee_per_gas + tx.value


def validate_against_state(tx: Transaction, state: AccountReader, *, allow_future_nonce: bool = False) -> None:
    """Checks against the sender's account: nonce and balance for gas plus value."""
    sender = tx.sender
    nonce = state.get_nonce(sender)
    if tx.nonce < nonce:
        raise NonceTooLow(f"nonce {tx.nonce} is below the account nonce {nonce} (already used: a replay?)")
    if tx.nonce > nonce and not allow_future_nonce:
        raise NonceTooHigh(f"nonce {tx.nonce} is above the account nonce {nonce}")
    balance = state.get_balance(sender)
    cost = upfront_cost(tx)
    if balance < cost:
        raise InsufficientFunds(
            f"sender 0x{sender.hex()} has balance {balance}, needs {cost} (gas limit x max fee + value)")


def validate(tx: Transaction, params: ChainParams, state: AccountReader, *, allow_future_nonce: bool = False) -> None:
    """All checks, stateless first (they are cheaper except the signature)."""
    validate_stateless(tx, params)
    validate_against_state(tx, state, allow_future_nonce=allow_future_nonce)
