"""Shared fixtures for the chain tests: real keys, real lmdb directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from chain.core.params import ChainParams
from contracts.token import deployer_code, genesis_entry

CHAIN_ID = 1337


@pytest.fixture
def params() -> ChainParams:
    return ChainParams(chain_id=CHAIN_ID, block_gas_limit=10_000_000)


@pytest.fixture
def account():
    return Account.from_key(bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"))


def sign(account, **fields) -> bytes:
    """An eth-account signed EIP-1559 transaction with sensible defaults."""
    tx = {"type": 2, "chainId": CHAIN_ID, "nonce": 0, "maxFeePerGas": 10, "maxPriorityFeePerGas": 1,
          "gas": 100_000, "to": "0x" + "22" * 20, "value": 0, "data": b"", "accessList": []}
    tx.update(fields)
    return bytes(account.sign_transaction(tx).raw_transaction)


# -- chains with the token contract -------------------------------------------------
REPO = Path(__file__).resolve().parents[2]
TOKEN_DEPLOYER = deployer_code()
# The example token's interface, as web3.py and ethers take it (contracts/examples/token.c).
ERC20_ABI = [
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "event", "name": "Transfer", "anonymous": False,
     "inputs": [{"name": "from", "type": "address", "indexed": True},
                {"name": "to", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
]

FORWARDER_RUNTIME = (REPO / "contracts" / "examples" / "forwarder.wasm").read_bytes()
FORWARDER_COUNT_SLOT = bytes(32)  # the forwarder's call counter (see forwarder.wat)
SPINNER_RUNTIME = (REPO / "contracts" / "examples" / "spinner.wasm").read_bytes()
SPINNER = bytes.fromhex("5917e4") + bytes(17)
SPIN, HOST_SPIN = "0x00", "0x01"  # spinner.wat's calldata: a pure wasm loop, or one through a host function


def with_spinner(spec: dict) -> dict:
    """`spec` with the spinner contract (it burns all its gas) at SPINNER in genesis."""
    spec["accounts"]["0x" + SPINNER.hex()] = {"balance": "0", "nonce": 1, "code": "0x" + SPINNER_RUNTIME.hex()}
    return spec


def dev_node(datadir: str, funded: str, *, spinner: bool = False, **config):
    """A started in-process node (RPC on a free port) on a new dev chain that funds the
    0x address `funded`, with the spinner in genesis if asked; `config`: NodeConfig's."""
    from chain.core.spec import dev_spec, parse_spec
    from chain.ledger.blockchain import Blockchain
    from chain.node.config import NodeConfig
    from chain.node.node import Node

    spec = dev_spec(bytes.fromhex(funded[2:]), chain_id=CHAIN_ID)
    Blockchain.initialize(datadir, parse_spec(with_spinner(spec) if spinner else spec)).close()
    node = Node(NodeConfig(datadir=datadir, rpc_port=0, **config))
    node.start()
    return node


def forward_data(target: bytes, data: bytes = b"") -> bytes:
    """Calldata that makes a forwarder call `target` with `data`."""
    return target + data


def token_spec(senders: list[bytes], tokens: list[bytes], *, chain_id: int = CHAIN_ID, tokens_each: int = 10**6,
               engine: dict | None = None, forwarders: list[bytes] | None = None) -> dict:
    """A chain spec with funded senders and token contracts in genesis, each sender
    holding `tokens_each` of every token.

    `forwarders` puts forwarder contracts (forwarder.wat) in genesis too; they hold
    `tokens_each` of every token as well, so a transfer they forward can succeed. Like
    the token, their code is the raw runtime module: the chain meters genesis code."""
    accounts = {"0x" + s.hex(): {"balance": str(10**21)} for s in senders}
    forwarders = forwarders or []
    holders = [*senders, *forwarders]
    for token in tokens:
        accounts["0x" + token.hex()] = genesis_entry({holder: tokens_each for holder in holders})
    for forwarder in forwarders:
        accounts["0x" + forwarder.hex()] = {"balance": "0", "nonce": 1, "code": "0x" + FORWARDER_RUNTIME.hex()}
    return {"name": "test", "engine": engine or {"instant": {}},
            "params": {"chainId": chain_id, "gasLimit": 30_000_000}, "accounts": accounts}
