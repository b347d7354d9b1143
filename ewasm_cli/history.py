"""A history checker in the manner of Jepsen: after a fault scenario, read every node's
chain over JSON-RPC and check what consensus promises.

- every node has the same block hash at every height they all have (no fork);
- every transaction a client got a receipt for is in every node's chain, in the same
  block;
- value is conserved: the accounts' balances add up to what genesis gave them. Nothing
  is burned: a block's proposer receives the whole fee its gas paid, base fee included
  (so the accounts must include every proposer).

Tests run it after each scenario; tools/fault_runner.py after each round.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass


class HistoryError(AssertionError):
    """What the nodes' histories break."""


@dataclass(frozen=True)
class History:
    height: int  # the height every node has
    transactions: int  # receipted transactions checked on every node
    blocks_checked: int


def rpc(url: str, method: str, *params):
    request = urllib.request.Request(url, data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                                           "params": list(params)}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise HistoryError(f"{url} {method}: {answer['error']}")
    return answer["result"]


def check_history(urls: list[str], receipted: list[str], accounts: list[str], genesis_total: int) -> History:
    """Check the three properties over the nodes at `urls`; HistoryError names the first
    that fails. `receipted`: hashes of transactions some node gave a receipt for;
    `accounts`: every account value can be in (0x hex), holding `genesis_total` at genesis."""
    height = min(int(rpc(url, "eth_blockNumber"), 16) for url in urls)
    for number in range(height + 1):
        blocks = [rpc(url, "eth_getBlockByNumber", hex(number), False) for url in urls]
        hashes = {block["hash"] for block in blocks}
        if len(hashes) != 1:
            raise HistoryError(f"a fork at block {number}: {sorted(hashes)}")
    for tx_hash in receipted:
        places = {(r["blockNumber"], r["blockHash"]) if r else None
                  for r in (rpc(url, "eth_getTransactionReceipt", tx_hash) for url in urls)}
        if len(places) != 1 or None in places:
            raise HistoryError(f"transaction {tx_hash} is not in the same block on every node: {places}")
    for url in urls:  # each node's latest state (nodes keep no older one), against its own head
        head = int(rpc(url, "eth_blockNumber"), 16)
        total = sum(int(rpc(url, "eth_getBalance", account, "latest"), 16) for account in accounts)
        if total != genesis_total:
            raise HistoryError(f"{url}: the accounts hold {total} at block {head}, genesis gave {genesis_total}")
    return History(height, len(receipted), height + 1)
