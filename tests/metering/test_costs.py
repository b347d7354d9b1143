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
