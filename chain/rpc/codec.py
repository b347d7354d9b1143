"""The JSON-RPC 2.0 envelope: strict JSON in, checked request objects, valid JSON out.

Whatever arrives, the answer is a JSON-RPC response with an EIP-1474 error code: a body
that is not strict JSON (NaN, Infinity, numbers Python refuses to convert, nesting deeper
than the parser allows, bad UTF-8) is a parse error (-32700); an object that is not a
request, or whose id is not a valid id, is an invalid request (-32600) answered with id
null. A valid id is a string of at most 256 characters, an integer of magnitude at most
2^53, or null; anything else could not be echoed back faithfully.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
INVALID_INPUT = -32000
RESOURCE_NOT_FOUND = -32001
RESOURCE_UNAVAILABLE = -32002
TRANSACTION_REJECTED = -32003
METHOD_NOT_SUPPORTED = -32004
LIMIT_EXCEEDED = -32005
EXECUTION_REVERTED = 3

MAX_ID_LENGTH = 256
MAX_ID_MAGNITUDE = 2**53


class RpcError(Exception):
    """A JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class InvalidRequest(RpcError):
    """A request object that cannot be served; `request_id` is what to answer with."""

    def __init__(self, message: str, request_id: Any = None):
        super().__init__(INVALID_REQUEST, message)
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """One checked request object."""

    id: str | int | None
    method: str
    params: Any  # checked by the method table: positional parameters, an array
    is_notification: bool  # no "id" member: the caller wants no answer


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_body(body: bytes) -> Any:
    """Strict JSON of an HTTP body; RpcError(PARSE_ERROR) saying why not.

    Deep nesting ends in RecursionError at the interpreter's recursion limit, so the
    caller's thread needs the stack for that many levels (see server.py).
    """
    try:
        return json.loads(body, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise RpcError(PARSE_ERROR, f"parse error: {err}") from None
    except UnicodeDecodeError:
        raise RpcError(PARSE_ERROR, "parse error: the body is not valid UTF-8 (or UTF-16/32) text") from None
    except RecursionError:
        raise RpcError(PARSE_ERROR, "parse error: the JSON is nested too deeply") from None
    except ValueError as err:  # NaN/Infinity, or an integer with too many digits
        raise RpcError(PARSE_ERROR, f"parse error: {err}") from None


def valid_id(value: Any) -> bool:
    """A string of at most 256 characters, an integer of magnitude at most 2^53, or null."""
    if value is None:
        return True
    if isinstance(value, str):
        return len(value) <= MAX_ID_LENGTH
    return type(value) is int and abs(value) <= MAX_ID_MAGNITUDE


def parse_request(item: Any) -> Request:
    """Check one request object; InvalidRequest names what is wrong."""
    if not isinstance(item, dict):
        raise InvalidRequest("a request must be a JSON object")
    request_id = item.get("id")
    if not valid_id(request_id):
        raise InvalidRequest(f"invalid id: a string of at most {MAX_ID_LENGTH} characters, an integer of magnitude "
                             f"at most 2^53, or null")
    if item.get("jsonrpc") != "2.0":
        raise InvalidRequest('missing or wrong "jsonrpc": "2.0"', request_id)
    method = item.get("method")
    if not isinstance(method, str):
        raise InvalidRequest('"method" must be a string' if "method" in item else 'missing "method"', request_id)
    params = item.get("params")
    return Request(request_id, method, params, "id" not in item)


def error_response(request_id: Any, err: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": err.to_json()}


def result_response(request_id: Any, result: Any) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def encode(response: Any) -> bytes:
    """Compact JSON; never NaN or Infinity, never a non-ASCII byte."""
    return json.dumps(response, separators=(",", ":"), allow_nan=False).encode()
