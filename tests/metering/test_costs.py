"""Cost tables: versioned, hashed, complete, validated."""

from __future__ import annotations

import copy
import json

import pytest

import metering
from metering.costs import DEFAULT_PATH, CostTableError, parse_costs, supported_instruction_names
from tests.metering.runner import run


def default_source() -> dict:
    return json.loads(DEFAULT_PATH.read_text())


def test_the_default_table_prices_every_supported_instruction():
    table = metering.load_costs()
    assert table.version and len(table.hash) == 64
    priced = {name for entry in default_source()["classes"].values() for name in entry["ops"]}
    assert set(supported_instruction_names()) <= priced


def test_the_hash_names_the_content_not_the_formatting():
    source = default_source()
    assert parse_costs(json.loads(json.dumps(source, indent=4))).hash == metering.load_costs().hash
    changed = copy.deepcopy(source)
    changed["classes"]["alu"]["gas"] += 1
    assert parse_costs(changed).hash != metering.load_costs().hash


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.update(format="other"), "format"),
        (lambda s: s["classes"]["alu"]["ops"].remove("i32.add"), "without a cost: i32.add"),
        (lambda s: s["classes"]["alu"]["ops"].append("i32.mul"), "two classes"),
        (lambda s: s["classes"]["alu"].update(gas=-1), "gas must be"),
        (lambda s: s["dynamic"]["memory.copy"].update(unit=3), "power of two"),
        (lambda s: s["limits"].pop("stack_limit"), "stack_limit"),
        (lambda s: s["classes"]["alu"]["ops"].append("i32.frobnicate"), "unknown instruction"),
    ],
)
def test_broken_tables_are_refused_with_a_reason(mutate, message):
    source = default_source()
    mutate(source)
    with pytest.raises(CostTableError) as err:
        parse_costs(source)
    assert message in str(err.value)


def test_a_custom_table_changes_the_gas_charged():
    wat = '(module (func (export "f") (param i32) (result i32) (i32.mul (local.get 0) (local.get 0))))'
    source = default_source()
    source["classes"]["mul"]["gas"] = 1000
    expensive = parse_costs(source)
    cheap_gas = 10**9 - run(metering.meter(wat), "f", [3], 10**9).gas_left
    dear_gas = 10**9 - run(metering.meter(wat, costs=expensive), "f", [3], 10**9).gas_left
    assert dear_gas - cheap_gas == 1000 - metering.load_costs().cost(0x6C)


V1_HASH = "ed3c1d1e752e530b"  # prefix of default-v1's hash, as chains created before v2 name it


def test_default_v2_is_the_default_and_default_v1_still_loads_by_version_and_by_hash():
    v1, v2 = metering.load_costs("default-v1"), metering.load_costs()
    assert (v1.version, v2.version) == ("default-v1", "default-v2")
    assert v1.hash.startswith(V1_HASH) and v2.hash != v1.hash
    assert metering.costs_by_hash(v1.hash) == v1 and metering.costs_by_hash("0x" + v2.hash) == v2
    assert metering.costs_by_hash("00" * 32) is None
    assert set(metering.shipped_costs()) >= {"default-v1", "default-v2"}
    # the gas weights are v1's: only the stack rules changed
    assert v1.weights == v2.weights and v1.dynamic == v2.dynamic and v1.local == v2.local
    assert (v1.stack_limit, v1.frame_cost, v1.param_cost) == (16_384, 8, 1)
    assert (v2.stack_limit, v2.frame_cost, v2.param_cost) == (200_000, 4, 3)


def test_a_table_without_param_cost_counts_each_param_once():
    source = default_source()
    del source["limits"]["param_cost"]
    assert parse_costs(source).param_cost == 1
