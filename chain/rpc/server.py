"""JSON-RPC over HTTP, served by aiohttp on its own event loop in a background thread.

What the loop does for one HTTP request, in steps: read the body (bounded), decode it as
strict JSON (codec.py), check each request object, and answer it. Cheap methods are
answered on the loop; the others go to their lane (lanes.py), so that the loop is
always free to answer `eth_chainId` at once. A batch runs its requests one after the
other, giving the loop back between them, within a gas budget for its calls and a time
limit for the whole; what does not fit gets -32005 instead of a result.

Concurrency per client: a connection's requests run one at a time (HTTP/1.1 answers a
connection's requests in order, and a batch's requests run in turn), each lane bounds
what one client address may hold in it, and the server bounds the HTTP requests in
progress at once, whose bodies are in memory.

A GET that asks to upgrade is a WebSocket connection (websocket.py): the same methods,
and eth_subscribe's feeds (subscriptions.py), which a task polls every POLL_INTERVAL
off the loop while anyone subscribes.

Every request ends in a JSON-RPC response, never in an HTTP 500: malformed JSON, bad ids,
unknown methods and bad params each get their EIP-1474 error. An unexpected exception in
a method becomes an internal error (-32603), logged on one line with its traceback at
debug level, and the node keeps serving. A client that disconnects is not an error of
ours: it is logged at debug level, without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.client_exceptions import ClientError

from chain.rpc.budget import GasBudget, WorkBudget
from chain.rpc.codec import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    InvalidRequest,
    Request,
    RpcError,
    decode_body,
    encode,
    error_response,
    parse_request,
    result_response,
)
from chain.rpc.lanes import LaneLimits, WorkLane
from chain.rpc.methods import EXECUTION, INLINE, READ, SCAN, RpcMethods
from chain.rpc.subscriptions import SubscriptionHub
from chain.rpc.websocket import WebSocketSession

log = logging.getLogger("ewasm.rpc")

# How long a batch may hold the event loop before it lets other requests in.
LOOP_SLICE = 0.002
# The loop thread's stack. The JSON parser recurses once per nesting level, up to the
# interpreter's recursion limit, which the VM raises to 20,000: on a default 8 MiB stack
# a body of 100,000 "[" can then overflow it and kill the process. This is address
# space; only what is used is ever backed by memory.
SERVER_STACK_BYTES = 64 << 20
POLL_INTERVAL = 0.05  # seconds between looks at the chain and the pool for subscribers
FEED_SLICE = 256  # notifications handed out between two turns of the loop
SHUTDOWN_TIMEOUT = 5.0  # seconds the server waits for its connections when it stops


def _default_lanes() -> dict[str, LaneLimits]:
    return {EXECUTION: LaneLimits(workers=2, queue=32, per_client=8),
            SCAN: LaneLimits(workers=1, queue=16, per_client=4),
            READ: LaneLimits(workers=2, queue=128, per_client=32)}


@dataclass(frozen=True)
class RpcLimits:
    """What the server lets one client ask for; node-local, set by flags."""

    max_body: int = 5 * 1024 * 1024  # bytes of one HTTP body
    max_batch: int = 1000  # requests in one batch
    batch_gas: int = 300_000_000  # gas the calls of one request or batch may execute together
    batch_timeout: float = 10.0  # seconds for a whole batch
    max_requests: int = 256  # HTTP requests in progress at once (their bodies are in memory)
    max_requests_per_client: int = 64  # of those, from one client address
    body_timeout: float = 10.0  # seconds a client may take to send its body
    max_websockets: int = 256  # WebSocket connections open at once
    max_websockets_per_client: int = 32  # of those, from one client address
    websocket_outbox: int = 4096  # messages a WebSocket client may leave unread before it is dropped
    lanes: dict[str, LaneLimits] = field(default_factory=_default_lanes)

    def __post_init__(self) -> None:
        if min(self.max_body, self.max_batch, self.batch_gas, self.max_requests, self.max_requests_per_client,
               self.max_websockets, self.max_websockets_per_client, self.websocket_outbox) < 1:
            raise ValueError("RPC limits max_body, max_batch, batch_gas, max_requests and max_websockets must be at "
                             "least 1")
        if not (self.batch_timeout > 0 and self.body_timeout > 0):
            raise ValueError("the RPC batch and body timeouts must be positive numbers of seconds")


class ClientGone(Exception):
    """The client closed the connection before its request was read."""


class BodyTooLarge(RpcError):
    """A body above `max_body`: refused with HTTP 413 before it is read to the end."""

    def __init__(self, limit: int):
        super().__init__(LIMIT_EXCEEDED, f"request body too large: more than {limit} bytes")


class RpcServer:
    """Serves `methods` on http://host:port/ until `stop()`."""

    def __init__(self, methods: RpcMethods, host: str = "127.0.0.1", port: int = 8545,
                 limits: RpcLimits | None = None):
        self.methods, self.host, self.port = methods, host, port
        self.limits = limits or RpcLimits()
        self.lanes = {name: WorkLane(name, lane) for name, lane in self.limits.lanes.items()}
        self._in_progress: Counter[str] = Counter()  # HTTP requests being served, by client address
        self._sockets: Counter[str] = Counter()  # WebSocket connections open, by client address
        self.hub = SubscriptionHub(methods)
        self._sessions: set[WebSocketSession] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None

    # -- one HTTP request -------------------------------------------------------------
    async def _http(self, request: web.Request) -> web.StreamResponse:
        """Serve one HTTP request; whatever goes wrong, the answer is JSON-RPC."""
        try:
            return await self._serve_http(request)
        except Exception as err:  # a bug: one line, and the client still gets JSON-RPC
            log.error("internal error serving %s: %s: %s", request.remote, type(err).__name__, err)
            log.debug("traceback of the internal error", exc_info=True)
            return _json_response(error_response(None, RpcError(INTERNAL_ERROR, f"internal error: "
                                                                               f"{type(err).__name__}")))

    async def _serve_http(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await self._websocket(request)
            return _json_response({"ok": True, "head": self.methods.chain.head().number})
        client = request.remote or "unknown"
        busy = self._busy(client)
        if busy is not None:
            return _json_response(error_response(None, busy))
        self._in_progress[client] += 1
        try:
            body = await asyncio.wait_for(self._read_body(request), self.limits.body_timeout)
            payload = decode_body(body)
            answer = await self.answer(payload, client)
        except ClientGone:
            log.debug("client %s went away before its request was read", client)
            return web.Response(status=400)
        except asyncio.TimeoutError:
            log.debug("client %s took more than %g s to send its request", client, self.limits.body_timeout)
            return web.Response(status=408)
        except BodyTooLarge as err:
            return _json_response(error_response(None, err), 413)
        except RpcError as err:  # the body is not JSON
            return _json_response(error_response(None, err))
        finally:
            self._in_progress[client] -= 1
            if not self._in_progress[client]:
                del self._in_progress[client]
        if answer is None:
            return web.Response(status=204)
        return _json_response(answer)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        """Serve one WebSocket connection until it closes."""
        client = request.remote or "unknown"
        if sum(self._sockets.values()) >= self.limits.max_websockets:
            return _json_response(error_response(None, RpcError(LIMIT_EXCEEDED, "server busy: too many WebSocket "
                                                                                "connections")), 503)
        if self._sockets[client] >= self.limits.max_websockets_per_client:
            return _json_response(error_response(None, RpcError(
                LIMIT_EXCEEDED, f"at most {self.limits.max_websockets_per_client} WebSocket connections from one "
                                f"client")), 429)
        ws = web.WebSocketResponse(max_msg_size=self.limits.max_body, heartbeat=30.0)
        if not ws.can_prepare(request).ok:
            return _json_response(error_response(None, RpcError(INVALID_REQUEST, "not a valid WebSocket "
                                                                                 "handshake")), 400)
        self._sockets[client] += 1
        try:
            await ws.prepare(request)
            session = WebSocketSession(ws, request, client, self.hub, self.limits.websocket_outbox)
            self._sessions.add(session)
            try:
                await session.serve(self.answer)
            finally:
                self._sessions.discard(session)
        finally:
            self._sockets[client] -= 1
            if not self._sockets[client]:
                del self._sockets[client]
        return ws

    async def _close_websockets(self, app: web.Application) -> None:
        """At shutdown: every connection closed at once, each within its close timeout."""
        await asyncio.gather(*(session.close_for_shutdown() for session in list(self._sessions)),
                             return_exceptions=True)

    async def _feed(self) -> None:
        """While anyone subscribes: poll the hub off the loop, and hand each
        notification to its connection, a slice at a time so that the writers (and
        other clients) get their turn between slices."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            if not self.hub.active:
                continue
            try:
                notes = await loop.run_in_executor(None, self.hub.poll)
                for start in range(0, len(notes), FEED_SLICE):
                    for session, subscription_id, result in notes[start:start + FEED_SLICE]:
                        session.notify(subscription_id, result)
                    await asyncio.sleep(0)
            except Exception as err:  # a bug: say so, and keep the feed going
                log.error("subscription feed: %s: %s", type(err).__name__, err)
                log.debug("traceback of the subscription feed's error", exc_info=True)

    def _busy(self, client: str) -> RpcError | None:
        """Why a new request cannot be taken now, if it cannot."""
        total = sum(self._in_progress.values())
        if total >= self.limits.max_requests:
            return RpcError(LIMIT_EXCEEDED, f"server busy: {total} requests in progress; try again")
        if self._in_progress[client] >= self.limits.max_requests_per_client:
            return RpcError(LIMIT_EXCEEDED, f"too many requests in progress from this client "
                                            f"(at most {self.limits.max_requests_per_client})")
        return None

    async def _read_body(self, request: web.Request) -> bytes:
        """The body, at most `max_body` bytes (RpcError beyond), or ClientGone."""
        limit = self.limits.max_body
        if request.content_length is not None and request.content_length > limit:
            raise BodyTooLarge(limit)
        chunks, size = [], 0
        try:
            while True:
                chunk = await request.content.read(limit + 1 - size)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
        except (ConnectionError, ClientError, asyncio.IncompleteReadError):
            raise ClientGone from None

    # -- JSON-RPC -------------------------------------------------------------------
    async def answer(self, payload: Any, client: str = "local", local: dict | None = None) -> Any:
        """The response object (or list) for a decoded body; None when nothing is owed.
        `local`: methods bound to the caller's connection (a WebSocket's eth_subscribe)."""
        budget = GasBudget(self.limits.batch_gas)
        local = local or {}
        if not isinstance(payload, list):
            return await self._answer_one(payload, client, budget, math.inf, local)
        if not payload:
            return error_response(None, RpcError(INVALID_REQUEST, "empty batch"))
        if len(payload) > self.limits.max_batch:
            return error_response(None, RpcError(LIMIT_EXCEEDED, f"batch too large: at most "
                                                                 f"{self.limits.max_batch} requests"))
        deadline = time.monotonic() + self.limits.batch_timeout
        responses, slice_start = [], time.monotonic()
        for item in payload:
            response = await self._answer_one(item, client, budget, deadline, local)
            if response is not None:
                responses.append(response)
            if time.monotonic() - slice_start > LOOP_SLICE:
                await asyncio.sleep(0)  # let other clients' requests in
                slice_start = time.monotonic()
        return responses or None

    async def _answer_one(self, item: Any, client: str, budget: GasBudget, batch_deadline: float,
                          local: dict) -> dict | None:
        """Check and run one request object; its response, or None for a notification."""
        try:
            request = parse_request(item)
        except InvalidRequest as err:
            log.debug("%s: invalid request: %s", client, err.message)
            return error_response(err.request_id, err)
        try:
            if request.method in local:
                result = local[request.method](request.params)
            else:
                result = await self._run(request, client, budget, batch_deadline)
        except RpcError as err:
            log.debug("%s %s: error %d: %s", client, request.method, err.code, err.message)
            response = error_response(request.id, err)
        except Exception as err:  # a bug: report it, keep serving
            log.error("internal error in %s: %s: %s", request.method, type(err).__name__, err)
            log.debug("traceback of the internal error in %s", request.method, exc_info=True)
            response = error_response(request.id, RpcError(INTERNAL_ERROR, f"internal error: {type(err).__name__}"))
        else:
            response = result_response(request.id, result)
        return None if request.is_notification else response

    async def _run(self, request: Request, client: str, budget: GasBudget, batch_deadline: float) -> Any:
        """Run the method on the loop or in its lane."""
        lane_name = self.methods.lane(request.method)
        if lane_name == INLINE:
            return self.methods.dispatch(request.method, request.params, WorkBudget(budget), client)
        left = batch_deadline - time.monotonic()
        if left <= 0:
            raise RpcError(LIMIT_EXCEEDED, f"{request.method}: the batch ran past its time limit of "
                                           f"{self.limits.batch_timeout:g} s")

        def work(deadline: float) -> Any:
            return self.methods.dispatch(request.method, request.params, WorkBudget(budget, deadline), client)

        return await self.lanes[lane_name].run(client, work, what=request.method, timeout=left)

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start serving in a background thread; raises if the port cannot be bound."""
        default = threading.stack_size(SERVER_STACK_BYTES)
        try:
            self._thread = threading.Thread(target=self._serve, name="rpc-server", daemon=True)
            self._thread.start()
        finally:
            threading.stack_size(default)
        self._started.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=self.limits.max_body + 1)
        app.router.add_route("POST", "/", self._http)
        app.router.add_route("GET", "/", self._http)
        app.on_shutdown.append(self._close_websockets)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=_ProtocolLog(log, {}),
                                     shutdown_timeout=SHUTDOWN_TIMEOUT)
        try:
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
            self._loop.run_until_complete(site.start())
            if self.port == 0:
                self.port = site._server.sockets[0].getsockname()[1]
        except BaseException as err:
            self._startup_error = err
            self._started.set()
            return
        self._started.set()
        feed = self._loop.create_task(self._feed())
        self._loop.run_forever()
        feed.cancel()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        for lane in self.lanes.values():
            lane.close()


class _ProtocolLog(logging.LoggerAdapter):
    """What aiohttp logs about a connection (malformed HTTP, a client gone mid-request):
    the client's problem, not the node's, so one line at debug level, no traceback."""

    def exception(self, msg, *args, exc_info=True, **kwargs):
        err = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        detail = str(err).strip().splitlines()[0] if err is not None and str(err).strip() else ""
        self.logger.debug(f"{msg}: %s %s", *args, type(err).__name__, detail)

    def debug(self, msg, *args, exc_info=None, **kwargs):
        self.logger.debug(msg, *args)


def _json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=encode(obj), status=status, content_type="application/json")
