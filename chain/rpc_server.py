"""JSON-RPC over HTTP, served by aiohttp.

The server runs its own event loop in a background thread. Every request ends in a
JSON-RPC response: malformed JSON, oversized bodies, unknown methods and bad params get
an error object, and an unexpected exception inside a method becomes an internal error
(logged) while the node keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from aiohttp import web

from .rpc import INTERNAL_ERROR, INVALID_REQUEST, LIMIT_EXCEEDED, PARSE_ERROR, RpcError, RpcMethods

log = logging.getLogger("ewasm.rpc")

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BATCH = 1000


def _error(request_id: Any, err: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": err.to_json()}


class RpcServer:
    """Serves `methods` on http://host:port/ until `stop()`."""

    def __init__(self, methods: RpcMethods, host: str = "127.0.0.1", port: int = 8545,
                 max_body: int = MAX_BODY_BYTES):
        self.methods, self.host, self.port, self.max_body = methods, host, port, max_body
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None

    # -- request handling -----------------------------------------------------------
    def handle_payload(self, body: bytes) -> Any:
        """The response object (or list) for one HTTP body; None for only notifications."""
        try:
            request = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return _error(None, RpcError(PARSE_ERROR, f"parse error: {err}"))
        if isinstance(request, list):
            if not request:
                return _error(None, RpcError(INVALID_REQUEST, "empty batch"))
            if len(request) > MAX_BATCH:
                return _error(None, RpcError(LIMIT_EXCEEDED, f"batch too large: at most {MAX_BATCH} requests"))
            responses = [r for r in (self._handle_one(item) for item in request) if r is not None]
            return responses or None
        return self._handle_one(request)

    def _handle_one(self, request: Any) -> dict | None:
        if not isinstance(request, dict):
            return _error(None, RpcError(INVALID_REQUEST, "a request must be a JSON object"))
        request_id = request.get("id")
        if request.get("jsonrpc") != "2.0":
            return _error(request_id, RpcError(INVALID_REQUEST, 'missing or wrong "jsonrpc": "2.0"'))
        if "method" not in request:
            return _error(request_id, RpcError(INVALID_REQUEST, 'missing "method"'))
        try:
            result = self.methods.dispatch(request["method"], request.get("params"))
        except RpcError as err:
            response = _error(request_id, err)
        except Exception as err:  # a bug: report it, keep serving
            log.exception("internal error in %s", request.get("method"))
            response = _error(request_id, RpcError(INTERNAL_ERROR, f"internal error: {type(err).__name__}: {err}"))
        else:
            response = {"jsonrpc": "2.0", "id": request_id, "result": result}
        return None if "id" not in request else response

    async def _http(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"ok": True, "head": self.methods.chain.head().number})
        too_large = request.content_length is not None and request.content_length > self.max_body
        chunks, size = [], 0
        while not too_large:
            chunk = await request.content.read(self.max_body + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            too_large = size > self.max_body
        body = b"".join(chunks)
        if too_large:
            err = RpcError(LIMIT_EXCEEDED, f"request body too large: more than {self.max_body} bytes")
            return web.json_response(_error(None, err), status=413)
        response = self.handle_payload(body)
        if response is None:
            return web.Response(status=204)
        return web.json_response(response, dumps=lambda o: json.dumps(o, separators=(",", ":")))

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start serving in a background thread; raises if the port cannot be bound."""
        self._thread = threading.Thread(target=self._run, name="rpc-server", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=self.max_body + 1)
        app.router.add_route("POST", "/", self._http)
        app.router.add_route("GET", "/", self._http)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
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
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
