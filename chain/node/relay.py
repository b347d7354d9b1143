"""The receipt relay: how receipts for this shard get here from the shards that sent them.

A node runs every shard, each in a process of its own with its datadir beside the
others (DIR/shard0, DIR/shard1, …), and each shard's RPC endpoint written to
`rpc.url` in its datadir. A shard's relay asks every shard of the same node
(`ewasm_getOutgoingReceipts`) for the final blocks it has not scanned yet: their
headers, which it keeps as the final source headers that deliveries are checked
against (receipt_sources.py), and the receipts for this shard with their proofs,
which go to the inbox once checked and not consumed. Its own shard's receipts for
itself it reads from its own chain.

Crash safety: the state's consumed set decides what is delivered, so the relay only
needs never to skip a receipt. Its cursor per source shard, kept in the store's meta,
never passes the oldest receipt still waiting in the inbox: after a crash it rescans
from there, and receipts consumed meanwhile are filtered out again.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import urllib.parse
from collections import OrderedDict
from typing import Callable

from chain.core.cross_shard import Delivery, MalformedReceipt
from chain.ledger.blockchain import Blockchain
from chain.ledger.receipt_sources import InvalidDelivery, SourceHeader, check_delivery
from chain.txpool.inbox import ADDED, FULL, ReceiptInbox

log = logging.getLogger("ewasm.relay")

URL_FILE = "rpc.url"  # a node writes its RPC endpoint here once it serves
POLL_INTERVAL = 0.1  # seconds between scans of the other shards
SCAN_LIMIT = 256  # source blocks asked for at once
HEADER_CACHE = 16_384  # final source headers kept per node
CALL_TIMEOUT = 5.0
# A header the cache misses is asked for while a block is checked, under the chain's
# lock: a shard that does not answer soon makes the check fail (and be retried), not wait.
LOOKUP_TIMEOUT = 1.0


class ShardUnavailable(RuntimeError):
    """Another shard of this node did not answer (not started yet, restarting, or gone)."""


class ShardRefused(ShardUnavailable):
    """Another shard of this node answered with an error: a bug, not a restart."""


class ShardLink:
    """JSON-RPC to one shard of this node, found through its datadir's URL_FILE (which
    a restarted shard rewrites with its new port). Each thread keeps its connection
    open between calls: a relay polls ten times a second, and a new connection each
    time would leave thousands of sockets in TIME_WAIT."""

    def __init__(self, shard: int, datadir: str):
        self.shard, self.datadir = shard, datadir
        self._local = threading.local()

    def url(self) -> str:
        try:
            with open(os.path.join(self.datadir, URL_FILE), encoding="ascii") as f:
                return f.read().strip()
        except (OSError, UnicodeDecodeError):
            raise ShardUnavailable(f"shard {self.shard} does not serve yet (no {URL_FILE} in {self.datadir})") from None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        url = urllib.parse.urlsplit(self.url())
        held = getattr(self._local, "held", None)
        if held is None or held[0] != url.netloc:  # none yet, or the shard restarted on another port
            if held is not None:
                held[1].close()
            held = self._local.held = (url.netloc, http.client.HTTPConnection(url.hostname, url.port))
        held[1].timeout = timeout
        if held[1].sock is not None:
            held[1].sock.settimeout(timeout)
        return held[1]

    def call(self, method: str, params: list, timeout: float = CALL_TIMEOUT):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        for attempt in (1, 2):  # a kept connection the shard has closed fails once: connect again
            connection = self._connection(timeout)
            try:
                connection.request("POST", "/", body, {"Content-Type": "application/json"})
                answer = json.loads(connection.getresponse().read())
                break
            except (OSError, ValueError, http.client.HTTPException) as err:  # refused, reset, timed out, not JSON
                connection.close()
                self._local.held = None
                if attempt == 2 or isinstance(err, (TimeoutError, ValueError)):
                    raise ShardUnavailable(f"shard {self.shard} did not answer {method}: {err}") from None
        if not isinstance(answer, dict) or "error" in answer or "result" not in answer:
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise ShardRefused(f"shard {self.shard} refused {method}: {error}")
        return answer["result"]


def sibling_links(datadir: str, shard: int, count: int) -> dict[int, ShardLink]:
    """The other shards of a node whose shard `shard` lives in `datadir` (DIR/shardK)."""
    parent = os.path.dirname(os.path.abspath(datadir))
    return {j: ShardLink(j, os.path.join(parent, f"shard{j}")) for j in range(count) if j != shard}


def _cursor_key(shard: int) -> bytes:
    return b"relay-cursor:" + bytes((shard,))


class ReceiptRelay:
    """Scans the other shards' final blocks for receipts to this shard, and answers
    which of their blocks are final (the chain's `sources`)."""

    def __init__(self, chain: Blockchain, inbox: ReceiptInbox, links: dict[int, ShardLink],
                 on_receipts: Callable[[], None]):
        self.chain, self.inbox, self.links, self.on_receipts = chain, inbox, links, on_receipts
        self.shard = chain.params.shard_id
        self._headers: OrderedDict[tuple[int, int], SourceHeader] = OrderedDict()
        self._lock = threading.Lock()
        self._next = {j: self._saved_cursor(j) for j in range(chain.params.shards.count)}
        self._saved = dict(self._next)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the chain's FinalSources ----------------------------------------------------
    def final_header(self, shard: int, number: int) -> SourceHeader | None:
        if shard == self.shard:
            return self.chain.final_header(shard, number)
        with self._lock:
            known = self._headers.get((shard, number))
        if known is not None:
            return known
        link = self.links.get(shard)
        if link is None:
            return None
        try:
            self._scan_blocks(shard, link.call("ewasm_getOutgoingReceipts", [hex(self.shard), hex(number), "0x1"],
                                               timeout=LOOKUP_TIMEOUT))
        except (ShardUnavailable, MalformedReceipt, KeyError, TypeError, ValueError) as err:
            log.debug("cannot learn block %d of shard %d: %s", number, shard, err)
            return None
        with self._lock:
            return self._headers.get((shard, number))

    # -- scanning --------------------------------------------------------------------
    def scan_once(self) -> int:
        """One round over every shard; returns how many receipts were added to the inbox."""
        added = 0
        for shard in range(self.chain.params.shards.count):
            if self.inbox.full:
                break
            try:
                added += self._scan_shard(shard)
            except ShardRefused as err:
                log.warning("%s", err)
            except ShardUnavailable as err:
                log.debug("%s", err)
            except (MalformedReceipt, KeyError, TypeError, ValueError) as err:
                log.warning("shard %d sent a bad answer: %s", shard, err)
        if added:
            self.on_receipts()
        return added

    def _scan_shard(self, shard: int) -> int:
        """Offer the receipts of `shard`'s final blocks from the cursor on, block by block;
        a block whose receipts do not all fit in the inbox is scanned again next round."""
        start = self._next[shard]
        if shard == self.shard:
            last = min(self.chain.finalized, start + SCAN_LIMIT - 1)
            blocks = [(n, self.chain.outgoing_deliveries(n, self.shard)) for n in range(start, last + 1)]
        else:
            answer = self.links[shard].call("ewasm_getOutgoingReceipts",
                                            [hex(self.shard), hex(start), hex(SCAN_LIMIT)])
            blocks = [(n, [Delivery.decode(bytes.fromhex(raw[2:])) for raw in raws])
                      for n, raws in self._scan_blocks(shard, answer)]
        added = 0
        for number, deliveries in blocks:
            offered = [self._offer(d) for d in deliveries]
            added += offered.count(ADDED)
            if FULL in offered:
                break
            self._advance(shard, number + 1)
        return added

    def _scan_blocks(self, shard: int, answer: dict) -> list[tuple[int, list[str]]]:
        """Record the answer's final headers; its blocks, each with its encoded deliveries."""
        blocks = []
        for entry in answer["blocks"]:
            number = int(entry["number"], 16)
            header = SourceHeader(shard, number, bytes.fromhex(entry["hash"][2:]),
                                  bytes.fromhex(entry["outgoingRoot"][2:]))
            with self._lock:
                self._headers[(shard, number)] = header
                self._headers.move_to_end((shard, number))
                while len(self._headers) > HEADER_CACHE:
                    self._headers.popitem(last=False)
            blocks.append((number, entry["deliveries"]))
        return blocks

    def _offer(self, delivery: Delivery) -> str:
        """Add a delivery that checks out and is not consumed yet: the inbox's ADDED,
        HELD or FULL, or "skipped" (consumed, or refused, which is logged)."""
        try:
            check_delivery(delivery, self.chain.params, self)
        except InvalidDelivery as err:
            log.warning("relayed receipt refused: %s", err)
            return "skipped"
        if self.chain.consumed(delivery.receipt.id) is not None:
            return "skipped"
        return self.inbox.add(delivery)

    def _advance(self, shard: int, next_block: int) -> None:
        """Scan on from `next_block` (every receipt before it is in the inbox or consumed);
        the saved cursor stays at the oldest receipt waiting, so a restart finds it."""
        self._next[shard] = max(self._next[shard], next_block)
        waiting = self.inbox.oldest_block(shard)
        saved = self._next[shard] if waiting is None else min(waiting, self._next[shard])
        if saved != self._saved[shard]:
            self.chain.store.put_meta(_cursor_key(shard), saved.to_bytes(8, "big"))
            self._saved[shard] = saved

    def rewind(self, source_shard: int, block: int) -> None:
        """A receipt of `block` is waiting again (a reverted block had consumed it): keep
        the saved cursor at or before it, so that a restart scans it again."""
        self._next[source_shard] = min(self._next[source_shard], block)
        if block < self._saved_cursor(source_shard):  # the store's, not a cached copy: this is rare
            self.chain.store.put_meta(_cursor_key(source_shard), block.to_bytes(8, "big"))
        self._saved[source_shard] = min(self._saved[source_shard], block)

    def _saved_cursor(self, shard: int) -> int:
        saved = self.chain.store.get_meta(_cursor_key(shard))
        return 1 if saved is None else max(1, int.from_bytes(saved, "big"))

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="receipt-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CALL_TIMEOUT + 1)

    def _loop(self) -> None:
        while not self._stop.wait(POLL_INTERVAL):
            try:
                self.scan_once()
            except Exception:  # a relay bug must not take the shard down; the next round retries
                log.exception("receipt relay round failed")
