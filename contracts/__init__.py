"""The contract SDK: C header, example contracts (source plus built .wasm), build tools.

Other packages find the committed example binaries through `example_path` and
`load_example`, and the system contracts (which genesis places at reserved addresses)
through `load_system`; building them again is `python -m contracts.build`.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
SYSTEM_DIR = Path(__file__).resolve().parent / "system"


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


def load_system(name: str) -> bytes:
    """The bytes of a committed system contract binary, e.g. load_system('permissions.wasm')."""
    path = SYSTEM_DIR / name
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in SYSTEM_DIR.glob("*.wasm")))
        raise FileNotFoundError(f"no system contract {name!r} (known: {known})")
    return path.read_bytes()


OUTBOX_ADDRESS = "0x000000000000000000000000000000000000ff03"  # chain.core.system.OUTBOX


def outbox_accounts() -> dict[str, dict]:
    """The spec's `accounts` entry that places the cross-shard outbox (outbox.wat) on
    every shard of a sharded chain."""
    return {OUTBOX_ADDRESS: {"balance": "0", "nonce": 1, "code": "0x" + load_system("outbox.wasm").hex()}}
