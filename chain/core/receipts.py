"""Transaction receipts and logs."""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from rlp.codec import encode_raw
from rlp.sedes import Binary, CountableList, big_endian_int, binary

from ewasm_runtime.message import Log  # the VM's event record is the receipt's too

_log = rlp.sedes.List([Binary.fixed_length(20), CountableList(Binary.fixed_length(32)), binary])
_RECEIPT = rlp.sedes.List([big_endian_int, big_endian_int, big_endian_int, CountableList(_log), binary,
                           binary, binary, big_endian_int])

def _uint(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


STATUS_FAILURE = 0
STATUS_SUCCESS = 1


@dataclass(frozen=True)
class Receipt:
    """The outcome of one transaction in a block.

    `error` names why a failed transaction failed (REVERT, OUT_OF_GAS, OUT_OF_RANGE, a
    trap message); it is empty on success. `fee` is what the sender paid the proposer.
    """

    status: int
    gas_used: int
    cumulative_gas_used: int
    logs: tuple[Log, ...]
    contract_address: bytes  # b"" unless the transaction created a contract
    output: bytes
    error: str
    fee: int

    def encode(self) -> bytes:
        """RLP of [status, gasUsed, cumulativeGasUsed, logs, contractAddress, output, error, fee].

        Encoded from plain byte strings with encode_raw: sedes inference would cost more
        than the rest of the block commit. Cached, since the block's receipts root and the
        store both need it."""
        encoded = self.__dict__.get("_encoded")
        if encoded is None:
            encoded = encode_raw([_uint(self.status), _uint(self.gas_used), _uint(self.cumulative_gas_used),
                                  [[log.address, list(log.topics), log.data] for log in self.logs],
                                  self.contract_address, self.output, self.error.encode(), _uint(self.fee)])
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    @classmethod
    def decode(cls, data: bytes) -> "Receipt":
        status, gas_used, cumulative, logs, contract, output, error, fee = rlp.decode(data, sedes=_RECEIPT)
        return cls(status, gas_used, cumulative, tuple(Log(a, tuple(t), d) for a, t, d in logs),
                   contract, output, error.decode(errors="replace"), fee)
