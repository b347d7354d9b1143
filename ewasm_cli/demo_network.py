"""`ewasm demo-chain`: the main job. A local consortium of PoA validators, each its own
process; the example token deployed through JSON-RPC; signed transfers streamed through
every node at once; then the blocks with their proposers, finality, throughput and a
balance check on every node."""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from ewasm_cli.arguments import integer, seconds
from ewasm_cli.local_network import LocalNetwork, free_port_block
from ewasm_cli.main import EXIT_OK, EXIT_REFUSED, CommandError

TOKEN_SUPPLY = 10**24  # what token.c gives its creator
AMOUNT = 7  # tokens per transfer


def register(sub) -> None:
    p = sub.add_parser("demo-chain", help="a local consortium: validators as processes, the token, signed transfers "
                                          "through every node, finality and balances")
    p.add_argument("--nodes", type=integer(1, 8), default=4, help="PoA validators, one process each (default 4)")
    p.add_argument("--transfers", type=integer(1, 1_000_000), default=2000,
                   help="how many token transfers to send (default 2000)")
    p.add_argument("--recipients", type=integer(1, 100_000), default=50)
    p.add_argument("--step-duration", type=seconds(60), default=1.0, metavar="S", help="PoA step (default 1 s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_demo_chain)


class Client:
    def __init__(self, url: str):
        self.url = url

    def post(self, payload):
        request = urllib.request.Request(self.url, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def call(self, method, *params):
        answer = self.post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        if "error" in answer:
            raise CommandError(f"{method}: {answer['error']['message']}", EXIT_REFUSED)
        return answer["result"]

    def receipt(self, tx_hash: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            receipt = self.call("eth_getTransactionReceipt", tx_hash)
            if receipt:
                return receipt
            time.sleep(0.05)
        raise CommandError(f"no receipt for {tx_hash} after {timeout:.0f} s", EXIT_REFUSED)

    def nonce(self, address: bytes) -> int:
        return int(self.call("eth_getTransactionCount", "0x" + address.hex(), "latest"), 16)


def cmd_demo_chain(args) -> int:
    from rich.console import Console

    from ewasm_cli.network_commands import initialize_network
    console = Console(stderr=args.json)
    root = Path(tempfile.mkdtemp(prefix="ewasm-demo-"))
    summary = initialize_network(SimpleNamespace(dir=root, validators=args.nodes, regular=0, engine="poa",
                                                 step_duration=args.step_duration,
                                                 base_port=free_port_block(2 * args.nodes),
                                                 chain_id=1337, dev_key=None, admin_key=None, json=False))
    network = LocalNetwork(root, args.nodes)
    try:
        urls = network.start()
        console.print(f"a consortium of {args.nodes} PoA validators, one process each, in {root}")
        for k, url in enumerate(urls):
            console.print(f"  node{k}  {summary['nodes'][k]['address']}  {url}")
        result = Demo(args, console, summary, [Client(u) for u in urls], root).run()
    finally:
        network.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    return EXIT_OK if result["balances_ok"] else EXIT_REFUSED


class Demo:
    def __init__(self, args, console, summary: dict, clients: list[Client], root: Path):
        from chain.core.keys import PrivateKey
        self.args, self.console, self.clients, self.root = args, console, clients, root
        self.dev = PrivateKey.from_hex(summary["dev_key"])
        self.senders = [PrivateKey.from_hex(json.loads((root / f"node{k}" / "node.json").read_text())["key"])
                        for k in range(len(clients))]  # each node's own key sends through its node
        self.names = {bytes.fromhex(n["address"][2:]): f"node{k}" for k, n in enumerate(summary["nodes"])}
        self.recipients = [bytes([0xEE]) + i.to_bytes(19, "big") for i in range(1, args.recipients + 1)]

    def run(self) -> dict:
        from ewasm_runtime.hashing import create_address
        self.chain_id = int(self.clients[0].call("eth_chainId"), 16)
        self.token = create_address(self.dev.address, 0)
        self._deploy_and_fund()
        plans = self._sign_transfers()
        first_block = max(int(c.call("eth_blockNumber"), 16) for c in self.clients) + 1
        start = time.perf_counter()
        included_everywhere = self._stream(plans)
        seconds = included_everywhere - start
        last_block = max(int(c.receipt(plans[k][-1][1])["blockNumber"], 16) for k, c in enumerate(self.clients)
                         if plans[k])
        finality = self._wait_final(last_block) - included_everywhere
        self._show_blocks(first_block, last_block)
        return self._check_balances(plans, seconds, finality, first_block, last_block)

    def _deploy_and_fund(self) -> None:
        """Deploy the token (the dev key gets the supply), then give each sender its share."""
        from chain.tx.signing import sign_scoped_transaction
        from contracts.token import deployer_code, transfer_data
        node0 = self.clients[0]
        deploy = sign_scoped_transaction(self.dev, chain_id=self.chain_id, nonce=0, gas_limit=5_000_000, to=None,
                                         data=deployer_code(), scope=[self.dev.address, self.token],
                                         max_fee_per_gas=1, max_priority_fee_per_gas=1)
        receipt = node0.receipt(node0.call("eth_sendRawTransaction", "0x" + deploy.hex()))
        if int(receipt["status"], 16) != 1:
            raise CommandError(f"token deployment failed: {receipt.get('error')}", EXIT_REFUSED)
        self.console.print(f"token deployed at {receipt['contractAddress']} in block {int(receipt['blockNumber'], 16)}")
        share = TOKEN_SUPPLY // (2 * len(self.senders))
        hashes = []
        for i, sender in enumerate(self.senders):
            raw = sign_scoped_transaction(self.dev, chain_id=self.chain_id, nonce=1 + i, gas_limit=100_000,
                                          to=self.token, data=transfer_data(sender.address, share),
                                          scope=[self.dev.address, self.token], max_fee_per_gas=1,
                                          max_priority_fee_per_gas=1)
            hashes.append(node0.call("eth_sendRawTransaction", "0x" + raw.hex()))
        for tx_hash in hashes:
            node0.receipt(tx_hash)
        self.share = share

    def _sign_transfers(self) -> list[list[tuple[str, str]]]:
        """Per sender, its (raw, hash) transfers: the transfers spread evenly over the nodes."""
        from chain.core.hashing import keccak256
        from chain.tx.signing import sign_scoped_transaction
        from contracts.token import transfer_data
        plans: list[list[tuple[str, str]]] = [[] for _ in self.senders]
        for i in range(self.args.transfers):
            k = i % len(self.senders)
            sender = self.senders[k]
            raw = sign_scoped_transaction(sender, chain_id=self.chain_id, nonce=len(plans[k]), gas_limit=100_000,
                                          to=self.token,
                                          data=transfer_data(self.recipients[i % len(self.recipients)], AMOUNT),
                                          scope=[sender.address, self.token], max_fee_per_gas=1,
                                          max_priority_fee_per_gas=1)
            plans[k].append(("0x" + raw.hex(), "0x" + keccak256(raw).hex()))
        return plans

    def _stream(self, plans) -> float:
        """Send every sender's transfers through its own node, all at once; the time when
        every node has included every transfer."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        total = sum(len(p) for p in plans)
        errors: list[str] = []

        def send(k: int) -> None:
            client, plan = self.clients[k], plans[k]
            for first in range(0, len(plan), 100):
                batch = [{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction", "params": [raw]}
                         for j, (raw, _) in enumerate(plan[first:first + 100])]
                for answer in client.post(batch):
                    if "error" in answer:
                        errors.append(answer["error"]["message"])

        threads = [threading.Thread(target=send, args=(k,)) for k in range(len(plans))]
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=self.console) as progress:
            included = progress.add_task("included on every node", total=total)
            for thread in threads:
                thread.start()
            while True:
                done = min(sum(c.nonce(s.address) for s in self.senders) for c in self.clients)
                progress.update(included, completed=done)
                if done >= total or errors:
                    break
                time.sleep(0.05)
            for thread in threads:
                thread.join()
        if errors:
            raise CommandError(f"a transfer was refused: {errors[0]}", EXIT_REFUSED)
        return time.perf_counter()

    def _wait_final(self, block: int, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.call("ewasm_consensusStatus")["finalized"] >= block for c in self.clients):
                return time.perf_counter()
            time.sleep(0.05)
        raise CommandError(f"block {block} was not final on every node after {timeout:.0f} s", EXIT_REFUSED)

    def _show_blocks(self, first: int, last: int) -> None:
        from rich.table import Table
        table = Table(title="blocks (each one the same on every node)")
        for column in ("block", "proposer", "transactions", "gas used", "hash"):
            table.add_column(column, justify="right" if column in ("block", "transactions", "gas used") else "left")
        self.proposers = set()
        for number in range(first, last + 1):
            blocks = [c.call("eth_getBlockByNumber", hex(number), False) for c in self.clients]
            if len({b["hash"] for b in blocks}) != 1:
                raise CommandError(f"the nodes disagree on block {number}", EXIT_REFUSED)
            proposer = self.names.get(bytes.fromhex(blocks[0]["miner"][2:]), blocks[0]["miner"])
            self.proposers.add(proposer)
            table.add_row(str(number), proposer, str(len(blocks[0]["transactions"])),
                          str(int(blocks[0]["gasUsed"], 16)),
                          blocks[0]["hash"][:18] + "…")
        self.console.print(table)

    def _check_balances(self, plans, seconds: float, finality: float, first: int, last: int) -> dict:
        from contracts.token import balance_of_data

        def balance_of(client: Client, holder: bytes) -> int:
            data = "0x" + balance_of_data(holder).hex()
            return int(client.call("eth_call", {"to": "0x" + self.token.hex(), "data": data}, "latest"), 16)

        expected = {r: 0 for r in self.recipients}
        for i in range(self.args.transfers):
            expected[self.recipients[i % len(self.recipients)]] += AMOUNT
        held = {s.address: self.share - AMOUNT * len(plans[k]) for k, s in enumerate(self.senders)}
        ok = all(balance_of(c, holder) == amount for c in self.clients
                 for holder, amount in (*expected.items(), *held.items()))
        result = {"nodes": len(self.clients), "transfers": self.args.transfers, "blocks": last - first + 1,
                  "proposers": sorted(self.proposers), "seconds": round(seconds, 3),
                  "tx_per_s": round(self.args.transfers / seconds, 1), "finality_seconds": round(finality, 3),
                  "balances_ok": ok}
        self.console.print(f"{self.args.transfers} transfers through {len(self.clients)} nodes in {result['blocks']} "
                           f"blocks by {len(self.proposers)} proposers, {seconds:.2f} s to be included on every node: "
                           f"[bold]{result['tx_per_s']:.0f} tx/s[/]; final on every node {finality:.2f} s later")
        self.console.print(f"balance check on every node ({len(expected)} recipients, {len(held)} senders): "
                           + ("[green]OK[/]" if ok else "[red]MISMATCH[/]"))
        return result
