"""Filters (eth_newFilter, eth_newBlockFilter, eth_newPendingTransactionFilter): what a
client polls with eth_getFilterChanges instead of asking for everything again.

A filter remembers where its last poll ended (the next block, or a cursor on the node's
feed of admitted transactions). Like geth's, one that nobody polls for FILTER_LIFETIME
is removed; and so that no client can fill the node's memory, a client holds at most
MAX_PER_CLIENT of them and the node MAX_FILTERS. Ids are random 128-bit numbers: knowing
one is what lets a client poll it.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chain.core.receipts import Log
from chain.rpc.codec import INVALID_PARAMS, LIMIT_EXCEEDED, RpcError
from chain.rpc.values import bounded_list, parse_address, parse_data

LOGS, BLOCKS, PENDING = "logs", "blocks", "pending"
MAX_LOG_ADDRESSES = 1_000
MAX_TOPIC_ALTERNATIVES = 1_000
FILTER_LIFETIME = 300.0  # seconds without a poll before a filter is removed (geth's 5 minutes)
MAX_PER_CLIENT = 64
MAX_FILTERS = 10_000


# (the addresses, or None for any; per topic position, the wanted topics, or None for any)
LogCriteria = tuple[set[bytes] | None, list[set[bytes] | None]]


def log_criteria(query: dict) -> LogCriteria:
    """The criteria of a log filter's `address` and `topics`, each checked (-32602)."""
    addresses = query.get("address")
    if addresses is not None:
        addresses = bounded_list(addresses, "address", MAX_LOG_ADDRESSES)
        addresses = {parse_address(a, f"address[{i}]") for i, a in enumerate(addresses)} or None  # [] is any
    topics = query.get("topics") or []
    if not isinstance(topics, list) or len(topics) > 4:
        raise RpcError(INVALID_PARAMS, "topics: expected an array of at most 4 entries")
    wanted = []
    for i, entry in enumerate(topics):
        if entry is None:
            wanted.append(None)
        else:
            entries = bounded_list(entry, f"topics[{i}]", MAX_TOPIC_ALTERNATIVES)
            wanted.append({parse_data(t, f"topics[{i}]", 32) for t in entries} or None)  # [] is any
    return addresses, wanted


def log_matches(criteria: LogCriteria, log: Log) -> bool:
    """Whether `log` comes from one of the addresses and has a wanted topic at each
    position, as geth's filterLogs says: a log with fewer topics than the filter has
    positions never matches, and an empty list (or null) at a position matches any."""
    addresses, wanted = criteria
    if addresses is not None and log.address not in addresses:
        return False
    if len(wanted) > len(log.topics):
        return False
    return all(w is None or log.topics[i] in w for i, w in enumerate(wanted))


@dataclass
class Filter:
    kind: str
    owner: str  # the client address that installed it
    cursor: int  # the next block to report, or the position in the pending feed
    query: dict = field(default_factory=dict)  # a log filter's criteria as given
    criteria: Any = None  # and as parsed (addresses, topics)
    polled: float = field(default_factory=time.monotonic)


class FilterRegistry:
    """The installed filters (thread-safe: the loop and the lanes use it)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._filters: dict[str, Filter] = {}
        self._lock = threading.Lock()

    def install(self, owner: str, kind: str, cursor: int, **details) -> str:
        with self._lock:
            self._expire()
            if len(self._filters) >= MAX_FILTERS:
                raise RpcError(LIMIT_EXCEEDED, f"this node holds {MAX_FILTERS} filters: uninstall some or wait "
                                               f"for unpolled ones to expire ({FILTER_LIFETIME:.0f} s)")
            if sum(f.owner == owner for f in self._filters.values()) >= MAX_PER_CLIENT:
                raise RpcError(LIMIT_EXCEEDED, f"a client holds at most {MAX_PER_CLIENT} filters: uninstall some "
                                               f"(eth_uninstallFilter)")
            filter_id = random_id()
            self._filters[filter_id] = Filter(kind, owner, cursor, polled=self.clock(), **details)
            return filter_id

    def poll(self, filter_id: Any) -> Filter:
        """The filter, its expiry pushed back; -32000 "filter not found" as geth says."""
        with self._lock:
            self._expire()
            entry = self._filters.get(_id(filter_id))
            if entry is None:
                raise RpcError(-32000, "filter not found")
            entry.polled = self.clock()
            return entry

    def uninstall(self, filter_id: Any) -> bool:
        with self._lock:
            return self._filters.pop(_id(filter_id), None) is not None

    def _expire(self) -> None:
        now = self.clock()
        for filter_id in [k for k, f in self._filters.items() if now - f.polled > FILTER_LIFETIME]:
            del self._filters[filter_id]


def random_id() -> str:
    """A random 128-bit id, as a quantity (no leading zeros), as geth makes them."""
    return hex(secrets.randbits(128) | 1)


def _id(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) > 66:
        raise RpcError(INVALID_PARAMS, "a filter id is a 0x-hex string")
    return value.lower()
