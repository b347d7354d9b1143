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

from chain.tx.transaction import Transaction

ADDRESS_LENGTH = 20

# One worker's share of a block: components, each a list of transaction indices in
# block order.
Share = list[list[int]]


def conflict_components(txs: Sequence[Transaction]) -> list[list[int]]:
    """Indices of `txs` grouped so that scopes in different groups never overlap.

    Two prefixes overlap when one is a prefix of the other. Union-find over the
    transactions: each joins the first transaction that named the same prefix, and,
    when some prefixes are shorter than an address, every prefix in sorted order joins
    its nearest named ancestor (the strings under a prefix follow it directly in
    sorted order, so a stack finds the ancestor). Each group keeps block order; groups
    are ordered by their first transaction.
    """
    parent = list(range(len(txs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    first_user: dict[bytes, int] = {}
    for i, tx in enumerate(txs):
        for prefix in tx.scope:
            j = first_user.setdefault(prefix, i)
            if j != i:
                union(i, j)
    if any(len(prefix) < ADDRESS_LENGTH for prefix in first_user):
        stack: list[bytes] = []
        for prefix in sorted(first_user):
            while stack and not prefix.startswith(stack[-1]):
                stack.pop()
            if stack:
                union(first_user[prefix], first_user[stack[-1]])
            stack.append(prefix)
    groups: dict[int, list[int]] = {}
    for i in range(len(txs)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


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


def chunk(components: list[list[int]], workers: int) -> list[Share]:
    """Cut the components into shares that shrink as the block runs out (guided
    self-scheduling): each share takes about 1/(2·workers) of what is left.

    The parallel executor hands shares out on demand, so a worker that runs slow (a
    costly contract, a core the host lends elsewhere) takes fewer of them instead of
    holding up the block. Large shares at the start keep the messages few; small ones
    at the end keep the workers finishing together. None is cut smaller than
    1/(16·workers) of the block, where a message starts to cost more than the balance
    it buys. A component is never cut; the largest go first.
    """
    remaining = sum(map(len, components))
    smallest = max(1, remaining // (16 * workers))

    def target() -> int:
        return max(smallest, -(-remaining // (2 * workers)))

    shares: list[Share] = []
    current: Share = []
    size = 0
    for component in sorted(components, key=len, reverse=True):
        if current and size + len(component) > target():
            shares.append(current)
            remaining -= size
            current, size = [], 0
        current.append(component)
        size += len(component)
    if current:
        shares.append(current)
    return shares
