"""The transport over real loopback sockets: a permissioned full mesh of sealed
connections, and peers that misbehave are cut off while the node stays up."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time

import msgpack
import pytest

from chain.core.keys import PrivateKey
from chain.net import wire
from chain.net.channel import ChannelError, SecureChannel, StreamLink
from chain.net.handshake import Handshake, Hello
from chain.net.transport import ACCEPTED, CONFIRM, Transport, TransportConfig

CHAIN_ID, GENESIS = 7, b"\x01" * 32


class Recorder:
    """A MessageHandler that keeps what it is told."""

    def __init__(self):
        self.messages: list[tuple[bytes, wire.Message]] = []
        self.events: list[tuple[bytes, bool]] = []
        self.lock = threading.Lock()

    def on_peer(self, node_id, connected):
        with self.lock:
            self.events.append((node_id, connected))

    def on_message(self, node_id, message):
        with self.lock:
            self.messages.append((node_id, message))

    def received(self, kind) -> list[tuple[bytes, wire.Message]]:
        with self.lock:
            return [(n, m) for n, m in self.messages if isinstance(m, kind)]


def wait_for(condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Net:
    """Transports on loopback that all allow the ids in `allowed`."""

    def __init__(self):
        self.allowed: set[bytes] = set()
        self.nodes: list[tuple[Transport, Recorder]] = []

    def add(self, key=None, peers=(), allowed=True, genesis=GENESIS, **config) -> tuple[Transport, Recorder]:
        key = key or PrivateKey.generate()
        if allowed:
            self.allowed.add(key.address)
        recorder = Recorder()
        transport = Transport(TransportConfig(key, CHAIN_ID, genesis, peers=tuple(peers), redial_seconds=0.1,
                                              **config), lambda node_id: node_id in self.allowed, recorder)
        transport.start()
        self.nodes.append((transport, recorder))
        return transport, recorder

    def stop(self):
        for transport, _ in self.nodes:
            transport.stop()


@pytest.fixture
def net():
    network = Net()
    yield network
    network.stop()


def address(transport: Transport) -> tuple[str, int]:
    return ("127.0.0.1", transport.port)


def peer_ids(transport: Transport) -> set[bytes]:
    return {p.node_id for p in transport.peers()}


def test_nodes_on_the_list_form_a_full_mesh_and_exchange_sealed_messages(net):
    a, ra = net.add()
    b, rb = net.add(peers=[address(a)])
    c, rc = net.add(peers=[address(a), address(b)])
    wait_for(lambda: all(len(t.peers()) == 2 for t in (a, b, c)), what="a full mesh")
    assert peer_ids(a) == {b.node_id, c.node_id}
    assert {p.direction for p in a.peers()} == {"in"} and {p.direction for p in c.peers()} == {"out"}
    a.broadcast(wire.Transactions((b"\x02tx",)))
    c.send(b.node_id, wire.Status(3, b"\x22" * 32))
    wait_for(lambda: rb.received(wire.Transactions) and rc.received(wire.Transactions) and rb.received(wire.Status))
    assert rb.received(wire.Transactions) == [(a.node_id, wire.Transactions((b"\x02tx",)))]
    assert rb.received(wire.Status) == [(c.node_id, wire.Status(3, b"\x22" * 32))]
    assert not ra.received(wire.Transactions)  # broadcast goes to the others only


def test_a_node_not_on_the_list_is_refused_at_the_handshake(net, caplog):
    caplog.set_level(logging.INFO, logger="ewasm.net")
    a, ra = net.add()
    outsider, _ = net.add(peers=[address(a)], allowed=False)
    wait_for(lambda: any("not on the permission list" in r.getMessage() for r in caplog.records),
             what="the refusal in the log")
    time.sleep(0.3)
    assert a.peers() == [] and outsider.peers() == []


def test_a_node_of_another_chain_is_refused_at_the_handshake(net, caplog):
    caplog.set_level(logging.INFO, logger="ewasm.net")
    a, _ = net.add()
    stranger, _ = net.add(peers=[address(a)], genesis=b"\x02" * 32)
    wait_for(lambda: any("another chain" in r.getMessage() for r in caplog.records), what="the refusal")
    assert a.peers() == [] and stranger.peers() == []


def test_removing_a_node_from_the_list_drops_it_everywhere_and_keeps_it_out(net):
    a, _ = net.add()
    b, _ = net.add(peers=[address(a)])
    c, rc = net.add(peers=[address(a), address(b)])
    wait_for(lambda: len(a.peers()) == len(b.peers()) == 2)
    net.allowed.discard(c.node_id)
    started = time.monotonic()
    a.refresh_permissions()
    b.refresh_permissions()
    wait_for(lambda: c.node_id not in peer_ids(a) | peer_ids(b), timeout=2, what="c dropped within 2 s")
    assert time.monotonic() - started < 2
    time.sleep(0.5)  # c keeps redialing, and keeps being refused
    assert c.node_id not in peer_ids(a) | peer_ids(b) and peer_ids(a) == {b.node_id}


def test_crossed_dials_leave_one_connection_the_lower_node_id_dialed(net):
    keys = sorted((PrivateKey.generate() for _ in range(2)), key=lambda k: k.address)
    low, _ = net.add(key=keys[0])
    high, _ = net.add(key=keys[1], peers=[address(low)])
    wait_for(lambda: low.peers() and high.peers())
    # Now low dials high too: both sides must settle on the connection low dialed.
    extra = Transport(TransportConfig(keys[0], CHAIN_ID, GENESIS, port=0, peers=(address(high),)),
                      lambda node_id: True, Recorder())
    extra.start()
    try:
        wait_for(lambda: [p.direction for p in high.peers()] == ["in"] and len(high.peers()) == 1, what="one link")
        time.sleep(0.5)
        assert len(high.peers()) == 1
    finally:
        extra.stop()


def test_a_node_that_restarts_reconnects(net):
    a, _ = net.add()
    key = PrivateKey.generate()
    b, _ = net.add(key=key, peers=[address(a)])
    wait_for(lambda: a.peers())
    b.stop()
    wait_for(lambda: not a.peers(), what="a notices b is gone")
    net.add(key=key, peers=[address(a)])
    wait_for(lambda: peer_ids(a) == {key.address}, what="b back")


# -- hostile peers ----------------------------------------------------------------------
async def open_session(port: int, key: PrivateKey):
    """A real handshake from a raw client: (reader, writer, channel)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    link = StreamLink(reader, writer)
    handshake = Handshake(key, CHAIN_ID, GENESIS)
    await link.send(handshake.hello.encode())
    peer = Hello.decode(await link.receive())
    channel = SecureChannel(link, *handshake.session_keys(peer, initiator=True))
    await channel.send(CONFIRM)
    assert await channel.receive() == CONFIRM
    await channel.send(ACCEPTED)
    assert await channel.receive() == ACCEPTED
    return reader, writer, channel


def hostile(net: Net, a: Transport, act) -> PrivateKey:
    """Connect as an allowed node and run `act(writer, channel)`; returns its key."""
    key = PrivateKey.generate()
    net.allowed.add(key.address)

    async def go():
        reader, writer, channel = await open_session(a.port, key)
        await asyncio.sleep(0.1)
        await act(writer, channel)
        await asyncio.sleep(0.3)
        writer.close()

    asyncio.run(go())
    return key


@pytest.mark.parametrize("attack, banned", [
    ("garbage frame", True),        # bytes that were never sealed with the session key
    ("sealed garbage", True),       # sealed, but not a message
    ("oversized frame", True),      # a length prefix above the largest frame
    ("unknown kind", True),         # a sealed, well-formed msgpack array of an unknown kind
])
def test_a_peer_that_sends_garbage_is_disconnected_and_banned_and_the_node_stays_up(net, attack, banned):
    a, ra = net.add()
    b, rb = net.add(peers=[address(a)])
    wait_for(lambda: a.peers())

    async def act(writer, channel):
        if attack == "garbage frame":
            writer.write(struct.pack(">I", 40) + b"\x00" * 40)
        elif attack == "sealed garbage":
            await channel.send(b"\xc1\xc1\xc1")
        elif attack == "oversized frame":
            writer.write(struct.pack(">I", 0xFFFFFFFF))
        else:
            await channel.send(msgpack.packb([99, 1]))
        await writer.drain()

    key = hostile(net, a, act)
    wait_for(lambda: key.address not in peer_ids(a), what="the hostile peer dropped")
    assert (a.bans.reason(key.address) is not None) == banned
    b.broadcast(wire.Transactions((b"\x02still",)))  # the honest peer is served as before
    wait_for(lambda: ra.received(wire.Transactions))
    assert peer_ids(a) == {b.node_id}


def test_garbage_before_the_handshake_is_refused_and_the_node_stays_up(net):
    a, _ = net.add()
    for payload in (b"GET / HTTP/1.1\r\n\r\n", struct.pack(">I", 100_000) + b"x" * 100, b"\x00" * 3):
        with socket.create_connection(("127.0.0.1", a.port), timeout=5) as sock:
            sock.sendall(payload)
            sock.settimeout(7)
            try:
                while sock.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
    b, _ = net.add(peers=[address(a)])
    wait_for(lambda: a.peers())


def test_a_peer_that_stops_reading_is_dropped_and_holds_up_no_one(net):
    a, _ = net.add(outbox=8)
    b, rb = net.add(peers=[address(a)])
    key = PrivateKey.generate()
    net.allowed.add(key.address)
    stop = threading.Event()

    def sleepy_peer():
        async def go():
            reader, writer, channel = await open_session(a.port, key)
            while not stop.is_set():  # never reads: the kernel buffers fill, then a's queue
                await asyncio.sleep(0.05)
            writer.close()
        asyncio.run(go())

    thread = threading.Thread(target=sleepy_peer)
    thread.start()
    try:
        wait_for(lambda: key.address in peer_ids(a))
        payload = wire.Consensus(b"\x00" * 900_000)
        for sent in range(1, 41):  # at a pace the reading peer keeps up with
            a.broadcast(payload)
            wait_for(lambda: len(rb.received(wire.Consensus)) == sent, what="the reading peer keeping up")
        wait_for(lambda: key.address not in peer_ids(a), what="the slow peer dropped")
        assert peer_ids(a) == {b.node_id}
    finally:
        stop.set()
        thread.join()


class CuttingLink(StreamLink):
    """A link that a test cuts: after `budget` received frames the connection breaks."""

    budget = 4

    async def receive(self) -> bytes:
        if CuttingLink.budget <= 0:
            self.close()
            raise ChannelError("cut by the test")
        CuttingLink.budget -= 1
        return await super().receive()


def test_the_framing_can_be_cut_by_a_test_and_the_peers_reconnect_after_it(net):
    a, ra = net.add()
    key = PrivateKey.generate()
    net.allowed.add(key.address)
    recorder = Recorder()
    CuttingLink.budget = 5  # the hello, the confirmation, the acceptance, then two messages
    b = Transport(TransportConfig(key, CHAIN_ID, GENESIS, peers=(address(a),), redial_seconds=0.1),
                  lambda node_id: node_id in net.allowed, recorder, link=CuttingLink)
    b.start()
    net.nodes.append((b, recorder))
    wait_for(lambda: b.peers())
    for i in range(3):
        a.send(key.address, wire.Status(i, b"\x00" * 32))
    wait_for(lambda: any(not connected for _, connected in recorder.events), what="the cut")
    assert [m.head_number for _, m in recorder.received(wire.Status)] == [0, 1]
    CuttingLink.budget = 10**9
    wait_for(lambda: b.peers() and a.peers(), what="reconnected")
    a.send(key.address, wire.Status(9, b"\x00" * 32))
    wait_for(lambda: [m.head_number for _, m in recorder.received(wire.Status)][-1:] == [9])
