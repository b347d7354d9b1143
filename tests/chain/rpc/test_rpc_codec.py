"""The JSON-RPC envelope: every body decodes to a request or to a precise error."""

from __future__ import annotations

import json
import threading

import pytest

from chain.rpc.codec import (
    INVALID_REQUEST,
    PARSE_ERROR,
    InvalidRequest,
    RpcError,
    decode_body,
    encode,
    error_response,
    parse_request,
)
from chain.rpc.server import SERVER_STACK_BYTES


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "Expecting property name"),
    (b"[" * 100_000, "nested too deeply"),
    (b"1" * 5000, "digits"),
    (b'{"id": NaN}', "NaN is not valid JSON"),
    (b'{"id": Infinity}', "Infinity is not valid JSON"),
    (b'[-Infinity]', "-Infinity is not valid JSON"),
    (b"\xff\xfe\xfd", "not valid UTF-8"),
    (b"", "Expecting value"),
])
def test_bodies_that_are_not_strict_json_are_parse_errors(body, reason):
    caught = on_server_stack(decode_body, body)
    assert isinstance(caught, RpcError) and caught.code == PARSE_ERROR and reason in caught.message


def on_server_stack(fn, *args):
    """What `fn(*args)` raises on a thread with the RPC server's stack (None if nothing)."""
    outcome = []

    def run():
        try:
            fn(*args)
            outcome.append(None)
        except Exception as err:
            outcome.append(err)

    default = threading.stack_size(SERVER_STACK_BYTES)
    try:
        thread = threading.Thread(target=run)
        thread.start()
    finally:
        threading.stack_size(default)
    thread.join()
    return outcome[0]


@pytest.mark.parametrize("request_id", [None, 0, 7, -7, 2**53, -(2**53), "", "x" * 256])
def test_valid_ids_are_echoed_as_they_came(request_id):
    request = parse_request({"jsonrpc": "2.0", "id": request_id, "method": "eth_chainId"})
    assert request.id == request_id and not request.is_notification
    assert json.loads(encode(error_response(request.id, RpcError(-1, "x"))))["id"] == request_id


@pytest.mark.parametrize("request_id", [True, False, 1.5, 1.0, 2**53 + 1, -(2**53) - 1, "x" * 257, [1], {"a": 1},
                                        1e300])
def test_an_invalid_id_is_an_invalid_request_answered_with_id_null(request_id):
    with pytest.raises(InvalidRequest, match="invalid id") as caught:
        parse_request({"jsonrpc": "2.0", "id": request_id, "method": "eth_chainId"})
    assert caught.value.code == INVALID_REQUEST and caught.value.request_id is None


@pytest.mark.parametrize("item, reason", [
    ([1], "must be a JSON object"),
    ("eth_chainId", "must be a JSON object"),
    ({"id": 1, "method": "eth_chainId"}, '"jsonrpc": "2.0"'),
    ({"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}, '"jsonrpc": "2.0"'),
    ({"jsonrpc": "2.0", "id": 1}, 'missing "method"'),
    ({"jsonrpc": "2.0", "id": 1, "method": 5}, '"method" must be a string'),
])
def test_malformed_request_objects_say_what_is_wrong_and_keep_a_valid_id(item, reason):
    with pytest.raises(InvalidRequest, match=reason) as caught:
        parse_request(item)
    assert caught.value.request_id == (item.get("id") if isinstance(item, dict) else None)


def test_a_request_without_an_id_is_a_notification():
    assert parse_request({"jsonrpc": "2.0", "method": "eth_chainId"}).is_notification


def test_responses_are_always_strict_json():
    with pytest.raises(ValueError):
        encode({"result": float("nan")})
    assert encode(error_response("\ud800", RpcError(-1, "bad \u00e9"))).isascii()
