"""How much work a request may still do: gas of contract execution shared by a batch,
and a deadline of its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from chain.rpc.codec import LIMIT_EXCEEDED, RpcError


class GasBudget:
    """Gas that the calls of one request, or of one batch together, may still execute."""

    def __init__(self, gas: int):
        self.left = gas


@dataclass(frozen=True)
class WorkBudget:
    """What one request may spend: its batch's gas budget, and time (a monotonic deadline)."""

    gas: GasBudget
    deadline: float = math.inf

    def check(self, method: str) -> None:
        """Refuse more work once the gas is spent or the deadline has passed."""
        if self.gas.left <= 0:
            raise RpcError(LIMIT_EXCEEDED, f"{method}: the calls of this request used up its gas budget; "
                                           f"send the rest in another request")
        self.check_deadline(method)

    def check_deadline(self, method: str) -> None:
        if time.monotonic() >= self.deadline:
            raise RpcError(LIMIT_EXCEEDED, f"{method}: timed out")

    def charge(self, gas: int) -> None:
        self.gas.left -= gas  # a lost update between threads only makes the budget approximate


UNLIMITED = WorkBudget(GasBudget(2**256))
