"""JSON-RPC over WebSocket, on the HTTP port: the same methods, and eth_subscribe.

One connection, in steps: each text frame is a request or a batch, answered as over HTTP
(the server's `answer`) in the order it came; eth_subscribe and eth_unsubscribe are
answered here, since a subscription belongs to its connection. Answers and
notifications leave through one bounded outbox per connection, written by its own task.
A client's answers wait for room in it, so a client that sends faster than it reads
holds back only itself; a notification never waits: a subscriber that reads slower
than the chain produces fills its outbox and is dropped (closed with code 1008 and the
reason), and nothing else ever waits for it.
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

Answer = Callable[[Any, str, dict], Awaitable[Any]]  # (payload, client, connection-bound methods) -> response


class WebSocketSession:
    """One client's connection: its requests, its subscriptions and its outbox."""

    def __init__(self, ws: web.WebSocketResponse, client: str, hub: SubscriptionHub, max_unread: int):
        self.ws, self.client, self.hub = ws, client, hub
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue(max_unread)
        self.dropped = False  # for reading too slowly
        self.closed = False

    async def serve(self, answer: Answer) -> None:
        """Answer the connection's frames until it closes; its subscriptions end with it."""
        writer = asyncio.create_task(self._write())
        local = {"eth_subscribe": self._subscribe, "eth_unsubscribe": self._unsubscribe}
        try:
            async for message in self.ws:
                if message.type != WSMsgType.TEXT and message.type != WSMsgType.BINARY:
                    break
                try:
                    response = await answer(decode_body(message.data), self.client, local)
                except RpcError as err:  # the frame is not JSON
                    response = error_response(None, err)
                if response is not None and not self.dropped:
                    await self.outbox.put(encode(response))
                if self.dropped:
                    break
        finally:
            self.closed = True  # (a poll under way may still hand it notifications)
            self.hub.drop(self)
            writer.cancel()  # what is still queued was for a client that is gone
            await asyncio.gather(writer, return_exceptions=True)

    # -- connection-bound methods -----------------------------------------------------
    def _subscribe(self, params: Any) -> str:
        return self.hub.subscribe(self, params)

    def _unsubscribe(self, params: Any) -> bool:
        if not isinstance(params, list) or len(params) != 1:
            raise RpcError(INVALID_PARAMS, "eth_unsubscribe: takes one parameter, the subscription id")
        return self.hub.unsubscribe(self, params[0])

    # -- out --------------------------------------------------------------------------
    def notify(self, subscription_id: str, result: Any) -> None:
        """Queue a notification; a client whose outbox is full is dropped."""
        if self.dropped or self.closed:
            return
        try:
            self.outbox.put_nowait(encode({"jsonrpc": "2.0", "method": "eth_subscription",
                                           "params": {"subscription": subscription_id, "result": result}}))
        except asyncio.QueueFull:
            self.dropped = True
            self.hub.drop(self)
            while not self.outbox.empty():  # (an answer waiting for room goes in, and the loop sees the drop)
                self.outbox.get_nowait()
            unread = self.outbox.maxsize
            log.info("websocket client %s dropped: it left %d messages unread", self.client, unread)
            asyncio.ensure_future(self.ws.close(code=POLICY_VIOLATION, message=f"too slow: {unread} messages unread"
                                                                               .encode()))

    async def _write(self) -> None:
        while not self.ws.closed:
            frame = await self.outbox.get()
            try:
                await self.ws.send_str(frame.decode())
            except (ConnectionError, RuntimeError):
                return

