"""A chain runs the cost table its spec names: the default (default-v2), or default-v1
for a chain created under it, and a spec naming a table this build lacks is refused."""

from __future__ import annotations

import pytest
import wasmtime

import metering
from chain.core.spec import SpecError, dev_spec, parse_spec
from chain.ledger.blockchain import Blockchain
from chain.ledger.genesis import cost_table

FUNDED = b"\x01" * 20
RECURSER = b"\x7e" * 20
# main recurses 5,000 frames deep: beyond default-v1's limit (862 frames), well within v2's.
DEEP = bytes(wasmtime.wat2wasm('''(module
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory (export "memory") 1)
  (func $d (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 0))
      (else (i64.add (i64.const 1) (call $d (i64.sub (local.get 0) (i64.const 1)))))))
  (func (export "main")
    (i64.store (i32.const 0) (call $d (i64.const 5000))) (call $finish (i32.const 0) (i32.const 8))))'''))


def spec_naming(table_hash: str):
    data = dev_spec(FUNDED, cost_table=table_hash)
    data["accounts"]["0x" + RECURSER.hex()] = {"balance": "0", "code": "0x" + DEEP.hex()}
    return parse_spec(data)


@pytest.mark.parametrize("version, status", [("default-v2", "SUCCESS"), ("default-v1", "STACK_LIMIT"),
                                             ("", "STACK_LIMIT")])
def test_a_chain_runs_the_cost_table_its_spec_names(tmp_path, version, status):
    spec = spec_naming(metering.load_costs(version).hash if version else "")
    assert cost_table(spec).version == (version or "default-v1")
    chain = Blockchain.initialize(str(tmp_path / "db"), spec)
    try:
        result = chain.call(sender=FUNDED, to=RECURSER, data=b"", gas=10_000_000)
    finally:
        chain.close()
    assert result.status == status, result
    if status == "SUCCESS":
        assert int.from_bytes(result.output, "little") == 5000


def test_a_spec_without_a_cost_table_runs_default_v1_as_when_such_specs_were_written():
    assert cost_table(spec_naming("")) == metering.load_costs("default-v1")


def test_new_specs_name_the_default_table():
    assert dev_spec(FUNDED)["params"]["costTable"] == "0x" + metering.load_costs().hash


def test_a_spec_naming_a_table_this_build_does_not_ship_is_refused_with_the_ones_it_has(tmp_path):
    with pytest.raises(SpecError, match="default-v1 .* default-v2"):
        Blockchain.initialize(str(tmp_path / "db"), spec_naming("ab" * 32))
