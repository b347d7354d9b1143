"""The C SDK's helpers (u256, ABI decoding, keccak256), compiled into a probe contract.

Needs clang and lld: the SDK is C, and the probe is built from source here.
"""

from __future__ import annotations

import random
import shutil

import pytest
from eth_abi import encode
from eth_hash.auto import keccak

from contracts.build import build_contract

pytestmark = pytest.mark.skipif(
    shutil.which("clang") is None or shutil.which("wasm-ld") is None, reason="clang and lld not installed"
)

PROBE = r"""
#include "ewasm.h"
#include "keccak.h"

static uint8_t buf[1024];

__attribute__((noreturn)) static void two_words(u256 a, uint64_t flag) {
    uint8_t out[64];
    u256_to_be(a, out);
    u256_to_be(u256_from_u64(flag), out + 32);
    eth_finish(out, 64);
}

EWASM_MAIN {
    uint32_t sel = abi_selector();
    switch (sel) {
    case 1: {  /* keccak256 of everything after the selector */
        uint32_t n = eth_getCallDataSize() - 4;
        if (n > sizeof buf) ewasm_fail();
        eth_callDataCopy(buf, 4, n);
        uint8_t h[32];
        keccak256(buf, n, h);
        eth_finish(h, 32);
    }
    case 2: { u256 r; int c = u256_add(&r, abi_arg_u256(0), abi_arg_u256(1)); two_words(r, c); }
    case 3: { u256 r; int b = u256_sub(&r, abi_arg_u256(0), abi_arg_u256(1)); two_words(r, b); }
    case 4: abi_return_bool(u256_lt(abi_arg_u256(0), abi_arg_u256(1)));
    case 5: abi_return_u64(abi_arg_u64(0));
    case 6: { uint8_t a[20], w[32]; abi_arg_address(0, a); abi_address_word(a, w); eth_finish(w, 32); }
    case 7: abi_return_u256(abi_arg_u256((uint32_t)abi_arg_u64(0)));
    case 8: abi_return_u64(u256_eq(abi_arg_u256(0), abi_arg_u256(1)) * 2 + u256_is_zero(abi_arg_u256(0)));
    default: ewasm_fail();
    }
}
"""

EDGES = [0, 1, 2, (1 << 64) - 1, 1 << 64, (1 << 128) - 1, 1 << 128, 1 << 255, (1 << 256) - 1]
rng = random.Random(7)
VALUES = EDGES + [rng.getrandbits(256) for _ in range(6)]
PAIRS = [(a, b) for a in VALUES for b in VALUES]
M256 = (1 << 256) - 1


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    source = tmp_path_factory.mktemp("probe") / "probe.c"
    source.write_text(PROBE)
    return build_contract(source)


def op(number: int, types: list[str] | None = None, args: list | None = None) -> bytes:
    return number.to_bytes(4, "big") + (encode(types, args) if types else b"")


def words(output: bytes) -> list[int]:
    return [int.from_bytes(output[i:i + 32], "big") for i in range(0, len(output), 32)]


@pytest.mark.parametrize("length", [0, 1, 31, 32, 135, 136, 137, 272, 300, 1000])
def test_keccak256_matches_ethereums_keccak_for_every_block_boundary(host, probe, length):
    data = bytes(rng.getrandbits(8) for _ in range(length))
    result = host.call(probe, op(1) + data)
    assert result.status == "finish" and result.output == keccak(data)


def test_u256_add_and_sub_wrap_and_report_carry_and_borrow(host, probe):
    for a, b in PAIRS:
        add = words(host.call(probe, op(2, ["uint256", "uint256"], [a, b])).output)
        assert add == [(a + b) & M256, int(a + b > M256)], (a, b)
        sub = words(host.call(probe, op(3, ["uint256", "uint256"], [a, b])).output)
        assert sub == [(a - b) & M256, int(a < b)], (a, b)


def test_u256_comparisons_agree_with_python(host, probe):
    for a, b in PAIRS:
        assert words(host.call(probe, op(4, ["uint256", "uint256"], [a, b])).output) == [int(a < b)]
        assert words(host.call(probe, op(8, ["uint256", "uint256"], [a, b])).output) == [2 * (a == b) + (a == 0)]


@pytest.mark.parametrize("value", EDGES)
def test_abi_arg_u64_accepts_64_bit_values_and_reverts_above(host, probe, value):
    result = host.call(probe, op(5, ["uint256"], [value]))
    if value < 1 << 64:
        assert result.status == "finish" and words(result.output) == [value]
    else:
        assert result.status == "revert" and result.output == b""


def test_abi_arg_address_round_trips_clean_words_and_rejects_dirty_ones(host, probe):
    address = bytes(range(1, 21))
    assert host.call(probe, op(6, ["address"], [address])).output == bytes(12) + address
    for dirty in range(12):
        word = bytearray(bytes(12) + address)
        word[dirty] = 1
        assert host.call(probe, op(6) + bytes(word)).status == "revert"


def test_arguments_past_the_calldata_buffer_are_fetched_from_the_host(host, probe):
    args = [20] + [1000 + i for i in range(20)]
    result = host.call(probe, op(7, ["uint256"] * 21, args))
    assert words(result.output) == [1019]
    assert result.host_calls["callDataCopy"] == 2  # the buffered head, then the far word
    assert host.call(probe, op(7, ["uint256"] * 3, [5, 1, 2])).status == "revert"


ALL_EEI = r"""
#include "ewasm.h"
static uint8_t m[64];
EWASM_MAIN {
    switch (abi_selector()) {
    case 1: eth_useGas(1); break;
    case 2: eth_getAddress(m); break;
    case 3: eth_getCaller(m); break;
    case 4: eth_getCallValue(m); break;
    case 5: eth_getBlockCoinbase(m); break;
    case 6: eth_getBlockDifficulty(m); break;
    case 7: eth_getTxGasPrice(m); break;
    case 8: eth_getTxOrigin(m); break;
    case 9: eth_getExternalBalance(m, m); break;
    case 10: eth_storageStore(m, m); break;
    case 11: eth_storageLoad(m, m); break;
    case 12: eth_selfDestruct(m);
    case 13: m[0] = (uint8_t)eth_getBlockHash(1, m); break;
    case 14: m[0] = (uint8_t)eth_call(1, m, m, m, 1); break;
    case 15: m[0] = (uint8_t)eth_callCode(1, m, m, m, 1); break;
    case 16: m[0] = (uint8_t)eth_callDelegate(1, m, m, 1); break;
    case 17: m[0] = (uint8_t)eth_callStatic(1, m, m, 1); break;
    case 18: m[0] = (uint8_t)eth_create(m, m, 1, m); break;
    case 19: eth_callDataCopy(m, 0, 1); break;
    case 20: eth_codeCopy(m, 0, 1); break;
    case 21: eth_returnDataCopy(m, 0, 1); break;
    case 22: eth_externalCodeCopy(m, m, 0, 1); break;
    case 23: m[0] = (uint8_t)eth_getExternalCodeSize(m); break;
    case 24: m[0] = (uint8_t)eth_getCallDataSize(); break;
    case 25: m[0] = (uint8_t)eth_getCodeSize(); break;
    case 26: m[0] = (uint8_t)eth_getReturnDataSize(); break;
    case 27: m[0] = (uint8_t)eth_getGasLeft(); break;
    case 28: m[0] = (uint8_t)eth_getBlockGasLimit(); break;
    case 29: m[0] = (uint8_t)eth_getBlockNumber(); break;
    case 30: m[0] = (uint8_t)eth_getBlockTimestamp(); break;
    case 31: eth_log(m, 1, 4, m, m, m, m); break;
    case 32: eth_revert(m, 1);
    }
    eth_finish(m, 1);
}
"""


@pytest.fixture(scope="module")
def all_eei_imports(tmp_path_factory):
    """The (module, name, params, results) a contract calling every EEI function imports."""
    import wasmtime

    source = tmp_path_factory.mktemp("eei") / "all_eei.c"
    source.write_text(ALL_EEI)
    module = wasmtime.Module(wasmtime.Engine(), build_contract(source))
    return {imp.name: (imp.module, [str(t) for t in imp.type.params], [str(t) for t in imp.type.results])
            for imp in module.imports}


def test_the_header_imports_all_33_eei_functions_with_their_exact_signatures(all_eei_imports, eei):
    assert {name: (params, results) for name, (_, params, results) in all_eei_imports.items()} == eei
    assert {module for module, _, _ in all_eei_imports.values()} == {"ethereum"}


def test_the_header_agrees_with_the_vms_host_functions(all_eei_imports):
    vm = pytest.importorskip("ewasm_runtime")
    if not hasattr(vm, "EEI"):
        pytest.skip("ewasm_runtime.EEI is not available yet")
    assert {name: (p, r) for name, (_, p, r) in all_eei_imports.items()} == {
        name: (list(spec[0]), list(spec[1])) for name, spec in vm.EEI.items()
    }
