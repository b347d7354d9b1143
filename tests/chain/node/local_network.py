"""Real node processes on loopback for the network tests: each `ewasm node run` with its
own datadir, node key, RPC port and p2p port, its log in a file; and a hostile peer that
connects with an allowed key and announces a block of its making."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chain.consensus.poa.seal import sign_header
from chain.consensus.poa.steps import encode_step, step_timestamp
from chain.core.blocks import Block, Header, transactions_root
from chain.core.keys import PrivateKey
from chain.core.merkle import EMPTY, list_root
from chain.net import wire
from chain.net.channel import SecureChannel, StreamLink
from chain.net.handshake import Handshake, Hello
from chain.net.transport import ACCEPTED, CONFIRM
from ewasm_cli.local_network import free_port_block  # noqa: F401  (the tests take it from here)

from chain_fixtures import REPO


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def rpc(port: int, method: str, *params, timeout: float = 30, host: str = "127.0.0.1"):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(f"http://{host}:{port}/", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise AssertionError(f"{method}: {answer['error']}")
    return answer["result"]


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class NodeProcess:
    name: str
    key: PrivateKey
    datadir: Path
    p2p_port: int
    peers: list[int]
    log: Path
    process: subprocess.Popen | None = None
    rpc_port: int = 0

    from_config: bool = False  # run from the datadir's node.json (network init) instead of flags
    extra: tuple[str, ...] = ()  # more flags for `node run`
    host: str = "127.0.0.1"  # where it serves RPC and p2p, and where its peers are (`peers` ports there)
    peer_addresses: tuple[str, ...] = ()  # HOST:PORT peers, instead of `peers` on 127.0.0.1
    prefix: tuple[str, ...] = ()  # a command to run it under (`ip netns exec NS`)

    def start(self) -> "NodeProcess":
        args = [*self.prefix, sys.executable, "-m", "ewasm_cli", "node", "run", "--datadir", str(self.datadir)]
        if not self.from_config:
            args += ["--key", self.key.secret.hex(), "--rpc-port", "0", "--p2p-port", str(self.p2p_port),
                     "--rpc-host", self.host, "--p2p-host", self.host]
            for address in self.peer_addresses or [f"127.0.0.1:{port}" for port in self.peers]:
                args += ["--peer", address]
        args += list(self.extra)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log.stat().st_size if self.log.exists() else 0  # a restart appends
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.rpc_port = int(wait_for(self._rpc_port_from_log, 60, f"{self.name} to start"))
        return self

    def _rpc_port_from_log(self):
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
        match = re.search(rf"JSON-RPC on http://{re.escape(self.host)}:(\d+)/",
                          self.log.read_bytes()[self._log_start:].decode())
        return match.group(1) if match else None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.rpc_port}/"

    def rpc(self, method: str, *params):
        return rpc(self.rpc_port, method, *params, host=self.host)

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block_hash(self, number: int) -> str:
        return self.rpc("eth_getBlockByNumber", hex(number), False)["hash"]

    def peer_ids(self) -> set[str]:
        return {peer["id"] for peer in self.rpc("ewasm_peers")}

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def full_mesh(root: Path, spec: dict, names: list[str], keys: list[PrivateKey]) -> Iterator[dict[str, NodeProcess]]:
    """A node per name, each dialing the ones before it, all connected to all; stopped
    on the way out."""
    ports = dict(zip(names, free_ports(len(names))))
    made: dict[str, NodeProcess] = {}
    try:
        for i, (name, key) in enumerate(zip(names, keys)):
            init_datadir(spec, root / name)
            made[name] = NodeProcess(name, key, root / name, ports[name], [ports[n] for n in names[:i]],
                                     root / f"{name}.log").start()
        for name in names:
            wait_for(lambda: len(made[name].peer_ids()) == len(names) - 1, 30, f"{name} connected to the others")
        yield made
    finally:
        for node in made.values():
            node.stop()


def init_datadir(spec: dict, directory: Path) -> None:
    spec_file = directory.with_suffix(".spec.json")
    spec_file.write_text(json.dumps(spec))
    subprocess.run([sys.executable, "-m", "ewasm_cli", "node", "init", "--spec", str(spec_file), "--datadir",
                    str(directory)], cwd=REPO, check=True, capture_output=True)


def forged_block(node: "NodeProcess", sealer: PrivateKey, step: int, step_duration: float, *,
                 state_root: bytes | None = None, seal: bytes | None = None) -> Block:
    """An empty block on `node`'s head at `step`, proposed and sealed by `sealer`, with
    the head's state root unless another is given (and `seal` in place of the real one)."""
    latest = node.rpc("eth_getBlockByNumber", "latest", False)
    extension = node.rpc("ewasm_getHeader", latest["hash"])  # this chain's own header fields
    header = Header(shard_id=0, number=int(latest["number"], 16) + 1, parent_hash=bytes.fromhex(latest["hash"][2:]),
                    timestamp=step_timestamp(step, step_duration), proposer=sealer.address,
                    state_root=state_root or bytes.fromhex(latest["stateRoot"][2:]),
                    transactions_root=transactions_root([]), receipts_root=list_root([]),
                    outgoing_receipts_root=EMPTY,
                    deliveries_root=EMPTY, validator_set_hash=bytes.fromhex(extension["validatorSetHash"][2:]),
                    gas_limit=int(latest["gasLimit"], 16), gas_used=0, extra_data=encode_step(step))
    return Block(header.with_seal(seal if seal is not None else sign_header(sealer, header)))


async def _announce(key: PrivateKey, chain_id: int, port: int, genesis_hash: bytes, block: bytes,
                    wait: float) -> str | None:
    try:
        async with asyncio.timeout(wait):  # one deadline for the whole exchange: the node may gossip forever
            return await _announce_until_hung_up(key, chain_id, port, genesis_hash, block)
    except TimeoutError:
        return None


async def _announce_until_hung_up(key: PrivateKey, chain_id: int, port: int, genesis_hash: bytes,
                                  block: bytes) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        link = StreamLink(reader, writer)
        handshake = Handshake(key, chain_id, genesis_hash)
        await link.send(handshake.hello.encode())
        channel = SecureChannel(link, *handshake.session_keys(Hello.decode(await link.receive()), initiator=True))
        await channel.send(CONFIRM)
        assert await channel.receive() == CONFIRM
        await channel.send(ACCEPTED)
        assert await channel.receive() == ACCEPTED
        await channel.send(wire.encode(wire.NewBlock(block)))
        while True:
            message = wire.decode(await channel.receive())
            if isinstance(message, wire.Disconnect):
                return message.reason
    finally:
        writer.close()


def hostile_announcement(key: PrivateKey, chain_id: int, node: "NodeProcess", block: Block,
                         wait: float = 15) -> str | None:
    """Connect to `node` as `key` (an allowed node), announce `block`, and return why the
    node hangs up (None if it did not within `wait` seconds)."""
    genesis = bytes.fromhex(node.rpc("eth_getBlockByNumber", "0x0", False)["hash"][2:])
    return asyncio.run(_announce(key, chain_id, node.p2p_port, genesis, block.encode(), wait))
