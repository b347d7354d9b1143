"""Block execution: the serial reference and the parallel executor.

A block runs in block order against the committed state (a lmdb snapshot). Each
transaction is checked against the state it meets (nonce, balance); one that fails is
left out of the block with the reason. Fees go to a pot during the block and to the
proposer after the last transaction (see state.FEE_POT), so fee payment never makes two
transactions conflict.

The parallel executor groups transactions whose scopes overlap, directly or through
others, into components (union-find over address prefixes). A transaction only touches
addresses inside its scope (the VM aborts it with OUT_OF_RANGE otherwise, and the sender
and recipient are checked before), so components touch disjoint state: they can run on
separate workers against the same snapshot, each in block order, and their writes merge
without conflict. The result is the serial one: same receipts, same state root. A block
that is all conflicts is one component and runs at serial speed.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
import multiprocessing

import ewasm_runtime
from ewasm_runtime import Environment, Message, Status

from .params import ChainParams
from .receipts import Log, Receipt, STATUS_FAILURE, STATUS_SUCCESS
from .state import Account, BlockState, FEE_POT, StateChanges, StateReader
from .transactions import InvalidTransaction, Transaction, validate_against_state


@dataclass(frozen=True)
class BlockContext:
    """What a block's transactions see of the block (the VM's environment)."""

    number: int
    timestamp: int
    proposer: bytes
    gas_limit: int
    block_hashes: dict[int, bytes] = field(default_factory=dict)

    def environment(self) -> Environment:
        return Environment(coinbase=FEE_POT, number=self.number, timestamp=self.timestamp,
                           gas_limit=self.gas_limit, block_hashes=self.block_hashes)


@dataclass
class Outcome:
    """One included transaction's result, before block-level numbering."""

    index: int  # position in the proposed transaction list
    status: int
    gas_used: int
    logs: tuple[Log, ...]
    contract_address: bytes
    output: bytes
    error: str
    fee: int


@dataclass
class BlockExecution:
    """A block's execution: included transactions with receipts, exclusions, state writes."""

    included: list[Transaction]
    receipts: list[Receipt]
    excluded: list[tuple[Transaction, InvalidTransaction]]
    changes: StateChanges
    gas_used: int
    fees: int


def apply_transaction(state: BlockState, tx: Transaction, env: Environment, params: ChainParams,
                      index: int) -> Outcome:
    """Run one transaction on `state`; InvalidTransaction if it cannot be included."""
    validate_against_state(tx, state)
    price = tx.effective_gas_price(params.base_fee_per_gas)
    scope = None if tx.scope == (b"",) else tx.scope
    message = Message(sender=tx.sender, to=tx.to, data=tx.data, value=tx.value, gas=tx.gas_limit,
                      gas_price=price, origin=tx.sender, scope=scope)
    fees_before = state.fees
    try:
        result = ewasm_runtime.execute(message, state, env)
    except ewasm_runtime.InvalidTransaction as err:
        raise InvalidTransaction(str(err)) from None
    logs = tuple(Log(log.address, tuple(log.topics), log.data) for log in result.logs)
    return Outcome(index=index, status=STATUS_SUCCESS if result.status is Status.SUCCESS else STATUS_FAILURE,
                   gas_used=result.gas_used, logs=logs, contract_address=result.created_address or b"",
                   output=result.output, error="" if result.status is Status.SUCCESS else
                   (result.status.value + (f": {result.error}" if result.error else "")),
                   fee=state.fees - fees_before)


def _run_in_order(state: BlockState, txs: list[tuple[int, Transaction]], env: Environment,
                  params: ChainParams) -> tuple[list[Outcome], list[tuple[int, InvalidTransaction]]]:
    outcomes, excluded = [], []
    for index, tx in txs:
        try:
            outcomes.append(apply_transaction(state, tx, env, params, index))
        except InvalidTransaction as err:
            excluded.append((index, err))
    return outcomes, excluded


def _finish(base: StateReader, txs: list[Transaction], outcomes: list[Outcome],
            excluded: list[tuple[int, InvalidTransaction]], changes: StateChanges, fees: int,
            context: BlockContext) -> BlockExecution:
    """Number the receipts in block order and credit the fees to the proposer."""
    outcomes.sort(key=lambda o: o.index)
    excluded.sort(key=lambda e: e[0])
    if fees:
        proposer = context.proposer
        account = changes.accounts.get(proposer, ...)
        if account is ...:
            account = base.get_account(proposer)
        elif account is None:
            account = Account()
        changes.accounts[proposer] = Account(account.nonce, account.balance + fees, account.code_hash)
    receipts, cumulative = [], 0
    for o in outcomes:
        cumulative += o.gas_used
        receipts.append(Receipt(o.status, o.gas_used, cumulative, o.logs, o.contract_address, o.output, o.error, o.fee))
    return BlockExecution(included=[txs[o.index] for o in outcomes], receipts=receipts,
                          excluded=[(txs[i], err) for i, err in excluded], changes=changes,
                          gas_used=cumulative, fees=fees)


def execute_serial(base: StateReader, txs: list[Transaction], context: BlockContext,
                   params: ChainParams) -> BlockExecution:
    """The reference: every transaction in block order on one state."""
    state = BlockState(base)
    outcomes, excluded = _run_in_order(state, list(enumerate(txs)), context.environment(), params)
    return _finish(base, txs, outcomes, excluded, state.changes(), state.fees, context)


# -- parallel -----------------------------------------------------------------------
def conflict_components(txs: list[Transaction]) -> list[list[int]]:
    """Indices of `txs` grouped so that scopes in different groups never overlap.

    Two prefixes overlap when one is a prefix of the other. Union-find over transactions
    and their prefixes: a transaction joins its prefixes, and in sorted order every
    prefix joins its nearest registered ancestor (the strings under a prefix follow it
    directly in sorted order, so a stack finds the ancestor). Each group keeps block
    order; groups are ordered by their first transaction.
    """
    prefix_ids: dict[bytes, int] = {}
    for tx in txs:
        for prefix in tx.scope:
            prefix_ids.setdefault(prefix, len(txs) + len(prefix_ids))
    parent = list(range(len(txs) + len(prefix_ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    for i, tx in enumerate(txs):
        for prefix in tx.scope:
            union(i, prefix_ids[prefix])
    stack: list[bytes] = []
    for prefix in sorted(prefix_ids):
        while stack and not prefix.startswith(stack[-1]):
            stack.pop()
        if stack:
            union(prefix_ids[prefix], prefix_ids[stack[-1]])
        stack.append(prefix)
    groups: dict[int, list[int]] = {}
    for i in range(len(txs)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def schedule(components: list[list[int]], workers: int) -> list[list[list[int]]]:
    """Assign components to workers, largest first onto the least loaded (LPT)."""
    bins: list[list[list[int]]] = [[] for _ in range(workers)]
    load = [0] * workers
    for component in sorted(components, key=len, reverse=True):
        w = load.index(min(load))
        bins[w].append(component)
        load[w] += len(component)
    return [b for b in bins if b]


def _run_components(base: StateReader, txs: list[Transaction], components: list[list[int]],
                    context: BlockContext, params: ChainParams):
    """One worker's share: its components in block order on its own state overlay."""
    state = BlockState(base)
    env = context.environment()
    outcomes, excluded = [], []
    for component in components:
        o, e = _run_in_order(state, [(i, txs[i]) for i in component], env, params)
        outcomes += o
        excluded += e
    return outcomes, excluded, state.changes(), state.fees


# Process workers open the store themselves: an lmdb environment must not cross fork.
_worker_store = None


def _process_init(store_path: str) -> None:
    global _worker_store
    from .store import Store
    _worker_store = Store(store_path, readonly=True)
    ewasm_runtime.default_runtime()  # engine and linker before the first block


def _process_ping(seconds: float) -> int:
    import time
    time.sleep(seconds)
    return os.getpid()


def _process_task(head: int, txs: list[Transaction], components, context, params):
    with _worker_store.snapshot() as snapshot:
        if snapshot.number != head:
            raise RuntimeError(f"worker sees block {snapshot.number}, expected {head}")
        return _run_components(snapshot, txs, components, context, params)


class ParallelExecutor:
    """Runs conflict-free components of a block on the calling thread and a pool of
    `workers - 1` threads or processes (created once, kept warm across blocks)."""

    def __init__(self, store, workers: int = 2, mode: str = "process"):
        if mode not in ("thread", "process"):
            raise ValueError("mode is 'thread' or 'process'")
        self.store, self.workers, self.mode = store, workers, mode
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        # The calling thread runs one share itself (it would otherwise sit idle waiting),
        # so the pool holds workers - 1 threads or processes.
        if self._pool is None:
            helpers = max(1, self.workers - 1)
            if self.mode == "thread":
                self._pool = ThreadPoolExecutor(helpers)
            else:
                ctx = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
                self._pool = ProcessPoolExecutor(helpers, mp_context=ctx, initializer=_process_init,
                                                 initargs=(self.store.path,))
        return self._pool

    def warm_up(self) -> None:
        """Start every worker now rather than inside the first block's timing."""
        pool = self._executor()
        if self.mode == "process":
            for future in [pool.submit(_process_ping, 0.05) for _ in range(2 * max(1, self.workers - 1))]:
                future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def execute(self, base, txs: list[Transaction], context: BlockContext, params: ChainParams) -> BlockExecution:
        """Same result as execute_serial(base, ...), computed on the pool."""
        components = conflict_components(txs)
        shares = schedule(components, self.workers)
        if len(shares) <= 1:
            return execute_serial(base, txs, context, params)
        # The largest shares go to the pool first so that they start at once; the caller
        # runs the smallest one, as it also pays for shipping and merging.
        shares.sort(key=lambda share: sum(map(len, share)), reverse=True)
        own = shares.pop()
        pool = self._executor()
        if self.mode == "thread":
            futures = [pool.submit(self._thread_task, txs, share, context, params) for share in shares]
        else:
            for tx in txs:
                tx.sender  # recovered once here, travels with the pickled transaction
            futures = []
            for share in shares:
                indices = sorted(i for component in share for i in component)
                local = {i: k for k, i in enumerate(indices)}
                futures.append((indices, pool.submit(
                    _process_task, base.number, [txs[i] for i in indices],
                    [[local[i] for i in component] for component in share], context, params)))
        outcomes, excluded, changes, fees = _run_components(base, txs, own, context, params)
        for future in futures:
            if self.mode == "thread":
                o, e, c, f = future.result()
            else:
                indices, future = future
                o, e, c, f = future.result()
                for item in o:
                    item.index = indices[item.index]
                e = [(indices[i], err) for i, err in e]
            outcomes += o
            excluded += e
            changes.merge(c)
            fees += f
        return _finish(base, txs, outcomes, excluded, changes, fees, context)

    def _thread_task(self, txs, share, context, params):
        with self.store.snapshot() as snapshot:
            return _run_components(snapshot, txs, share, context, params)
