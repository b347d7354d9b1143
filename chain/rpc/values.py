"""JSON-RPC values both ways: quantities are 0x-hex without leading zeros, data is 0x-hex
of whole bytes; a parameter that is not what it should be, or out of its range, is the
caller's error (-32602).
"""

from __future__ import annotations

import re
from typing import Any

from chain.rpc.codec import INVALID_PARAMS, RpcError

MAX_VALUE = 2**128 - 1  # values and balances are 128-bit in the VM


MAX_GAS = 2**64 - 1


# -- encoding -----------------------------------------------------------------------
def quantity(n: int) -> str:
    return hex(n)


def data(b: bytes) -> str:
    return "0x" + b.hex()


_QUANTITY = re.compile(r"0x(0|[1-9a-fA-F][0-9a-fA-F]*)")


_DATA = re.compile(r"0x([0-9a-fA-F]{2})*")


def parse_quantity(value: Any, name: str) -> int:
    if isinstance(value, str) and _QUANTITY.fullmatch(value) and len(value) <= 66:
        return int(value, 16)
    raise RpcError(INVALID_PARAMS, f"{name}: expected a hex quantity like 0x1a (no leading zeros), got {value!r}")


def parse_data(value: Any, name: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not _DATA.fullmatch(value):
        raise RpcError(INVALID_PARAMS, f"{name}: expected 0x-prefixed hex bytes, got {short(value)}")
    raw = bytes.fromhex(value[2:])
    if length is not None and len(raw) != length:
        raise RpcError(INVALID_PARAMS, f"{name}: expected {length} bytes, got {len(raw)}")
    return raw


def parse_address(value: Any, name: str = "address") -> bytes:
    return parse_data(value, name, 20)


def parse_slot(value: Any, name: str) -> bytes:
    """A storage key: 32 bytes of data, or a quantity (web3 sends either)."""
    if isinstance(value, str) and _DATA.fullmatch(value) and len(value) == 66:
        return bytes.fromhex(value[2:])
    return parse_quantity(value, name).to_bytes(32, "big")


def bounded(call: dict, name: str, limit: int) -> int | None:
    """An optional quantity field of a call object, at most `limit`."""
    if call.get(name) is None:
        return None
    value = parse_quantity(call[name], name)
    if value > limit:
        raise RpcError(INVALID_PARAMS, f"{name}: {value} is above the limit of {limit}")
    return value


def bounded_list(value: Any, name: str, limit: int) -> list:
    """A single item or an array of at most `limit` of them, as a list."""
    items = value if isinstance(value, list) else [value]
    if len(items) > limit:
        raise RpcError(INVALID_PARAMS, f"{name}: at most {limit} entries, got {len(items)}")
    return items


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise RpcError(INVALID_PARAMS, f"{name}: expected true or false, got {short(value)}")
    return value


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
