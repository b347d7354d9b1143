"""The transaction type: a decoded, signed transaction and what follows from its fields.

Four envelopes are accepted: EIP-2930 (type 0x01) and EIP-1559 (type 0x02), which
eth-account signs and whose access-list addresses become the scope; the native scoped
type 0x50, whose scope is a list of address prefixes; and legacy EIP-155 transactions
(type 0, untyped), which declare no scope: like an EIP-1559 transaction with an empty
access list, one may touch any account of its sender's shard, and the parallel executor
runs it serially. Declaring a scope is the way to parallelism, not a condition of entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import rlp

from chain.core.hashing import keccak256
from chain.core.keys import InvalidSignatureError, recover_address
from chain.tx.errors import BadSignature
from ewasm_runtime.gas import intrinsic_gas

LEGACY_TX_TYPE = 0x00  # untyped, EIP-155: the chain id is folded into v


ACCESS_LIST_TX_TYPE = 0x01


DYNAMIC_FEE_TX_TYPE = 0x02


SCOPED_TX_TYPE = 0x50


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
        """The hash the sender signed: keccak(type || rlp(unsigned fields)); for a legacy
        transaction keccak(rlp(its six fields, chain id, 0, 0)), as EIP-155 says."""
        if self.tx_type == LEGACY_TX_TYPE:
            return keccak256(rlp.encode(self._unsigned_fields()))
        return keccak256(bytes((self.tx_type,)) + rlp.encode(self._unsigned_fields()))

    @cached_property
    def sender(self) -> bytes:
        """The signer's address (secp256k1 recovery); BadSignature if none recovers."""
        try:
            return recover_address(self.signing_hash, self.y_parity, self.r, self.s)
        except InvalidSignatureError as err:
            raise BadSignature(str(err)) from None

    @property
    def v(self) -> int:
        """The signature's v as the envelope carries it: EIP-155's for a legacy
        transaction, the y parity for the typed ones."""
        return self.chain_id * 2 + 35 + self.y_parity if self.tx_type == LEGACY_TX_TYPE else self.y_parity

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
        if self.tx_type == LEGACY_TX_TYPE:
            return [self.nonce, self.max_fee_per_gas, self.gas_limit, to, self.value, self.data, self.chain_id, 0, 0]
        if self.tx_type == ACCESS_LIST_TX_TYPE:
            return [self.chain_id, self.nonce, self.max_fee_per_gas, self.gas_limit, to, self.value,
                    self.data, [[a, list(k)] for a, k in self.access_list]]
        tail = [[a, list(k)] for a, k in self.access_list] if self.tx_type == DYNAMIC_FEE_TX_TYPE else list(self.scope)
        return [self.chain_id, self.nonce, self.max_priority_fee_per_gas, self.max_fee_per_gas,
                self.gas_limit, to, self.value, self.data, tail]
