"""Fixtures for the chain tests (helpers live in chain_fixtures.py)."""

import pytest

import ewasm_runtime

from chain_fixtures import account, params  # noqa: F401  (pytest fixtures)


@pytest.fixture(scope="session", autouse=True)
def vm_runtime():
    """The VM's runtime, made before the first test.

    It raises the recursion limit when it is made; doing that before any test keeps
    hypothesis from warning about a change during one. It must not be made while
    conftest files load: pytest may load this one before it enables faulthandler,
    whose SIGILL handler would then replace wasmtime's and turn every wasm trap into
    a fatal error.
    """
    return ewasm_runtime.default_runtime()
