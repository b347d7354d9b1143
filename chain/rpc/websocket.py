"""JSON-RPC over WebSocket, on the HTTP port: the same methods, and eth_subscribe.

One connection, in steps: each text frame is a request or a batch, answered as over HTTP
(the server's `answer`) in the order it came; eth_subscribe and eth_unsubscribe are
answered here, since a subscription belongs to its connection. Answers and
notifications leave through one outbox per connection, bounded in messages and in
bytes, written by its own task:

- a client's answers wait for room, so a client that sends faster than it reads holds
  back only itself;
- a notification never waits: a subscriber that reads slower than the chain produces
  fills its outbox and is dropped (closed with code 1008 and the reason);
- a write that the client does not take within SEND_TIMEOUT ends the connection, its
  socket aborted, so that a client that stops reading holds neither a task, nor a
  connection slot, nor the kernel's buffers.

Nothing the node does ever waits for a client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from aiohttp import WSMsgType, web

from chain.rpc.codec import INVALID_PARAMS, RpcError, decode_body, encode, error_response
from chain.rpc.subscriptions import SubscriptionHub

log = logging.getLogger("ewasm.rpc")

POLICY_VIOLATION = 1008  # the WebSocket close code for a client dropped for being too slow
MAX_UNREAD_BYTES = 16 << 20  # bytes queued for one client before its notifications drop it
SEND_TIMEOUT = 10.0  # seconds one frame may wait for the client to take it
CLOSE_TIMEOUT = 2.0  # seconds a closing handshake may take before the socket is aborted
ROOM_POLL = 0.01  # seconds between looks for room, while an answer waits for a slow client

Answer = Callable[[Any, str, dict], Awaitable[Any]]  # (payload, client, connection-bound methods) -> response


class WebSocketSession:
    """One client's connection: its requests, its subscriptions and its outbox."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, client: str, hub: SubscriptionHub,
                 max_unread: int):
        self.ws, self.request, self.client, self.hub = ws, request, client, hub
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue(max_unread)
        self.unread_bytes = 0
        self.dropped = False  # for reading too slowly
        self.closed = False
        self._writer: asyncio.Task | None = None
        self._closing: asyncio.Task | None = None
        # Subscriptions made by the frame being answered, and their notifications held
        # until that answer (with their ids) is queued, as geth orders them.
        self._fresh: set[str] = set()
        self._held: list[tuple[str, Any]] = []

    async def serve(self, answer: Answer) -> None:
        """Answer the connection's frames until it closes; its subscriptions end with it."""
        self._writer = asyncio.create_task(self._write())
        local = {"eth_subscribe": self._subscribe, "eth_unsubscribe": self._unsubscribe}
        try:
            async for message in self.ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    response = await answer(decode_body(message.data), self.client, local)
                except RpcError as err:  # the frame is not JSON
                    response = error_response(None, err)
                if response is not None:
                    await self._reply(encode(response))
                self._release_held()
                if self.dropped or self._writer.done():
                    break
        finally:
            self.closed = True  # (a poll under way may still hand it notifications)
            self.hub.drop(self)
            self._writer.cancel()  # what is still queued was for a client that is gone
            await asyncio.gather(self._writer, return_exceptions=True)
            if self._closing is not None:
                await asyncio.gather(self._closing, return_exceptions=True)

    # -- connection-bound methods -----------------------------------------------------
    def _subscribe(self, params: Any) -> str:
        subscription_id = self.hub.subscribe(self, params)
        self._fresh.add(subscription_id)
        return subscription_id

    def _unsubscribe(self, params: Any) -> bool:
        if not isinstance(params, list) or len(params) != 1:
            raise RpcError(INVALID_PARAMS, "eth_unsubscribe: takes one parameter, the subscription id")
        return self.hub.unsubscribe(self, params[0])

    # -- out --------------------------------------------------------------------------
    async def _reply(self, frame: bytes) -> None:
        """Queue an answer once there is room; a client that never reads ends when its
        writer times out."""
        while self._full() and not self._gone():
            await asyncio.sleep(ROOM_POLL)
        if not self._gone():
            self._queue(frame)

    def notify(self, subscription_id: str, result: Any) -> None:
        """Queue a notification (one that its subscription still wants); a client whose
        outbox is full is dropped."""
        if self._gone() or not self.hub.wants(self, subscription_id):
            return
        if subscription_id in self._fresh:  # its id is not out yet
            self._held.append((subscription_id, result))
            return
        if self._full():
            self._drop()
            return
        self._queue(encode({"jsonrpc": "2.0", "method": "eth_subscription",
                            "params": {"subscription": subscription_id, "result": result}}))

    def _release_held(self) -> None:
        """The answer that made the fresh subscriptions is queued: their notifications follow."""
        held, self._held, self._fresh = self._held, [], set()
        for subscription_id, result in held:
            self.notify(subscription_id, result)

    def _full(self) -> bool:
        return self.outbox.full() or self.unread_bytes > MAX_UNREAD_BYTES

    def _gone(self) -> bool:
        return self.dropped or self.closed or (self._writer is not None and self._writer.done())

    def _queue(self, frame: bytes) -> None:
        self.outbox.put_nowait(frame)
        self.unread_bytes += len(frame)

    def _drop(self) -> None:
        self.dropped = True
        self.hub.drop(self)
        unread = self.outbox.qsize()
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.unread_bytes = 0
        log.info("websocket client %s dropped: it left %d messages unread", self.client, unread)
        self._closing = asyncio.ensure_future(self._close(POLICY_VIOLATION, f"too slow: {unread} messages unread"))

    async def _close(self, code: int, reason: str) -> None:
        """Close with a reason; abort the socket if the client does not answer the close."""
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass
        self._abort()

    def _abort(self) -> None:
        """Drop the socket now: closing it gracefully would wait for a client that does not read."""
        if self.request.transport is not None:
            self.request.transport.abort()

    async def _write(self) -> None:
        try:
            while not self.ws.closed:
                frame = await self.outbox.get()
                self.unread_bytes -= len(frame)
                await asyncio.wait_for(self.ws.send_str(frame.decode()), SEND_TIMEOUT)
        except asyncio.TimeoutError:
            log.info("websocket client %s dropped: it took no data for %g s", self.client, SEND_TIMEOUT)
            self._abort()
        except (ConnectionError, RuntimeError):
            self._abort()

    async def close_for_shutdown(self) -> None:
        await self._close(1001, "the node is stopping")
