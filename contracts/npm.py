"""npm packages the build needs (the AssemblyScript compiler), installed once into a cache folder.

`npm_package("assemblyscript", "0.28.20")` returns the install prefix whose `node_modules`
holds exactly that version. A prefix that already holds it is used as it is: the cache entry,
or one of the `roots` the caller names (a project's own `npm install`). Otherwise the
package is installed with `npm install --prefix` into a temporary folder beside the cache
entry, renamed into place once complete, so that two processes never see half an install.

`NpmUnavailable` says in one line why there is none: node or npm missing, or the install
failing or running past its timeout. Callers turn it into a one-line error (`ewasm compile`)
or a test skip, never a traceback.

The cache is `$EWASM_NPM_CACHE`, else `$XDG_CACHE_HOME/ewasm/npm`, else `~/.cache/ewasm/npm`,
one folder per pinned package: `<name>-<version>` (a scope's slash becomes `__`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

INSTALL_TIMEOUT = 120.0  # seconds one `npm install` may take


class NpmUnavailable(Exception):
    """node or npm is missing, or the package could not be installed."""


def cache_root() -> Path:
    """Where pinned packages are installed: $EWASM_NPM_CACHE, else the XDG cache."""
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


def installed_version(prefix: Path, name: str) -> str | None:
    """The version of `name` in `prefix/node_modules`, or None when it is not there."""
    try:
        return json.loads((prefix / "node_modules" / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def npm_package(name: str, version: str, *, roots: Iterable[Path] = (),
                timeout: float = INSTALL_TIMEOUT) -> Path:
    """The install prefix whose node_modules holds `name@version` (installed now if nothing holds it).

    `roots` are prefixes to try before the cache, such as the project's own folder; only
    the exact pinned version counts, so a build never silently uses another compiler.
    """
    node_executable()
    for root in roots:
        if installed_version(Path(root), name) == version:
            return Path(root)
    prefix = cache_root() / f"{name.replace('/', '__')}-{version}"
    if installed_version(prefix, name) == version:
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
        _install(npm, staging, name, version, timeout)
        _move_into_place(staging, prefix, name, version)
        return prefix
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install(npm: str, staging: Path, name: str, version: str, timeout: float) -> None:
    """`npm install name@version` into `staging`, or NpmUnavailable with npm's own words."""
    (staging / "package.json").write_text(json.dumps({"name": "ewasm-npm-cache", "private": True}))
    # --ignore-scripts: nothing from the registry runs at install time.
    command = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--ignore-scripts",
               "--loglevel", "error", "--fetch-retries", "1", "--fetch-timeout", "30000", f"{name}@{version}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise NpmUnavailable(f"npm install {name}@{version} did not finish in {timeout:g} s") from None
    except OSError as err:
        raise NpmUnavailable(f"cannot run npm: {err}") from None
    if done.returncode != 0:
        reason = " | ".join(line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip())
        raise NpmUnavailable(f"npm install {name}@{version} failed (exit {done.returncode}): {reason[:300]}")
    if installed_version(staging, name) != version:
        raise NpmUnavailable(f"npm install {name}@{version} left no {name} {version} in node_modules")


def _move_into_place(staging: Path, prefix: Path, name: str, version: str) -> None:
    """Rename the finished install to its cache entry; another process may have won the race."""
    try:
        staging.rename(prefix)  # atomic; fails if another process got there first
    except OSError:
        if installed_version(prefix, name) != version:  # a broken leftover: replace it
            shutil.rmtree(prefix, ignore_errors=True)
            try:
                staging.rename(prefix)
            except OSError as err:
                raise NpmUnavailable(f"cannot move {name}@{version} into the npm cache: {err}") from None
