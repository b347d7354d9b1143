"""contracts.build, contracts.deployer and `ewasm compile`."""

from __future__ import annotations

import shutil

import pytest
import wasmtime

from contracts import EXAMPLES_DIR, load_example
from contracts.build import (
    BUILT_WITH_CLANG_MAJOR,
    BuildError,
    ToolMissing,
    build_contract,
    compile_wat,
    find_clang,
    rebuild_examples,
)
from contracts.deployer import deployer_wrapper, export_names, strip_custom_sections
from ewasm_cli.main import main as ewasm


def clang_major() -> int | None:
    try:
        return find_clang().major
    except ToolMissing:
        return None


needs_matching_clang = pytest.mark.skipif(
    clang_major() != BUILT_WITH_CLANG_MAJOR,
    reason=f"byte-for-byte rebuilds need clang {BUILT_WITH_CLANG_MAJOR} and lld installed",
)


@pytest.fixture
def no_clang(monkeypatch, tmp_path):
    """A PATH on which neither clang nor wasm-ld can be found."""
    monkeypatch.setenv("PATH", str(tmp_path))


# --- deployer wrapper --------------------------------------------------------------------------

def test_deployer_wrapper_returns_the_code_it_embeds(host):
    runtime = load_example("counter.wasm")
    result = host.call(deployer_wrapper(runtime))
    assert result.status == "finish" and result.output == runtime


def test_deployer_wrapper_grows_its_memory_to_fit_large_code(host):
    big = b"\x00asm\x01\x00\x00\x00" + bytes(70_000)
    wrapper = deployer_wrapper(big)
    memory = next(e.type for e in wasmtime.Module(wasmtime.Engine(), wrapper).exports if e.name == "memory")
    assert memory.limits.min == 2
    assert host.call(wrapper).output == big


def test_deployer_wrapper_refuses_bytes_that_are_not_wasm():
    with pytest.raises(ValueError, match="not a wasm binary"):
        deployer_wrapper(b"hello")


# --- custom sections -----------------------------------------------------------------------------

def test_strip_custom_sections_drops_names_and_keeps_the_code():
    named = bytes(wasmtime.wat2wasm('(module $m (func $f (export "main")))'))
    stripped = strip_custom_sections(named)
    assert len(stripped) < len(named) and b"\x00\x04name" not in stripped
    assert [e.name for e in wasmtime.Module(wasmtime.Engine(), stripped).exports] == ["main"]


def test_strip_custom_sections_reports_a_truncated_module():
    with pytest.raises(ValueError, match="runs past the end"):
        strip_custom_sections(b"\x00asm\x01\x00\x00\x00\x01\x10\x00")


# --- building ------------------------------------------------------------------------------------

def test_wat_examples_rebuild_byte_for_byte_without_clang():
    assert rebuild_examples(check=True, only_wat=True) == []


@needs_matching_clang
def test_all_committed_examples_rebuild_byte_for_byte():
    assert rebuild_examples(check=True) == []


def test_a_wat_syntax_error_is_a_build_error_with_the_position():
    with pytest.raises(BuildError, match="expected"):
        compile_wat("(module (func (export \"main\") i32.const))")


def test_building_an_unknown_kind_of_source_is_refused(tmp_path):
    source = tmp_path / "x.rs"
    source.write_text("fn main() {}")
    with pytest.raises(BuildError, match=r"expected a \.c or \.wat file"):
        build_contract(source)


def test_building_c_without_clang_says_how_to_install_it(no_clang):
    with pytest.raises(ToolMissing, match="apt-get install clang lld"):
        build_contract(EXAMPLES_DIR / "token.c")


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("wasm-ld") is None, reason="clang and lld not installed")
def test_a_c_contract_without_constructor_gets_the_generic_deployer(tmp_path, host):
    source = tmp_path / "echo.c"
    source.write_text(
        '#include "ewasm.h"\n'
        "EWASM_MAIN { uint8_t buf[64]; uint32_t n = eth_getCallDataSize();\n"
        "  if (n > 64) ewasm_fail(); eth_callDataCopy(buf, 0, n); eth_finish(buf, n); }\n"
    )
    runtime = build_contract(source)
    assert host.call(runtime, b"hello").output == b"hello"
    assert build_contract(source, deployer=True) == deployer_wrapper(runtime)


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("wasm-ld") is None, reason="clang and lld not installed")
def test_a_c_compile_error_carries_clangs_diagnostics(tmp_path):
    source = tmp_path / "bad.c"
    source.write_text('#include "ewasm.h"\nEWASM_MAIN { undefined_thing(); }\n')
    with pytest.raises(BuildError, match="undefined_thing"):
        build_contract(source)


# --- ewasm compile ---------------------------------------------------------------------------------

def test_ewasm_compile_writes_the_module_and_its_deployer(tmp_path, capsys):
    out = tmp_path / "counter.wasm"
    assert ewasm(["compile", str(EXAMPLES_DIR / "counter.wat"), "-o", str(out)]) == 0
    assert out.read_bytes() == load_example("counter.wasm")
    deploy = tmp_path / "counter.deploy.wasm"
    assert ewasm(["compile", str(EXAMPLES_DIR / "counter.wat"), "--deployer", "-o", str(deploy)]) == 0
    assert deploy.read_bytes() == load_example("counter.deploy.wasm")
    assert "wrote deployer" in capsys.readouterr().out


def test_ewasm_compile_defaults_the_output_next_to_the_source(tmp_path):
    source = tmp_path / "c.wat"
    source.write_text((EXAMPLES_DIR / "counter.wat").read_text())
    assert ewasm(["compile", str(source), "--deployer"]) == 0
    assert (tmp_path / "c.deploy.wasm").read_bytes() == load_example("counter.deploy.wasm")


def test_ewasm_compile_without_clang_exits_2_with_one_line_of_advice(no_clang, tmp_path, capsys):
    code = ewasm(["compile", str(EXAMPLES_DIR / "token.c"), "-o", str(tmp_path / "t.wasm")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "apt-get install clang lld" in err
    assert not (tmp_path / "t.wasm").exists()


@pytest.mark.parametrize("name", ["missing.wat", "notes.txt"])
def test_ewasm_compile_refuses_missing_or_unknown_sources(tmp_path, capsys, name):
    if name.endswith(".txt"):
        (tmp_path / name).write_text("hi")
    assert ewasm(["compile", str(tmp_path / name)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_ewasm_compile_refuses_a_module_the_chain_would_reject(tmp_path, capsys):
    metering = pytest.importorskip("metering")
    if not hasattr(metering, "check"):
        pytest.skip("metering.check is not available yet")
    source = tmp_path / "float.wat"
    source.write_text('(module (memory (export "memory") 1) (func (export "main") f32.const 1 drop))')
    assert ewasm(["compile", str(source), "-o", str(tmp_path / "f.wasm")]) == 1
    assert "refuse" in capsys.readouterr().err
    assert not (tmp_path / "f.wasm").exists()


def test_ewasm_compile_refuses_a_deployer_whose_runtime_code_the_chain_would_reject(tmp_path, capsys):
    metering = pytest.importorskip("metering")
    if not hasattr(metering, "check"):
        pytest.skip("metering.check is not available yet")
    source = tmp_path / "extra.wat"
    source.write_text('(module (memory (export "memory") 1) (func (export "main")) (func (export "other")))')
    assert ewasm(["compile", str(source), "--deployer"]) == 1
    assert "other" in capsys.readouterr().err
    assert not (tmp_path / "extra.deploy.wasm").exists()


def test_export_names_lists_a_modules_exports_in_order():
    assert export_names(load_example("counter.deploy.wasm")) == ["main", "memory"]
    assert sorted(export_names(load_example("token.wasm"))) == ["main", "memory"]
