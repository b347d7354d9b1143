"""npm packages for the client tests: contracts/npm.py's cache, plus a pytest skip.

`npm_package("ethers", "6.17.0")` returns the folder whose `node_modules` holds exactly that
version (installed once into the shared cache, see contracts/npm.py); `npm_package_or_skip`
turns `NpmUnavailable` into a pytest skip with its one-line reason, so a machine without
npm skips these tests instead of failing.
"""

from __future__ import annotations

from pathlib import Path

from contracts.npm import INSTALL_TIMEOUT, NpmUnavailable, cache_root, node_executable, npm_package

__all__ = ["INSTALL_TIMEOUT", "NpmUnavailable", "cache_root", "node_executable", "npm_package",
           "npm_package_or_skip"]


def npm_package_or_skip(name: str, version: str, *, timeout: float = INSTALL_TIMEOUT) -> Path:
    """`npm_package`, or a pytest skip with the reason when npm cannot provide it."""
    import pytest
    try:
        return npm_package(name, version, timeout=timeout)
    except NpmUnavailable as err:
        pytest.skip(f"{name}@{version} unavailable: {err}")
