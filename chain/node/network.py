"""The node on the network: it passes transactions on, announces and imports blocks, and
catches up with peers that are ahead.

The transport (chain/net/transport.py) hands every message to `on_message` on its own
thread; this service queues it and does the work on two threads of its own, so that
neither block import nor pool admission holds up the transport, and a block never waits
behind thousands of transactions to admit (which would make the next validator build
on an older head). What it does with each message:

- Status, and the number of an announced block: the peer's head, for sync;
- Transactions: each one not seen before (by the hash of its bytes, before any decoding:
  in a full mesh most copies are duplicates) is admitted to the pool and passed on to
  every other peer. A peer that relays a malformed transaction is banned; one the pool
  refuses (a used nonce, a full queue) is simply not passed on. When admission falls
  this far behind, further batches are dropped: transactions are best effort, and the
  node that took one from its client passes it to every validator itself;
- NewBlock: the block that extends the head is imported (full validation) and passed
  on; one further ahead makes the node catch up; one that fails import gets its sender
  banned;
- GetBlocks: answered from the store; Blocks: the answer to this node's own request,
  imported in order (chain/net/sync.py decides whom to ask for what).

A peer that connects is sent this node's head and its pending transactions, so that a
transaction submitted while two nodes were apart still reaches the authority.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import TYPE_CHECKING

from chain.core.blocks import Block, InvalidBlock, NotYetVerifiable
from chain.core.hashing import EMPTY_CODE_HASH, keccak256
from chain.core.system import IS_ALLOWED, PERMISSIONS, YES, permission_call
from chain.net import wire
from chain.net.faults import DelayLine, LossyLinks
from chain.net.gossip import SeenHashes, transaction_messages
from chain.net.peers import PeerInfo
from chain.net.sync import BlockSync, sync_progress
from chain.net.transport import Transport, TransportConfig
from chain.node.config import NetworkConfig
from chain.node.forks import SideBlocks
from chain.tx.codec import decode_transaction
from chain.tx.errors import (
    BadSignature,
    InvalidTransaction,
    MalformedTransaction,
    OversizedTransaction,
    UnsupportedTransactionType,
    WrongChainId,
)
from chain.tx.transaction import Transaction

if TYPE_CHECKING:
    from chain.node.node import Node

log = logging.getLogger("ewasm.network")

# What a relayed transaction may not be: an honest node admitted it, so it was well formed.
RELAY_FAULTS = (MalformedTransaction, BadSignature, UnsupportedTransactionType, WrongChainId, OversizedTransaction)
MAX_QUEUED_EVENTS = 4096  # block and sync messages waiting; a peer that floods past it is banned
MAX_QUEUED_BATCHES = 1024  # Transactions messages waiting for admission; more are dropped
BLOCKS_ANSWER_BYTES = 16 << 20  # what one Blocks answer carries at most
ADMISSION_NICENESS = 10  # added to the relayed-transaction worker's nice value
GOSSIP_INTERVAL = 0.02  # seconds new transactions are batched for before they go out


class NetworkService:
    def __init__(self, node: "Node", config: NetworkConfig, lossy: LossyLinks | None = None):
        chain = node.chain
        self.node = node
        self.spec_nodes = frozenset(chain.spec.network.nodes)
        self._permissions_at: bytes = b""  # the head hash the cached answers are for
        self._permissions: dict[bytes, bool] = {}
        self.transport = Transport(TransportConfig(node.config.key, chain.params.chain_id, chain.store.header(0).hash,
                                                   config.host, config.port, config.peers),
                                   self.is_allowed, self)
        self.sync = BlockSync()
        self._sync_started: int | None = None  # the head when the node fell behind (eth_syncing)
        self.lossy = None if lossy is None else DelayLine(lossy, self.transport.send)
        self.side = SideBlocks()
        self._fork_requests: dict[bytes, float] = {}  # peer -> when it was asked for a fork's blocks
        self.seen = SeenHashes()
        self._events: queue.Queue = queue.Queue(MAX_QUEUED_EVENTS)
        self._batches: queue.Queue = queue.Queue(MAX_QUEUED_BATCHES)
        self._dropped_batches = 0
        self._outgoing: list[bytes] = []  # raw transactions to pass on, with their sources
        self._sources: list[bytes | None] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- what the node asks ---------------------------------------------------------
    def is_allowed(self, node_id: bytes) -> bool:
        """Whether the permission list at the head allows `node_id` (cached per head).

        The list is the permission contract's at 0x…ff01 (chain/core/system.py), asked
        through isAllowed; a chain without one uses the spec's "network" nodes."""
        head = self.node.head().hash
        if head != self._permissions_at:
            self._permissions_at, self._permissions = head, {}
        answer = self._permissions.get(node_id)
        if answer is None:
            answer = self._permissions[node_id] = self._ask_permissions(node_id)
        return answer

    def _ask_permissions(self, node_id: bytes) -> bool:
        chain = self.node.chain
        with chain.snapshot() as snapshot:
            deployed = snapshot.get_account(PERMISSIONS).code_hash != EMPTY_CODE_HASH
        if not deployed:
            return node_id in self.spec_nodes
        result = chain.call(sender=bytes(20), to=PERMISSIONS, data=permission_call(IS_ALLOWED, node_id), gas=1_000_000)
        return result.status == "SUCCESS" and result.output == YES

    def permissions_changed(self) -> None:
        """A block changed the permission list: drop the peers it no longer allows."""
        self.transport.refresh_permissions()

    def peers(self) -> list[PeerInfo]:
        return self.transport.peers()

    def syncing(self) -> bool:
        return self.sync.behind(self.node.head().number)

    def sync_progress(self) -> tuple[int, int, int] | None:
        """(starting, current, highest block) while catching up with the peers, else None."""
        progress, self._sync_started = sync_progress(self.node.head().number, self.sync.highest(), self._sync_started)
        return progress

    def gossip(self, tx: Transaction, source: bytes | None = None) -> None:
        """Pass a newly admitted transaction on (batched), to everyone but `source`."""
        self.seen.add(tx.hash)
        with self._lock:
            self._outgoing.append(tx.raw)
            self._sources.append(source)

    def announce(self, block: Block, source: bytes | None = None) -> None:
        """Tell the peers (but `source`) of a block this node committed."""
        self.transport.broadcast(wire.NewBlock(block.encode()), exclude=source)

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self.transport.start()
        self._threads = [threading.Thread(target=self._work_blocks, name="network-blocks", daemon=True),
                         threading.Thread(target=self._work_transactions, name="network-transactions", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.transport.stop()
        for thread in self._threads:
            thread.join(timeout=30)

    # -- from the transport's thread ------------------------------------------------
    def on_peer(self, node_id: bytes, connected: bool) -> None:
        self._queue(("peer", node_id, connected))

    def on_message(self, node_id: bytes, message: wire.Message) -> None:
        if not isinstance(message, wire.Transactions):
            self._queue(("message", node_id, message))
            return
        try:
            self._batches.put_nowait((node_id, message.raws))
        except queue.Full:
            self._dropped_batches += 1
            if self._dropped_batches % 100 == 1:
                log.warning("admission is behind: dropped %d batches of transactions so far", self._dropped_batches)

    def _queue(self, event) -> None:
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self.transport.ban(event[1], f"flooded this node with more than {MAX_QUEUED_EVENTS} waiting messages")

    # -- the workers ----------------------------------------------------------------
    def _work_blocks(self) -> None:
        """Peers, blocks and sync, in the order they came."""
        while not self._stop.is_set():
            try:
                kind, node_id, payload = self._events.get(timeout=0.1)
            except queue.Empty:
                pass
            else:
                self._guarded(kind, node_id, self._on_peer if kind == "peer" else self._on_message, payload)
            self._request_blocks()
            self.side.prune(self.node.finalized())

    def _work_transactions(self) -> None:
        """Transactions from peers to admit, and what to pass on, every GOSSIP_INTERVAL."""
        _lower_priority()
        while not self._stop.is_set():
            try:
                node_id, raws = self._batches.get(timeout=GOSSIP_INTERVAL)
            except queue.Empty:
                pass
            else:
                self._guarded("transactions", node_id, self._on_transactions, raws)
            self._flush_gossip()

    def _guarded(self, kind: str, node_id: bytes, handle, payload) -> None:
        try:
            handle(node_id, payload)
        except Exception:  # a bug: report it, keep the node on the network
            log.exception("handling %s from 0x%s failed", kind, node_id.hex())

    def _on_peer(self, node_id: bytes, connected: bool) -> None:
        if not connected:
            self.sync.on_peer_gone(node_id)
            return
        head = self.node.head()
        self.transport.send(node_id, wire.Status(head.number, head.hash))
        for message in transaction_messages(self.node.pending_raws()):
            self.transport.send(node_id, message)
        on_peer = getattr(self.node.engine, "on_peer", None)
        for payload in on_peer(node_id) if on_peer is not None else ():
            self.transport.send(node_id, wire.Consensus(payload))

    def _on_message(self, node_id: bytes, message: wire.Message) -> None:
        if isinstance(message, wire.Status):
            self.sync.on_head(node_id, message.head_number)
        elif isinstance(message, wire.NewBlock):
            self._on_new_block(node_id, message.block)
        elif isinstance(message, wire.GetBlocks):
            self._answer(node_id, message.first, message.count)
        elif isinstance(message, wire.Blocks):
            self._on_blocks(node_id, message.blocks)
        elif isinstance(message, wire.Consensus):
            self._on_consensus(node_id, message.payload)

    def _on_consensus(self, node_id: bytes, payload: bytes) -> None:
        on_message = getattr(self.node.engine, "on_message", None)
        if on_message is None:
            return  # an engine without messages: nothing to do with them
        reason = on_message(node_id, payload)
        if reason is not None:
            self.transport.ban(node_id, reason)

    def broadcast_consensus(self, payload: bytes) -> int:
        """Send an engine's message to every peer; returns how many."""
        peers = self.transport.peers()
        if self.lossy is not None:  # test-only faults (chain/net/faults.py)
            return sum(self.lossy.offer(peer.node_id, wire.Consensus(payload)) for peer in peers)
        self.transport.broadcast(wire.Consensus(payload))
        return len(peers)

    def _on_transactions(self, node_id: bytes, raws: tuple[bytes, ...]) -> None:
        for raw in raws:
            if not self.seen.add(keccak256(raw)):
                continue
            try:
                tx = decode_transaction(raw)
                self.node.admit(tx)
            except RELAY_FAULTS as err:
                self.transport.ban(node_id, f"relayed a malformed transaction: {err.reason}: {err}")
                return
            except InvalidTransaction:
                continue  # stale, known or refused by the pool: not passed on
            self.gossip(tx, source=node_id)

    def _on_new_block(self, node_id: bytes, data: bytes) -> None:
        try:
            block = Block.decode(data)
        except InvalidBlock as err:
            self.transport.ban(node_id, f"announced a malformed block: {err}")
            return
        self.sync.on_head(node_id, block.number)
        self._take(node_id, block, announced=True)

    def _take(self, node_id: bytes, block: Block, announced: bool = False) -> Block | None:
        """Import a block that extends the head; keep one that does not, as a possible
        fork. Returns the block when it is kept aside (a fork's tip to consider)."""
        with self.node.chain.lock:  # the head must not move (a block of this node's) between check and import
            head = self.node.head()
            if self._on_chain(block.hash) is not None:
                return None  # known
            self._witness(block)
            if block.header.parent_hash == head.hash:
                imported = self._import(node_id, block)
            elif block.number <= self.node.finalized():
                return None  # below finality no fork can win
            else:
                self.side.add(block)
                return block
        if imported and announced:
            self.announce(block, source=node_id)
        return None

    def _witness(self, block: Block) -> None:
        """Let the engine see who sealed what (evidence of double sealing)."""
        try:
            self.node.engine.witness(block.header)
        except InvalidBlock:
            pass  # malformed for this engine: import will say so

    def _on_chain(self, block_hash: bytes) -> int | None:
        return self.node.chain.store.block_number_of(block_hash)

    def _consider_fork(self, node_id: bytes, tip: Block) -> None:
        """Switch to the branch ending at `tip` if the engine prefers it; ask `node_id`
        for the blocks below it when some are missing."""
        branch = self.side.branch(tip, self._on_chain)
        if isinstance(branch, bytes):
            first = max(self.node.finalized() + 1, tip.number - wire.MAX_BLOCKS + 1)
            self._fork_requests[node_id] = time.monotonic()
            self.transport.send(node_id, wire.GetBlocks(first, tip.number - first + 1))
            return
        if not self.node.engine.prefers(tip.header, self.node.head()):
            return
        try:
            self.node.switch_to(branch.ancestor, branch.blocks)
        except InvalidBlock as err:
            log.warning("refused a fork from 0x%s: %s", node_id.hex(), err)
            self.transport.ban(node_id, f"sent a fork with an invalid block: {err}")
            return
        self.announce(tip, source=node_id)
        head = self.node.head()
        self.transport.broadcast(wire.Status(head.number, head.hash))

    def _answer(self, node_id: bytes, first: int, count: int) -> None:
        encoded, size = [], 0
        for number in range(first, first + count):
            block = self.node.chain.store.block(number)
            if block is None:
                break
            data = block.encode()
            if encoded and size + len(data) > BLOCKS_ANSWER_BYTES:
                break
            encoded.append(data)
            size += len(data)
        self.transport.send(node_id, wire.Blocks(tuple(encoded)))

    def _on_blocks(self, node_id: bytes, blocks: tuple[bytes, ...]) -> None:
        asked = self.sync.on_blocks(node_id) | (self._fork_requests.pop(node_id, None) is not None)
        if not asked:
            return  # not what this node asked for
        before, tip = self.node.head(), None
        for data in blocks:
            try:
                block = Block.decode(data)
            except InvalidBlock as err:
                self.transport.ban(node_id, f"sent a malformed block: {err}")
                self.sync.put_aside(node_id)
                return
            aside = self._take(node_id, block)
            if aside is not None and (tip is None or aside.number > tip.number):
                tip = aside
        if tip is not None:
            self._consider_fork(node_id, tip)
        head = self.node.head()
        if head.hash != before.hash:
            self.transport.broadcast(wire.Status(head.number, head.hash))

    def _import(self, node_id: bytes, block: Block) -> bool:
        try:
            self.node.import_block(block)
        except NotYetVerifiable as err:  # this node's other shards are behind: no fault of the sender
            log.info("block %d from 0x%s waits: %s", block.number, node_id.hex(), err)
            self.sync.put_aside(node_id)
            return False
        except InvalidBlock as err:
            log.warning("refused block %d from 0x%s: %s", block.number, node_id.hex(), err)
            self.transport.ban(node_id, f"sent an invalid block: {err}")
            self.sync.put_aside(node_id)
            return False
        return True

    def _flush_gossip(self) -> None:
        with self._lock:
            raws, sources = self._outgoing, self._sources
            self._outgoing, self._sources = [], []
        if not raws:
            return
        for peer in self.transport.peers():
            for message in transaction_messages([raw for raw, source in zip(raws, sources) if source != peer.node_id]):
                self.transport.send(peer.node_id, message)

    def _request_blocks(self) -> None:
        request = self.sync.next_request(self.node.head().number)
        if request is not None:
            self.transport.send(request.peer, wire.GetBlocks(request.first, request.count))


def _lower_priority() -> None:
    """Give this thread a lower scheduling priority (Linux: a thread is a task of its own).

    Relayed transactions are most of a node's work under load, and none of it is urgent;
    a block is, on every node: the next validator must import it before its step. Where
    several nodes share the cores, the kernel then runs their block work first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ADMISSION_NICENESS)
    except (AttributeError, OSError):  # another system, or not allowed: the same priority as the rest
        pass
