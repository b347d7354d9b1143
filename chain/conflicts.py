"""Which transactions of a block may run apart: conflict components and their scheduling.

A transaction touches only addresses inside its declared scope (the VM ends it with
OUT_OF_RANGE otherwise, and the sender and recipient are checked at admission). Two
transactions whose scopes share no address therefore touch disjoint state, whatever
they execute. Grouping transactions whose scopes overlap, directly or through others,
gives components that can run on separate workers against the same snapshot and merge
without conflict. A block that is all conflicts is one component.
"""

from __future__ import annotations

from typing import Sequence

from .transactions import Transaction

# One worker's share of a block: components, each a list of transaction indices in
# block order.
Share = list[list[int]]


def conflict_components(txs: Sequence[Transaction]) -> list[list[int]]:
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


def schedule(components: list[list[int]], workers: int) -> list[Share]:
    """Assign components to at most `workers` shares, largest first onto the least
    loaded (LPT); the result holds no empty share and is ordered largest first."""
    shares: list[Share] = [[] for _ in range(workers)]
    load = [0] * workers
    for component in sorted(components, key=len, reverse=True):
        w = load.index(min(load))
        shares[w].append(component)
        load[w] += len(component)
    ordered = sorted(range(workers), key=lambda w: -load[w])
    return [shares[w] for w in ordered if shares[w]]


def chunk(components: list[list[int]], count: int) -> list[Share]:
    """Cut the components into about `count` shares of similar size, largest first.

    A component is never cut. The parallel executor hands these out on demand, so a
    worker that runs slow (a costly contract, a core the host lends elsewhere) takes
    fewer of them instead of holding up the block; largest first keeps a big late
    component from becoming the tail.
    """
    total = sum(map(len, components))
    target = max(1, -(-total // max(1, count)))
    shares: list[Share] = []
    current: Share = []
    size = 0
    for component in sorted(components, key=len, reverse=True):
        if current and size + len(component) > target:
            shares.append(current)
            current, size = [], 0
        current.append(component)
        size += len(component)
    if current:
        shares.append(current)
    return shares
