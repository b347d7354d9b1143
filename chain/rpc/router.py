"""One JSON-RPC port for all of a node's shards: `/shard/K` is shard K's endpoint, and `/`
is shard 0's, each an Ethereum chain of its own (chain id = the spec's + K) that web3.py
talks to unchanged.

Each shard is served by its own server (its own process, so that shards execute on
separate cores); the router passes each request body to the shard's server as it came
and its answer back as it went, so that every shard keeps its own limits and errors.
`ewasm_consensusStatus` is the one method it adds to: the answer also lists every
shard's head and final height. A path that names no shard gets HTTP 404 with a
JSON-RPC error, and a shard whose server does not answer gets -32002, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
from aiohttp import web

from chain.rpc.codec import INVALID_REQUEST, LIMIT_EXCEEDED, RESOURCE_UNAVAILABLE

SHARD_PATH = re.compile(r"/shard/(\d{1,3})/?")
FORWARD_TIMEOUT = 60.0  # seconds: more than a shard's own longest request may take


def _error(status: int, code: int, message: str) -> web.Response:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return web.json_response(body, status=status)


class ShardRouter:
    """The aiohttp application routing by path to the shards' servers at `upstreams`."""

    def __init__(self, upstreams: list[str], max_body: int):
        self.upstreams = upstreams
        self.max_body = max_body
        self.session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, app) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT))

    async def _close(self, app) -> None:
        await self.session.close()

    def shard_of(self, path: str) -> int | None:
        if path == "/":
            return 0
        match = SHARD_PATH.fullmatch(path)
        return int(match.group(1)) if match else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        shard = self.shard_of(request.path)
        if shard is None or shard >= len(self.upstreams):
            return _error(404, INVALID_REQUEST, f"no shard at {request.path}: this node serves / and /shard/0 to "
                                                f"/shard/{len(self.upstreams) - 1}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, LIMIT_EXCEEDED, f"request body above {self.max_body} bytes")
        answer = await self.forward(shard, request.method, body, request.content_type)
        if isinstance(answer, web.Response):
            return answer
        status, data = answer
        if status == 200 and b"ewasm_consensusStatus" in body:
            data = await self._with_shards(body, data)
        return web.Response(body=data, status=status, content_type="application/json")

    async def forward(self, shard: int, method: str, body: bytes, content_type: str):
        """(status, body) of shard `shard`'s answer, or the error response if it gave none."""
        try:
            async with self.session.request(method, self.upstreams[shard], data=body,
                                            headers={"Content-Type": content_type or "application/json"}) as reply:
                return reply.status, await reply.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            return _error(503, RESOURCE_UNAVAILABLE, f"shard {shard} does not answer: {err or type(err).__name__}")

    async def _with_shards(self, body: bytes, data: bytes) -> bytes:
        """A single ewasm_consensusStatus answer, with every shard's head and final height."""
        try:
            request, answer = json.loads(body), json.loads(data)
        except ValueError:
            return data
        if not isinstance(request, dict) or request.get("method") != "ewasm_consensusStatus" \
                or not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
            return data
        query = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ewasm_consensusStatus", "params": []}).encode()
        shards = []
        for k in range(len(self.upstreams)):
            reply = await self.forward(k, "POST", query, "application/json")
            status = json.loads(reply[1]).get("result", {}) if isinstance(reply, tuple) and reply[0] == 200 else {}
            shards.append({"shard": k, "head": status.get("head"), "finalized": status.get("finalized")})
        answer["result"]["shards"] = shards
        return json.dumps(answer).encode()
