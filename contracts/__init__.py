"""The contract SDK: C header, example contracts (source plus built .wasm), build tools.

Other packages find the committed example binaries through `example_path` and
`load_example`; building them again is `python -m contracts.build`.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def example_path(name: str) -> Path:
    """Path of a committed example file, e.g. 'token.wasm' or 'token.deploy.wasm'."""
    path = EXAMPLES_DIR / name
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in EXAMPLES_DIR.glob("*.wasm")))
        raise FileNotFoundError(f"no example contract {name!r} (known: {known})")
    return path


def load_example(name: str) -> bytes:
    """The bytes of a committed example binary, e.g. load_example('workloads.wasm')."""
    return example_path(name).read_bytes()
