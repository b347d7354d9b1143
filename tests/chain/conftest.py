"""Fixtures for the chain tests (helpers live in chain_fixtures.py)."""

from chain_fixtures import account, params  # noqa: F401  (pytest fixtures)

import ewasm_runtime

# The VM raises the recursion limit when its runtime is made; do it before hypothesis
# records the limit, so it does not warn about a change during a test.
ewasm_runtime.default_runtime()
