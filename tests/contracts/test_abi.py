"""Interfaces declared in a contract's source (`@abi` lines) become the Ethereum ABI JSON
that web3.py and ethers take, and the committed NAME.abi.json files are that."""

from __future__ import annotations

import re

import pytest

from contracts.abi import AbiError, abi_from_source, declaration, selector
from contracts.build import EXAMPLES_DIR, rebuild_abis


def test_a_declaration_in_solidity_words_becomes_its_abi_entry():
    assert declaration("function balanceOf(address owner) view returns (uint256)") == {
        "type": "function", "name": "balanceOf", "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}], "stateMutability": "view"}
    event = declaration("event Transfer(address indexed from, address indexed to, uint value)")
    assert [(p["type"], p["indexed"]) for p in event["inputs"]] == [("address", True), ("address", True),
                                                                    ("uint256", False)]
    assert declaration("fallback payable") == {"type": "fallback", "stateMutability": "payable"}
    assert selector(declaration("function transfer(address to, uint256 value) returns (bool)")).hex() == "a9059cbb"


@pytest.mark.parametrize("text, reason", [
    ("function f(uint257 x)", "not an ABI type"),
    ("function f() constant", "at most one of"),
    ("function f(address a b)", "TYPE [NAME]"),
    ("event E(uint256 x) view", "unexpected"),
    ("modifier m()", "expected 'function"),
])
def test_a_bad_declaration_is_refused_with_its_reason(text, reason):
    with pytest.raises(AbiError, match=re.escape(reason)):
        abi_from_source(f"// @abi {text}\n")


def test_a_function_declared_twice_is_refused_with_the_line():
    with pytest.raises(AbiError, match="declared twice: function f"):
        abi_from_source("// @abi function f()\n// @abi function f()\n")


def test_the_committed_abi_files_are_what_the_sources_declare():
    assert rebuild_abis(check=True) == []


@pytest.mark.parametrize("name", ["token", "xtoken", "workloads"])
def test_every_declared_function_of_a_c_example_is_one_its_dispatch_knows(name):
    source = (EXAMPLES_DIR / f"{name}.c").read_text()
    dispatched = {int(h, 16) for h in re.findall(r"#define SEL_\w+ 0x([0-9a-f]{8})u", source)}
    declared = {int.from_bytes(selector(item), "big") for item in abi_from_source(source) if item["type"] == "function"}
    assert declared == dispatched
