"""A contract's Ethereum ABI, from the interface its source declares.

A source (C, WAT or AssemblyScript) declares its interface in its comments, one item a
line after `@abi`, in Solidity's words:

    @abi function transfer(address to, uint256 value) returns (bool)
    @abi function balanceOf(address owner) view returns (uint256)
    @abi event Transfer(address indexed from, address indexed to, uint256 value)
    @abi fallback payable

`abi_from_source(text)` turns them into the JSON list that web3.py's and ethers'
contract objects take (`ewasm compile` writes it beside the module as NAME.abi.json),
and `selector(item)` gives a function's 4-byte selector, which the contract's dispatch
must use. Each type is checked by eth-abi's own grammar.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from eth_abi.grammar import ParseError, normalize, parse
from eth_hash.auto import keccak

MUTABILITY = ("pure", "view", "nonpayable", "payable")
_DECLARATION = re.compile(r"@abi\s+(.*?)\s*(?:\*/)?\s*$")
_FUNCTION = re.compile(r"(function|event)\s+([A-Za-z_]\w*)\s*\(([^)]*)\)\s*(.*)$")
_RETURNS = re.compile(r"returns\s*\(([^)]*)\)\s*$")


class AbiError(ValueError):
    """A declaration that is not a function, event or fallback in Solidity's words."""


def abi_from_source(text: str) -> list[dict]:
    """The ABI the source's `@abi` lines declare (an empty list when there are none)."""
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _DECLARATION.search(line)
        if match:
            try:
                items.append(declaration(match.group(1)))
            except AbiError as err:
                raise AbiError(f"line {number}: {err}") from None
    names = [(i["type"], i.get("name"), tuple(p["type"] for p in i.get("inputs", ()))) for i in items]
    duplicates = sorted({f"{kind} {name}" for kind, name, _ in names if names.count((kind, name, _)) > 1})
    if duplicates:
        raise AbiError(f"declared twice: {', '.join(duplicates)}")
    return items


def abi_of_file(path: Path) -> list[dict]:
    return abi_from_source(Path(path).read_text(encoding="utf-8"))


def declaration(text: str) -> dict:
    """One `@abi` item as its ABI JSON entry."""
    words = text.split()
    if words and words[0] == "fallback":
        mutability = _mutability(words[1:], default="nonpayable")
        return {"type": "fallback", "stateMutability": mutability}
    match = _FUNCTION.match(text)
    if match is None:
        raise AbiError(f"expected 'function NAME(...)', 'event NAME(...)' or 'fallback', got {text!r}")
    kind, name, params, rest = match.groups()
    if kind == "event":
        if rest.strip():
            raise AbiError(f"event {name}: unexpected {rest.strip()!r} after its parameters")
        return {"type": "event", "name": name, "anonymous": False, "inputs": _params(params, event=True)}
    returns = _RETURNS.search(rest)
    outputs = _params(returns.group(1)) if returns else []
    modifiers = (rest[:returns.start()] if returns else rest).split()
    return {"type": "function", "name": name, "inputs": _params(params), "outputs": outputs,
            "stateMutability": _mutability(modifiers, default="nonpayable")}


def selector(item: dict) -> bytes:
    """A function's 4-byte selector (an event's 32-byte topic for an event)."""
    signature = f"{item['name']}({','.join(p['type'] for p in item['inputs'])})".encode()
    digest = keccak(signature)
    return digest if item["type"] == "event" else digest[:4]


def write_abi(abi: list[dict], path: Path) -> None:
    Path(path).write_text(json.dumps(abi, indent=2) + "\n")


def _params(text: str, *, event: bool = False) -> list[dict]:
    params = []
    for i, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        words = part.split()
        indexed = event and "indexed" in words[1:]
        words = [w for w in words if not (event and w == "indexed")]
        if len(words) > 2:
            raise AbiError(f"parameter {part!r}: expected 'TYPE [NAME]'")
        kind = _type(words[0])
        entry = {"name": words[1] if len(words) == 2 else ("" if not event else f"arg{i}"), "type": kind}
        if event:
            entry["indexed"] = indexed
        params.append(entry)
    return params


def _type(text: str) -> str:
    """A canonical ABI type (uint is uint256, as Solidity says), or AbiError."""
    try:
        parsed = parse(normalize(text))
        parsed.validate()
    except (ParseError, ValueError) as err:
        raise AbiError(f"{text!r} is not an ABI type: {err}") from None
    return parsed.to_type_str()


def _mutability(words: list[str], *, default: str) -> str:
    unknown = [w for w in words if w not in MUTABILITY]
    if unknown or len(words) > 1:
        raise AbiError(f"expected at most one of {', '.join(MUTABILITY)}, got {' '.join(words)!r}")
    return words[0] if words else default
