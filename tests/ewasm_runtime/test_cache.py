"""The compiled-module cache: memory hits, a restarted process, corrupt and foreign artifacts."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import wasmtime

from ewasm_runtime import Runtime
from ewasm_runtime.cache import MAGIC
from tests.ewasm_runtime.helpers import contract

CODE = contract("(call $useGas (i64.const 1))")
REPO = Path(__file__).resolve().parents[2]


def test_a_second_lookup_is_a_memory_hit_returning_the_same_compiled_module():
    rt = Runtime(metering=False)
    first = rt.compiled(CODE)
    assert rt.compiled(CODE) is first
    assert rt.cache.stats.compiles == 1 and rt.cache.stats.hits == 1


def test_a_restarted_process_loads_the_artifact_instead_of_compiling(tmp_path):
    Runtime(metering=False, cache_dir=tmp_path).compiled(CODE)
    (artifact,) = tmp_path.glob("*.cwasm")
    assert hashlib.sha256(CODE).hexdigest() in artifact.name
    script = (
        "import json, sys\n"
        "from ewasm_runtime import Runtime\n"
        "rt = Runtime(metering=False, cache_dir=sys.argv[1])\n"
        "rt.compiled(bytes.fromhex(sys.argv[2]))\n"
        "s = rt.cache.stats\n"
        "print(json.dumps({'compiles': s.compiles, 'disk_hits': s.disk_hits}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path), CODE.hex()], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"compiles": 0, "disk_hits": 1}


def _artifact(tmp_path) -> Path:
    Runtime(metering=False, cache_dir=tmp_path).compiled(CODE)
    (artifact,) = tmp_path.glob("*.cwasm")
    return artifact


def _fresh_lookup(tmp_path):
    rt = Runtime(metering=False, cache_dir=tmp_path)
    compiled = rt.compiled(CODE)
    return rt.cache.stats, compiled


def test_a_corrupted_artifact_is_recompiled_and_rewritten(tmp_path):
    artifact = _artifact(tmp_path)
    blob = bytearray(artifact.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    artifact.write_bytes(bytes(blob))
    stats, compiled = _fresh_lookup(tmp_path)
    assert stats.rejected_artifacts == 1 and stats.compiles == 1 and compiled.main_index >= 0
    stats, _ = _fresh_lookup(tmp_path)
    assert stats.disk_hits == 1 and stats.compiles == 0


def test_a_truncated_or_empty_artifact_is_recompiled(tmp_path):
    artifact = _artifact(tmp_path)
    for blob in (artifact.read_bytes()[:100], b""):
        artifact.write_bytes(blob)
        stats, _ = _fresh_lookup(tmp_path)
        assert stats.rejected_artifacts == 1 and stats.compiles == 1


def test_an_artifact_from_another_engine_configuration_is_recompiled(tmp_path):
    artifact = _artifact(tmp_path)
    other = wasmtime.Engine()  # default settings: a foreign artifact with a valid checksum
    payload = bytes(wasmtime.Module(other, CODE).serialize())
    artifact.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    stats, _ = _fresh_lookup(tmp_path)
    assert stats.rejected_artifacts == 1 and stats.compiles == 1


def test_the_disk_key_names_code_hash_wasmtime_version_engine_and_cost_table(tmp_path):
    rt = Runtime(metering=False, cache_dir=tmp_path)
    path = rt.cache.artifact_path("ab" * 32)
    assert "ab" * 32 in path.name
    assert rt.costs.hash[:16] in path.name
    from ewasm_runtime import engine
    assert engine.WASMTIME_VERSION in path.name and engine.FINGERPRINT in path.name
