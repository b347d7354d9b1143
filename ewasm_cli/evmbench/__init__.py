"""The EVM comparison benchmark: the same workloads on this runtime and on EVMs.

`ewasm bench evm` and `tools/bench_evm.py` both drive `run_benchmark`. The code
lives in this installed package (not in tools/) so that the command works from a
plain `pip install 'ewasm[bench]'`, without a checkout of the repository.

Each backend (`wasm_backend`, `revm_backend`, `pyevm_backend`) gets its own
contract for a workload, runs it against the same starting state before every
measured call, and reports the call's output, logs and gas; `runner` checks that
the sides agree and times them; `report` turns the rows into a table, JSON and a
plot.
"""

from ewasm_cli.evmbench.runner import BenchResult, Row, run_benchmark
from ewasm_cli.evmbench.workloads import Workload, workloads

__all__ = ["BenchResult", "Row", "Workload", "run_benchmark", "workloads"]
