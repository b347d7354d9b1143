"""Imports flow one way: metering <- ewasm_runtime <- chain <- the CLI and tools, and
inside chain/ from the pure data of `core` up to the `node` that wires it all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# What each top-level package may import of the others.
PACKAGES = {
    "metering": set(),
    "ewasm_runtime": {"metering"},
    "chain": {"metering", "ewasm_runtime"},
    "contracts": {"metering"},
}

# What each chain/ subpackage may import of the others (lower layers first).
CHAIN_LAYERS = {
    "core": set(),
    "tx": {"core"},
    "state": {"core"},
    "txpool": {"core", "tx"},
    "execution": {"core", "tx", "state"},
    "ledger": {"core", "tx", "state", "execution"},
    "net": {"core"},
    "consensus": {"core", "tx", "ledger"},
    "rpc": {"core", "tx", "state", "ledger"},
    "node": {"core", "tx", "state", "txpool", "execution", "ledger", "net", "consensus", "rpc"},
}

# `core` is pure data: nothing that touches disks, sockets or threads.
CORE_FORBIDDEN = {"lmdb", "socket", "asyncio", "aiohttp", "threading", "multiprocessing", "subprocess"}


def imports_of(path: Path) -> set[str]:
    """The absolute module names a file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module != "__future__":
                names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_package_imports_only_the_packages_below_it(package):
    forbidden = set(PACKAGES) - PACKAGES[package] - {package} | {"ewasm_cli", "tools", "tests"}
    for path in modules(package):
        wrong = {name for name in imports_of(path) if name.split(".")[0] in forbidden}
        assert not wrong, f"{path.relative_to(REPO)} imports {sorted(wrong)}"


@pytest.mark.parametrize("layer", sorted(CHAIN_LAYERS))
def test_a_chain_subpackage_imports_only_the_layers_below_it(layer):
    allowed = CHAIN_LAYERS[layer] | {layer}
    for path in modules(f"chain/{layer}"):
        used = {name.split(".")[1] for name in imports_of(path) if name.startswith("chain.") and name.count(".")}
        assert used <= allowed, f"{path.relative_to(REPO)} imports chain.{sorted(used - allowed)}"


def test_every_chain_module_lives_in_a_subpackage():
    assert [p.name for p in (REPO / "chain").glob("*.py")] == ["__init__.py"]
    assert {p.name for p in (REPO / "chain").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(CHAIN_LAYERS)


def test_core_is_pure_data():
    for path in modules("chain/core"):
        touched = {name.split(".")[0] for name in imports_of(path)} & CORE_FORBIDDEN
        assert not touched, f"{path.relative_to(REPO)} imports {sorted(touched)}"
