"""`ewasm demo-chain`: the main job. A local consortium of validators (PBFT by default,
or PoA), each its own process; the example token deployed through JSON-RPC; signed
transfers streamed through every node at once. With PBFT and four or more validators,
one validator is SIGKILLed halfway: the rest of the transfers go through the others while
blocks keep committing, and the killed one is restarted and catches up. Then the blocks
with their proposers, finality, throughput and a balance check on every node."""

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
    p.add_argument("--nodes", type=integer(1, 8), default=4, help="validators, one process each (default 4)")
    p.add_argument("--engine", choices=["pbft", "poa"], default="pbft")
    p.add_argument("--transfers", type=integer(1, 1_000_000), default=2000,
                   help="how many token transfers to send (default 2000)")
    p.add_argument("--recipients", type=integer(1, 100_000), default=50)
    p.add_argument("--step-duration", type=seconds(60), default=1.0, metavar="S",
                   help="PoA's step, or PBFT's block period (default 1 s)")
    p.add_argument("--no-crash", action="store_true", help="do not kill a validator halfway (PBFT)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_demo_chain)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise CommandError(f"timed out after {timeout:.0f} s waiting for {what}", EXIT_REFUSED)
        time.sleep(0.1)


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
    summary = initialize_network(SimpleNamespace(dir=root, validators=args.nodes, regular=0, engine=args.engine,
                                                 step_duration=args.step_duration, block_period=args.step_duration,
                                                 base_port=free_port_block(2 * args.nodes),
                                                 chain_id=1337, dev_key=None, admin_key=None, json=False))
    network = LocalNetwork(root, args.nodes)
    try:
        urls = network.start()
        console.print(f"a consortium of {args.nodes} {args.engine.upper()} validators, one process each, in {root}")
        for k, url in enumerate(urls):
            console.print(f"  node{k}  {summary['nodes'][k]['address']}  {url}")
        result = Demo(args, console, summary, [Client(u) for u in urls], root, network).run()
    finally:
        network.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    return EXIT_OK if result["balances_ok"] else EXIT_REFUSED


class Demo:
    def __init__(self, args, console, summary: dict, clients: list[Client], root: Path, network: LocalNetwork):
        from chain.core.keys import PrivateKey
        self.args, self.console, self.clients, self.root, self.network = args, console, clients, root, network
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
        crash = self.crashed = self.args.engine == "pbft" and len(self.clients) >= 4 and not self.args.no_crash
        start = time.perf_counter()
        last_block = lambda: max(int(self.clients[0].receipt(plan[-1][1])["blockNumber"], 16)  # noqa: E731
                                 for plan in plans if plan)
        if crash:
            included_everywhere, final_at = self._stream_through_a_crash(plans, last_block)
        else:
            included_everywhere = self._stream([(c, plans[k]) for k, c in enumerate(self.clients)], plans,
                                               self.clients, "included on every node")
            final_at = self._wait_final(last_block(), self.clients)
        seconds = included_everywhere - start
        finality = final_at - included_everywhere
        last_block = last_block()
        self._show_blocks(first_block, last_block)
        return self._check_balances(plans, seconds, finality, first_block, last_block)

    def _stream_through_a_crash(self, plans, last_block) -> tuple[float, float]:
        """Half the transfers through every node; SIGKILL the last validator; the other
        half through the rest while blocks keep committing; restart it and wait until it
        has caught up. Returns when the live nodes had every transfer, and when its block
        was final on all of them."""
        victim = len(self.clients) - 1
        halves = [len(plan) // 2 for plan in plans]
        first = [plan[:h] for plan, h in zip(plans, halves)]
        self._stream([(c, first[k]) for k, c in enumerate(self.clients)], first, self.clients,
                     "first half, on every node")
        self.network.kill(victim)
        down_at = int(self.clients[0].call("eth_blockNumber"), 16)
        self.console.print(f"[bold]node{victim} SIGKILLed[/] at block {down_at}; the rest of the transfers go through "
                           f"the other {victim} nodes")
        live = self.clients[:victim]
        rest = [(self.clients[k % victim], plan[h:]) for k, (plan, h) in enumerate(zip(plans, halves))]
        included = self._stream(rest, plans, live, f"second half, on the {victim} live nodes")
        final_at = self._wait_final(last_block(), live)
        wait_until(lambda: int(live[0].call("eth_blockNumber"), 16) >= down_at + 3, 60, "more blocks")
        head = int(live[0].call("eth_blockNumber"), 16)
        self.console.print(f"{head - down_at} blocks committed and final without node{victim}")
        restarted = time.perf_counter()
        self.clients[victim] = Client(self.network.restart(victim))
        wait_until(lambda: int(self.clients[victim].call("eth_blockNumber"), 16) >= head, 120,
                   f"node{victim} catching up")
        self.console.print(f"node{victim} restarted and caught up to block {head} in "
                           f"{time.perf_counter() - restarted:.2f} s")
        return included, final_at

    def _deploy_and_fund(self) -> None:
        """Deploy the token (the dev key gets the supply), then give each sender its share."""
        from chain.core.params import DEFAULT_MAX_FEE
        from chain.tx.signing import sign_scoped_transaction
        from contracts.token import deployer_code, transfer_data
        node0 = self.clients[0]
        deploy = sign_scoped_transaction(self.dev, chain_id=self.chain_id, nonce=0, gas_limit=5_000_000, to=None,
                                         data=deployer_code(), scope=[self.dev.address, self.token],
                                         max_fee_per_gas=DEFAULT_MAX_FEE, max_priority_fee_per_gas=1)
        receipt = node0.receipt(node0.call("eth_sendRawTransaction", "0x" + deploy.hex()))
        if int(receipt["status"], 16) != 1:
            raise CommandError(f"token deployment failed: {receipt.get('error')}", EXIT_REFUSED)
        self.console.print(f"token deployed at {receipt['contractAddress']} in block {int(receipt['blockNumber'], 16)}")
        share = TOKEN_SUPPLY // (2 * len(self.senders))
        hashes = []
        for i, sender in enumerate(self.senders):
            raw = sign_scoped_transaction(self.dev, chain_id=self.chain_id, nonce=1 + i, gas_limit=100_000,
                                          to=self.token, data=transfer_data(sender.address, share),
                                          scope=[self.dev.address, self.token], max_fee_per_gas=DEFAULT_MAX_FEE,
                                          max_priority_fee_per_gas=1)
            hashes.append(node0.call("eth_sendRawTransaction", "0x" + raw.hex()))
        for tx_hash in hashes:
            node0.receipt(tx_hash)
        self.share = share

    def _sign_transfers(self) -> list[list[tuple[str, str]]]:
        """Per sender, its (raw, hash) transfers: the transfers spread evenly over the nodes."""
        from chain.core.hashing import keccak256
        from chain.core.params import DEFAULT_MAX_FEE
        from chain.tx.signing import sign_scoped_transaction
        from contracts.token import transfer_data
        plans: list[list[tuple[str, str]]] = [[] for _ in self.senders]
        for i in range(self.args.transfers):
            k = i % len(self.senders)
            sender = self.senders[k]
            raw = sign_scoped_transaction(sender, chain_id=self.chain_id, nonce=len(plans[k]), gas_limit=100_000,
                                          to=self.token,
                                          data=transfer_data(self.recipients[i % len(self.recipients)], AMOUNT),
                                          scope=[sender.address, self.token], max_fee_per_gas=DEFAULT_MAX_FEE,
                                          max_priority_fee_per_gas=1)
            plans[k].append(("0x" + raw.hex(), "0x" + keccak256(raw).hex()))
        return plans

    def _stream(self, routes, plans, watch: list[Client], label: str) -> float:
        """Send each (client, transfers) route at once, all concurrently; returns when the
        `watch` clients have included everything sent so far (counted by the senders'
        nonces against `plans`... the transfers sent up to now)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        sent_so_far = getattr(self, "_sent", 0) + sum(len(transfers) for _, transfers in routes)
        self._sent = sent_so_far
        errors: list[str] = []

        def send(client: Client, transfers) -> None:
            for first in range(0, len(transfers), 100):
                batch = [{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction", "params": [raw]}
                         for j, (raw, _) in enumerate(transfers[first:first + 100])]
                for answer in client.post(batch):
                    if "error" in answer:
                        errors.append(answer["error"]["message"])

        threads = [threading.Thread(target=send, args=route) for route in routes]
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=self.console) as progress:
            included = progress.add_task(label, total=sent_so_far)
            for thread in threads:
                thread.start()
            while True:
                done = min(sum(c.nonce(s.address) for s in self.senders) for c in watch)
                progress.update(included, completed=done)
                if done >= sent_so_far or errors:
                    break
                time.sleep(0.05)
            for thread in threads:
                thread.join()
        if errors:
            raise CommandError(f"a transfer was refused: {errors[0]}", EXIT_REFUSED)
        return time.perf_counter()

    def _wait_final(self, block: int, clients: list[Client], timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.call("ewasm_consensusStatus")["finalized"] >= block for c in clients):
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
        result = {"engine": self.args.engine, "crash": self.crashed, "nodes": len(self.clients),
                  "transfers": self.args.transfers, "blocks": last - first + 1,
                  "proposers": sorted(self.proposers), "seconds": round(seconds, 3),
                  "tx_per_s": round(self.args.transfers / seconds, 1), "finality_seconds": round(finality, 3),
                  "balances_ok": ok}
        where = "every live node, a crash included" if self.crashed else "every node"
        self.console.print(f"{self.args.transfers} transfers through {len(self.clients)} nodes in {result['blocks']} "
                           f"blocks by {len(self.proposers)} proposers, {seconds:.2f} s to be included on {where}: "
                           f"[bold]{result['tx_per_s']:.0f} tx/s[/]; final {finality:.2f} s later")
        self.console.print(f"balance check on every node ({len(expected)} recipients, {len(held)} senders): "
                           + ("[green]OK[/]" if ok else "[red]MISMATCH[/]"))
        return result
