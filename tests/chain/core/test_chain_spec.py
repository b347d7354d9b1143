from __future__ import annotations

import json

import pytest

from chain.core.spec import SpecError, dev_spec, load_spec, parse_spec

ADDRESS = "0x" + "ab" * 20


def spec(**overrides):
    data = {"name": "t", "engine": {"instant": {}}, "params": {"chainId": 7},
            "accounts": {ADDRESS: {"balance": "0x10"}}}
    data.update(overrides)
    return data


def test_a_parity_style_spec_parses_with_numbers_in_any_notation():
    parsed = parse_spec(spec(params={"chainId": "0x7", "gasLimit": "1000000", "baseFeePerGas": 3},
                             engine={"poa": {"params": {"authority": ADDRESS, "blockPeriod": 2}}},
                             builtins={"0x" + "00" * 19 + "01": {"name": "ecrecover"}}))
    assert parsed.params.chain_id == 7 and parsed.params.block_gas_limit == 1_000_000
    assert parsed.params.base_fee_per_gas == 3
    assert parsed.engine.name == "poa" and parsed.engine.block_period == 2.0
    assert parsed.accounts[bytes.fromhex("ab" * 20)].balance == 16
    assert list(parsed.builtins.values()) == ["ecrecover"]


@pytest.mark.parametrize("change, message", [
    ({"name": ""}, "name"),
    ({"engine": {"pow": {}}}, "unknown engine"),
    ({"engine": {"poa": {}}}, "authority"),
    ({"params": {}}, "params.chainId: required"),
    ({"params": {"chainId": "seven"}}, "params.chainId"),
    ({"params": {"chainId": 1, "gasLimt": 5}}, "unknown field"),
    ({"accounts": {"0x1234": {}}}, "expected 20 bytes"),
    ({"accounts": {ADDRESS: {"balance": -1}}}, "negative"),
    ({"accounts": {ADDRESS: {"code": "0xzz"}}}, "not valid hex"),
    ({"txpool": {"maxQueued": 0}}, "txpool.maxQueued: must be at least 1"),
    ({"txpool": {"maxQueud": 5}}, "txpool: unknown field"),
    ({"txpool": {"queuedLifetime": 0}}, "txpool.queuedLifetime"),
    ({"txpool": {"minTip": -1}}, "txpool.minTip: must not be negative"),
])
def test_every_spec_error_names_the_field(change, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(spec(**change))


def test_load_spec_reports_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(str(bad))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(dev_spec(b"\x01" * 20)))
    assert load_spec(str(good)).accounts[b"\x01" * 20].balance == 10**24


def test_the_txpool_section_sets_the_pools_limits_and_flags_override_it(tmp_path):
    from chain.ledger.blockchain import Blockchain
    from chain.node.config import NodeConfig
    from chain.node.node import Node

    data = spec(txpool={"maxQueuedPerSender": 8, "maxQueued": "0x100", "queuedLifetime": 60, "minTip": 1})
    assert parse_spec(data).txpool == {"max_queued_per_sender": 8, "max_queued": 256, "min_tip": 1,
                                       "queued_lifetime": 60.0}
    Blockchain.initialize(str(tmp_path / "db"), parse_spec(data)).close()
    node = Node(NodeConfig(datadir=str(tmp_path / "db"), rpc_port=0, pool={"max_queued": 99}))
    try:
        limits = node.pool.limits
        assert (limits.max_queued_per_sender, limits.max_queued, limits.min_tip) == (8, 99, 1)
        assert limits.max_transactions == 100_000  # the default
    finally:
        node.chain.close()
