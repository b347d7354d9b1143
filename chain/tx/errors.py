"""Why the chain refuses a transaction: one exception class per reason, each with a short
`reason` (the JSON-RPC error's prefix) and a message that says exactly what is wrong.
"""

from __future__ import annotations


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


class WrongShard(InvalidTransaction):
    reason = "wrong shard"
