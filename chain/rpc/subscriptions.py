"""eth_subscribe's feeds (geth's pubsub): newHeads, logs and newPendingTransactions.

The hub keeps every WebSocket connection's subscriptions and, when polled, turns what is
new since its last poll into notifications: the header of each block the head moved to,
each of those blocks' logs that a logs subscription's criteria match (rendered as
eth_getLogs renders them), and the hash of each transaction the pool admitted. One poll
serves every subscriber, so a thousand subscribers cost one read of each block.

Polling (server.py does it every POLL_INTERVAL, off the event loop) keeps the node
unaware of its subscribers: nothing the chain or the pool does ever waits for one. A
head that moved to another fork is reported from where the forks meet; logs of blocks
that left the chain are not sent again as removed (this node keeps only its chain's).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable

from chain.rpc.codec import INVALID_PARAMS, LIMIT_EXCEEDED, RpcError
from chain.rpc.filters import log_criteria, log_matches, random_id
from chain.rpc.render import render_header, render_log, render_transaction
from chain.rpc.values import data

NEW_HEADS, LOGS, PENDING = "newHeads", "logs", "newPendingTransactions"
KINDS = (NEW_HEADS, LOGS, PENDING)
BLOCKS = "blocks"  # the feed of newHeads and logs (PENDING names the other)
_FEED = {NEW_HEADS: BLOCKS, LOGS: BLOCKS, PENDING: PENDING}
MAX_PER_CONNECTION = 128
MAX_SUBSCRIPTIONS = 4096  # on the node
MAX_CRITERIA_PER_CONNECTION = 10_000  # addresses and topics of a connection's logs filters together
MAX_BLOCKS_PER_POLL = 256  # a node catching up reports the rest at the next poll
MAX_REMEMBERED = 64  # reported blocks whose hashes are kept, to find where a new fork meets them


@dataclass(frozen=True)
class Subscription:
    id: str
    connection: Hashable
    kind: str
    criteria: Any = None  # logs: (addresses or None, topics per position); pending: whole transactions?


Notification = tuple[Hashable, str, Any]  # (connection, subscription id, result)


class SubscriptionHub:
    """Subscriptions by id, and where each feed's last poll ended (thread-safe: the event
    loop subscribes while a worker thread polls).

    There are two feeds, blocks (newHeads and logs) and admitted transactions, and each
    starts from now when its first subscriber comes: nobody is sent what happened
    before it subscribed. A poll works on copies of the feeds' positions and commits
    them, under the lock, only if no feed restarted meanwhile.
    """

    def __init__(self, methods):
        self.methods = methods  # RpcMethods: its chain and gateway
        self._subscriptions: dict[str, Subscription] = {}
        self._lock = threading.Lock()
        self._reported: OrderedDict[int, bytes] = OrderedDict()  # the hashes of the blocks last reported
        self._pending_cursor: int | None = None
        self._restarts = {BLOCKS: 0, PENDING: 0}  # how often each feed started afresh

    @property
    def active(self) -> bool:
        return bool(self._subscriptions)

    def subscribe(self, connection: Hashable, params: Any) -> str:
        """eth_subscribe's params: [kind], ["logs", {address, topics}], or, as geth takes
        it, ["newPendingTransactions", fullTransactions]; the new id."""
        kind, criteria = _parse(params)
        with self._lock:
            if sum(s.connection == connection for s in self._subscriptions.values()) >= MAX_PER_CONNECTION:
                raise RpcError(LIMIT_EXCEEDED, f"a connection holds at most {MAX_PER_CONNECTION} subscriptions: "
                                               f"eth_unsubscribe some")
            if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
                raise RpcError(LIMIT_EXCEEDED, f"this node holds {MAX_SUBSCRIPTIONS} subscriptions: try again later")
            subscription = Subscription(random_id(), connection, kind, criteria)
            held = sum(_size(s) for s in self._subscriptions.values() if s.connection == connection)
            if held + _size(subscription) > MAX_CRITERIA_PER_CONNECTION:
                raise RpcError(LIMIT_EXCEEDED, f"a connection's logs filters hold at most "
                                               f"{MAX_CRITERIA_PER_CONNECTION} addresses and topics together")
            feed = _FEED[kind]
            if not any(_FEED[s.kind] == feed for s in self._subscriptions.values()):
                self._restart(feed)
            self._subscriptions[subscription.id] = subscription
            return subscription.id

    def _restart(self, feed: str) -> None:
        """The feed starts from now (under the lock)."""
        self._restarts[feed] += 1
        if feed == BLOCKS:
            head = self.methods.chain.head()
            self._reported = OrderedDict([(head.number, head.hash)])
        else:
            self._pending_cursor = self.methods.gateway.pending_since(None)[1]

    def unsubscribe(self, connection: Hashable, subscription_id: Any) -> bool:
        """Only the connection that subscribed can end it."""
        with self._lock:
            subscription = self._subscriptions.get(subscription_id) if isinstance(subscription_id, str) else None
            if subscription is None or subscription.connection != connection:
                return False
            del self._subscriptions[subscription_id]
            return True

    def wants(self, connection: Hashable, subscription_id: str) -> bool:
        """Whether the subscription still exists (a poll may outlive an unsubscribe)."""
        subscription = self._subscriptions.get(subscription_id)
        return subscription is not None and subscription.connection == connection

    def drop(self, connection: Hashable) -> None:
        """A connection closed (or was dropped): its subscriptions end with it."""
        with self._lock:
            for subscription_id in [k for k, s in self._subscriptions.items() if s.connection == connection]:
                del self._subscriptions[subscription_id]

    # -- polling --------------------------------------------------------------------
    def poll(self) -> list[Notification]:
        """The notifications of what happened since the last poll, in order."""
        with self._lock:
            subscriptions = list(self._subscriptions.values())
            restarts = dict(self._restarts)
            reported, cursor = OrderedDict(self._reported), self._pending_cursor
        if not subscriptions:
            return []
        notes: list[Notification] = []
        pending = [s for s in subscriptions if s.kind == PENDING]
        if pending:
            hashes, cursor = self.methods.gateway.pending_since(cursor)
            for tx_hash in hashes:
                whole = None
                for s in pending:
                    if s.criteria and whole is None:
                        whole = self._pending(tx_hash)
                    notes.append((s.connection, s.id, whole if s.criteria else data(tx_hash)))
        if any(_FEED[s.kind] == BLOCKS for s in subscriptions):
            for number in self._new_blocks(reported):
                notes += self._block_notes(number, subscriptions)
        with self._lock:  # commit what this poll reported, unless a feed restarted meanwhile
            if restarts[PENDING] == self._restarts[PENDING] and pending:
                self._pending_cursor = cursor
            if restarts[BLOCKS] == self._restarts[BLOCKS]:
                self._reported = reported
        return notes

    def _new_blocks(self, reported: OrderedDict) -> range:
        """The blocks to report after `reported` (updated in place): those after the last
        one reported, or, if the head moved to another fork, those after where the forks
        meet."""
        store, head = self.methods.chain.store, self.methods.chain.head()
        number = max(reported, default=head.number)
        while number in reported and (number > head.number or _hash(store, number) != reported[number]):
            del reported[number]  # it left the chain: step back towards where the forks meet
            number -= 1
        number = min(number, head.number)
        end = min(head.number, number + MAX_BLOCKS_PER_POLL)
        for n in range(number + 1, end + 1):
            block_hash = _hash(store, n)
            if block_hash is None:  # the head moved back under this poll: the next one goes on
                end = n - 1
                break
            _remember(reported, n, block_hash)
        if not reported and _hash(store, number) is not None:
            _remember(reported, number, _hash(store, number))
        return range(number + 1, end + 1)

    def _pending(self, tx_hash: bytes) -> Any:
        """A pending transaction in full (just its hash if a block took it meanwhile)."""
        tx = self.methods.gateway.pending_transaction(tx_hash)
        return data(tx_hash) if tx is None else render_transaction(tx, None, None,
                                                                  self.methods.chain.params.base_fee_per_gas)

    def _block_notes(self, number: int, subscriptions: list[Subscription]) -> list[Notification]:
        store = self.methods.chain.store
        header = store.header(number)
        logs = list(store.logs(number, number))
        notes: list[Notification] = []
        rendered = render_header(header, [log for *_, log in logs], self.methods.chain.params.base_fee_per_gas)
        notes += [(s.connection, s.id, rendered) for s in subscriptions if s.kind == NEW_HEADS]
        for _, log_index, tx_index, tx_hash, log in logs:
            matched = [s for s in subscriptions if s.kind == LOGS and log_matches(s.criteria, log)]
            if matched:
                entry = render_log(log, header, tx_index, tx_hash, log_index)
                notes += [(s.connection, s.id, entry) for s in matched]
        return notes



def _parse(params: Any) -> tuple[str, Any]:
    """(kind, criteria) of eth_subscribe's params, each checked (-32602)."""
    if not isinstance(params, list) or not params or params[0] not in KINDS:
        raise RpcError(INVALID_PARAMS, f"eth_subscribe: the first parameter is one of {', '.join(KINDS)}")
    kind = params[0]
    if kind == LOGS:
        query = params[1] if len(params) > 1 else {}
        if len(params) > 2 or not isinstance(query, dict) or set(query) - {"address", "topics"}:
            raise RpcError(INVALID_PARAMS, "eth_subscribe logs: the filter is an object of address and topics")
        return kind, log_criteria(query)
    if kind == PENDING and len(params) > 1:
        if len(params) > 2 or not isinstance(params[1], bool):
            raise RpcError(INVALID_PARAMS, "eth_subscribe newPendingTransactions: takes one flag, whether to "
                                           "send whole transactions")
        return kind, params[1]
    if len(params) > 1:
        raise RpcError(INVALID_PARAMS, f"eth_subscribe {kind}: takes no filter")
    return kind, None


def _size(subscription: Subscription) -> int:
    """How many addresses and topics a logs subscription's criteria hold."""
    if subscription.kind != LOGS:
        return 0
    addresses, wanted = subscription.criteria
    return len(addresses or ()) + sum(len(w or ()) for w in wanted)


def _hash(store, number: int) -> bytes | None:
    header = store.header(number)
    return None if header is None else header.hash


def _remember(reported: OrderedDict, number: int, block_hash: bytes) -> None:
    reported[number] = block_hash
    while len(reported) > MAX_REMEMBERED:
        reported.popitem(last=False)
