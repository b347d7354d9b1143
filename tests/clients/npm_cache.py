"""npm packages for the client tests, installed once into a cache folder and reused.

`npm_package("ethers", "6.17.0")` returns the folder whose `node_modules` holds exactly that
version, installing it with `npm install --prefix` on first use (into a temporary folder
beside the cache entry, renamed into place once complete, so that two test processes never
see half an install). `NpmUnavailable` says in one line why there is none: node or npm
missing, or the install failing or running past its timeout; `npm_package_or_skip` turns
that into a pytest skip, so a machine without npm skips these tests instead of failing.

The cache is `$EWASM_NPM_CACHE`, else `$XDG_CACHE_HOME/ewasm/npm`, else `~/.cache/ewasm/npm`,
one folder per pinned package: `<name>-<version>` (a scope's slash becomes `__`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL_TIMEOUT = 120.0  # seconds one `npm install` may take


class NpmUnavailable(Exception):
    """node or npm is missing, or the package could not be installed."""


def cache_root() -> Path:
    if os.environ.get("EWASM_NPM_CACHE"):
        return Path(os.environ["EWASM_NPM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ewasm" / "npm"


def node_executable() -> str:
    """The `node` on PATH, or NpmUnavailable."""
    node = shutil.which("node")
    if node is None:
        raise NpmUnavailable("node is not installed (not on PATH)")
    return node


def _installed_version(prefix: Path, name: str) -> str | None:
    try:
        return json.loads((prefix / "node_modules" / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def npm_package(name: str, version: str, *, timeout: float = INSTALL_TIMEOUT) -> Path:
    """The install prefix whose node_modules holds `name@version` (installed now if it is not cached)."""
    node_executable()
    prefix = cache_root() / f"{name.replace('/', '__')}-{version}"
    if _installed_version(prefix, name) == version:
        return prefix
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable("npm is not installed (not on PATH)")
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.", dir=prefix.parent))
    except OSError as err:
        raise NpmUnavailable(f"cannot write the npm cache {prefix.parent}: {err}") from None
    try:
        (staging / "package.json").write_text(json.dumps({"name": "ewasm-test-clients", "private": True}))
        command = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--ignore-scripts",
                   "--loglevel", "error", "--fetch-retries", "1", "--fetch-timeout", "30000", f"{name}@{version}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise NpmUnavailable(f"npm install {name}@{version} did not finish in {timeout:g} s") from None
        if done.returncode != 0:
            reason = " | ".join(line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip())
            raise NpmUnavailable(f"npm install {name}@{version} failed (exit {done.returncode}): {reason[:300]}")
        if _installed_version(staging, name) != version:
            raise NpmUnavailable(f"npm install {name}@{version} left no {name} {version} in node_modules")
        try:
            staging.rename(prefix)  # atomic; fails if another process got there first
        except OSError:
            if _installed_version(prefix, name) != version:  # a broken leftover: replace it
                shutil.rmtree(prefix, ignore_errors=True)
                try:
                    staging.rename(prefix)
                except OSError as err:
                    raise NpmUnavailable(f"cannot move {name}@{version} into the npm cache: {err}") from None
        return prefix
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def npm_package_or_skip(name: str, version: str, *, timeout: float = INSTALL_TIMEOUT) -> Path:
    """`npm_package`, or a pytest skip with the reason when npm cannot provide it."""
    import pytest
    try:
        return npm_package(name, version, timeout=timeout)
    except NpmUnavailable as err:
        pytest.skip(f"{name}@{version} unavailable: {err}")
