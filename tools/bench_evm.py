#!/usr/bin/env python3
"""The EVM comparison: the same workloads on this runtime and on EVMs (revm, py-evm).

    python tools/bench_evm.py [--quick] [--json OUT.json] [--plot OUT.png] [--markdown OUT.md]

is the same program as `ewasm bench evm`; the code lives in the installed
package `ewasm_cli.evmbench` so that the command works without this checkout.
Needs the optional extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ewasm_cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "evm", *sys.argv[1:]]))
