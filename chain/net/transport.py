"""The transport: TCP connections to the consortium's other nodes, full mesh, on asyncio.

It runs its own event loop on a thread of its own. A connection, dialed or accepted, is
taken through the handshake (handshake.py) and a key confirmation (each side's first
sealed frame), and kept only if the peer is on the permission list, is not banned, is
not this node, and is not already connected: of two connections between the same pair,
the one dialed by the lower node id stays. Messages then travel as sealed frames
(channel.py) in the wire format (wire.py).

A peer whose frames fail to open, or that sends a malformed or oversized message, is
disconnected and banned for a while; so is one the node reports (`ban`) for an invalid
block. None of it stops the node. A peer that reads too slowly to keep up with its
queue of outgoing messages is dropped, so that it never holds up the others.

The node is told of peers and messages through a `MessageHandler`, whose methods run on
the transport's thread and must not block. `send`, `broadcast`, `ban` and
`refresh_permissions` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Protocol

from chain.core.keys import PrivateKey
from chain.net import wire
from chain.net.channel import ChannelError, FrameLink, SecureChannel, StreamLink
from chain.net.handshake import MAX_HELLO, Handshake, HandshakeError, Hello
from chain.net.peers import Bans, Peer, PeerInfo

log = logging.getLogger("ewasm.net")

CONFIRM = b"ewasm-p2p-confirm"
ACCEPTED = b"ewasm-p2p-accepted"  # each side's word that it takes the other as a peer
SHUTDOWN_WAIT = 3.0  # seconds stop() waits for the connections' tasks to end


class MessageHandler(Protocol):
    def on_peer(self, node_id: bytes, connected: bool) -> None:
        """A peer finished the handshake (True) or went away (False)."""

    def on_message(self, node_id: bytes, message: wire.Message) -> None:
        """A message arrived; must return quickly (hand the work to another thread)."""


@dataclass(frozen=True)
class TransportConfig:
    key: PrivateKey  # the node key; the node id is its address
    chain_id: int
    genesis_hash: bytes
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (see Transport.port)
    peers: tuple[tuple[str, int], ...] = ()  # addresses to dial and keep dialing
    handshake_timeout: float = 5.0
    outbox: int = 4096  # messages queued for one peer before it counts as too slow
    ban_seconds: float = 60.0
    redial_seconds: float = 1.0  # the first wait before dialing a lost peer again; it doubles to 10 s


class Transport:
    def __init__(self, config: TransportConfig, is_allowed: Callable[[bytes], bool], handler: MessageHandler,
                 link: Callable[[asyncio.StreamReader, asyncio.StreamWriter], FrameLink] = StreamLink):
        self.config, self.is_allowed, self.handler, self._link = config, is_allowed, handler, link
        self.node_id = config.key.address
        self.port = config.port
        self.bans = Bans()
        self._peers: dict[bytes, Peer] = {}
        self._dialed: dict[tuple[str, int], bytes] = {}  # address -> the node id found there
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closing = False  # set by stop(): dialing loops end

    # -- from any thread ------------------------------------------------------------
    def peers(self) -> list[PeerInfo]:
        return [peer.info for peer in list(self._peers.values())]

    def send(self, node_id: bytes, message: wire.Message) -> None:
        """Queue a message for one peer (dropped silently if it is not connected)."""
        self._call(self._enqueue, node_id, wire.encode(message))

    def broadcast(self, message: wire.Message, exclude: bytes | None = None) -> None:
        """Queue a message for every connected peer but `exclude`."""
        self._call(self._enqueue_all, wire.encode(message), exclude)

    def ban(self, node_id: bytes, reason: str, seconds: float | None = None) -> None:
        """Refuse a peer for a while, dropping it now if it is connected."""
        self.bans.ban(node_id, self.config.ban_seconds if seconds is None else seconds, reason)
        self._call(self._drop, node_id, f"banned: {reason}")

    def refresh_permissions(self) -> None:
        """Drop the peers that the permission list no longer allows."""
        self._call(self._drop_unpermitted)

    def _call(self, fn, *args) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # the loop closed in between: the transport has stopped
                pass

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Listen and start dialing; raises if the port cannot be bound."""
        self._thread = threading.Thread(target=self._run, name="p2p", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accepted, self.config.host, self.config.port, reuse_address=True))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as err:
            self._startup_error = err
            self._started.set()
            self._loop.close()
            return
        for address in self.config.peers:
            self._spawn(self._keep_dialing(address))
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _shutdown(self) -> None:
        """Say goodbye to every peer, stop every task, and let the sockets close."""
        self._closing = True
        self._server.close()
        goodbyes = [self._drop(node_id, "shutting down") for node_id in list(self._peers)]
        await asyncio.gather(*[g for g in goodbyes if g is not None], return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        # Bounded: asyncio.wait_for can swallow a cancellation that races its result
        # (Python 3.11), and a loop that missed it must not hold the node's exit up.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SHUTDOWN_WAIT)
        await asyncio.sleep(0)  # the closed sockets' callbacks run before the loop stops

    def _spawn(self, coroutine) -> asyncio.Task:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connections ----------------------------------------------------------------
    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        await self._serve(self._link(reader, writer), "in", host, port)

    async def _keep_dialing(self, address: tuple[str, int]) -> None:
        """Dial `address` whenever no connection to the node there is up, backing off."""
        wait = self.config.redial_seconds
        while not self._closing:
            known = self._dialed.get(address)
            if known is None or known not in self._peers:
                try:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(*address),
                                                            self.config.handshake_timeout)
                except (OSError, asyncio.TimeoutError):
                    pass
                else:
                    if await self._serve(self._link(reader, writer), "out", *address):
                        wait = self.config.redial_seconds
            await asyncio.sleep(wait)
            wait = min(wait * 2, 10.0)

    async def _serve(self, link: FrameLink, direction: str, host: str, port: int) -> bool:
        """Take one connection through the handshake and serve it until it ends; True if
        it was accepted as a peer."""
        try:
            node_id, channel = await asyncio.wait_for(self._handshake(link, direction == "out"),
                                                      self.config.handshake_timeout)
        except (HandshakeError, ChannelError, asyncio.TimeoutError) as err:
            log.info("refused a connection (%s %s:%d): %s", direction, host, port,
                     "the handshake timed out" if isinstance(err, asyncio.TimeoutError) else err)
            link.close()
            return False
        if direction == "out":
            self._dialed[(host, port)] = node_id
        refusal = self._refusal(node_id, direction)
        if refusal is not None:
            level = logging.DEBUG if refusal == "already connected" else logging.INFO  # crossed dials are routine
            log.log(level, "refused 0x%s (%s %s:%d): %s", node_id.hex(), direction, host, port, refusal)
            await _say_goodbye(channel, refusal)
            return False
        refused_by = await self._accept(channel)
        if refused_by is not None:
            log.info("refused by 0x%s (%s %s:%d): %s", node_id.hex(), direction, host, port, refused_by)
            channel.close()
            return False
        peer = Peer(PeerInfo(node_id, host, port, direction), channel, asyncio.Queue(self.config.outbox),
                    dialer=self.node_id if direction == "out" else node_id)
        self._replace_duplicate(peer)
        self._peers[node_id] = peer
        log.info("connected to 0x%s (%s %s:%d)", node_id.hex(), direction, host, port)
        self._notify_peer(node_id, True)
        peer.tasks = [self._spawn(self._read(peer)), self._spawn(self._write(peer))]
        await asyncio.wait(peer.tasks[:1])  # until the connection ends (the reader's task)
        return True

    async def _accept(self, channel: SecureChannel) -> str | None:
        """Say that this side takes the peer, and wait for the peer to say the same, so that
        neither counts a connection that the other refuses; None when both accept, else
        the peer's reason."""
        try:
            await channel.send(ACCEPTED)
            answer = await asyncio.wait_for(channel.receive(), self.config.handshake_timeout)
        except (ChannelError, asyncio.TimeoutError, OSError) as err:
            return f"no acceptance ({err or 'timed out'})"
        if answer == ACCEPTED:
            return None
        try:
            message = wire.decode(answer)
        except wire.WireError:
            return "no acceptance"
        return message.reason if isinstance(message, wire.Disconnect) else "no acceptance"

    async def _handshake(self, link: FrameLink, initiator: bool) -> tuple[bytes, SecureChannel]:
        """Hellos both ways, session keys, then a sealed confirmation both ways."""
        handshake = Handshake(self.config.key, self.config.chain_id, self.config.genesis_hash)
        limit = getattr(link, "max_frame", None)
        if limit is not None:
            link.max_frame = MAX_HELLO  # no large frame before the peer is known
        await link.send(handshake.hello.encode())
        peer = Hello.decode(await link.receive())
        handshake.check(peer)
        if limit is not None:
            link.max_frame = limit
        channel = SecureChannel(link, *handshake.session_keys(peer, initiator))
        await channel.send(CONFIRM)
        if await channel.receive() != CONFIRM:
            raise HandshakeError("the peer did not confirm the session keys")
        return peer.node_id, channel

    def _refusal(self, node_id: bytes, direction: str) -> str | None:
        """Why a peer that finished the handshake may not stay, or None."""
        if node_id == self.node_id:
            return "it is this node"
        if not self.is_allowed(node_id):
            return "not on the permission list"
        banned = self.bans.reason(node_id)
        if banned is not None:
            return f"banned: {banned}"
        existing = self._peers.get(node_id)
        dialer = self.node_id if direction == "out" else node_id
        if existing is not None and existing.dialer != dialer and dialer != min(self.node_id, node_id):
            return "already connected"  # crossed dials: the one the lower node id dialed stays
        return None

    def _replace_duplicate(self, peer: Peer) -> None:
        """Two connections to one node that `_refusal` let through: the new one stays (a
        reconnection, or the crossed dial the lower node id made), the old one goes."""
        old = self._peers.pop(peer.node_id, None)
        if old is not None:
            self._close(old, "replaced by a connection dialed by the lower node id")

    async def _read(self, peer: Peer) -> None:
        try:
            while True:
                data = await peer.channel.receive()
                message = wire.decode(data)
                if isinstance(message, wire.Disconnect):
                    raise ChannelError(f"it disconnected: {message.reason}")
                try:
                    self.handler.on_message(peer.node_id, message)
                except Exception:  # a bug in the node: keep the connection, report it
                    log.exception("handling %s from 0x%s failed", type(message).__name__, peer.node_id.hex())
        except wire.WireError as err:
            self.bans.ban(peer.node_id, self.config.ban_seconds, f"sent a malformed message: {err}")
            self._drop(peer.node_id, f"malformed message: {err}")
        except ChannelError as err:
            if "failed authentication" in str(err) or "a frame of" in str(err):
                self.bans.ban(peer.node_id, self.config.ban_seconds, str(err))
            self._drop(peer.node_id, str(err))

    async def _write(self, peer: Peer) -> None:
        try:
            while True:
                data = await peer.outbox.get()
                await peer.channel.send(data)
        except ChannelError as err:
            self._drop(peer.node_id, str(err))

    def _enqueue_all(self, data: bytes, exclude: bytes | None) -> None:
        for node_id in list(self._peers):
            if node_id != exclude:
                self._enqueue(node_id, data)

    def _drop_unpermitted(self) -> None:
        for node_id in list(self._peers):
            if not self.is_allowed(node_id):
                self._drop(node_id, "no longer on the permission list")

    def _enqueue(self, node_id: bytes, data: bytes) -> None:
        peer = self._peers.get(node_id)
        if peer is None:
            return
        try:
            peer.outbox.put_nowait(data)
        except asyncio.QueueFull:
            self._drop(node_id, f"it fell {self.config.outbox} messages behind")

    def _drop(self, node_id: bytes, reason: str) -> asyncio.Task | None:
        """Disconnect a peer; returns the task that tells it why and closes the socket."""
        peer = self._peers.pop(node_id, None)
        return None if peer is None else self._close(peer, reason)

    def _close(self, peer: Peer, reason: str) -> asyncio.Task:
        log.info("disconnected 0x%s: %s", peer.node_id.hex(), reason)
        for task in peer.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self._peers.get(peer.node_id) is not peer:
            self._notify_peer(peer.node_id, False)
        return self._spawn(_say_goodbye(peer.channel, reason))

    def _notify_peer(self, node_id: bytes, connected: bool) -> None:
        try:
            self.handler.on_peer(node_id, connected)
        except Exception:
            log.exception("the node's peer handler failed")


async def _say_goodbye(channel: SecureChannel, reason: str) -> None:
    """Tell the peer why (best effort), then close."""
    try:
        await asyncio.wait_for(channel.send(wire.encode(wire.Disconnect(reason[:wire.MAX_REASON]))), 1.0)
    except (ChannelError, asyncio.TimeoutError, OSError):
        pass
    finally:
        channel.close()
    await channel.wait_closed()
