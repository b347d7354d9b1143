"""The handshake and the sealed channel: keys agree only between the two real parties,
and a frame altered, replayed, reordered or dropped fails to open."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from chain.core.keys import PrivateKey
from chain.net.channel import ChannelError, SecureChannel
from chain.net.handshake import Handshake, HandshakeError, Hello

GENESIS = b"\x01" * 32


def pair(chain_a=(7, GENESIS), chain_b=(7, GENESIS)):
    return (Handshake(PrivateKey.generate(), *chain_a), Handshake(PrivateKey.generate(), *chain_b))


def test_both_sides_derive_the_same_keys_one_per_direction():
    a, b = pair()
    a.check(b.hello)
    b.check(a.hello)
    a_send, a_receive = a.session_keys(b.hello, initiator=True)
    b_send, b_receive = b.session_keys(a.hello, initiator=False)
    assert (a_send, a_receive) == (b_receive, b_send) and a_send != a_receive


def test_a_hello_survives_its_encoding_and_garbage_does_not():
    a, _ = pair()
    assert Hello.decode(a.hello.encode()) == a.hello
    for garbage in (b"", b"\x00", b"\xff" * 40, a.hello.encode()[:-1], b"\x93\x01\x02\x03"):
        with pytest.raises(HandshakeError, match="hello"):
            Hello.decode(garbage)


def test_a_node_of_another_chain_is_refused():
    a, b = pair(chain_b=(8, GENESIS))
    with pytest.raises(HandshakeError, match="another chain"):
        a.check(b.hello)
    a, b = pair(chain_b=(7, b"\x02" * 32))
    with pytest.raises(HandshakeError, match="another chain"):
        a.check(b.hello)


def test_a_hello_that_claims_another_node_id_is_refused():
    a, b = pair()
    with pytest.raises(HandshakeError, match="signed by"):
        a.check(replace(b.hello, node_id=b"\x42" * 20))
    with pytest.raises(HandshakeError, match="signed by|not valid"):
        a.check(replace(b.hello, nonce=b"\x00" * 32))  # the signature no longer covers the fields


def test_a_replayed_hello_gives_keys_the_attacker_cannot_use():
    """Replaying b's hello to a: a derives keys from b's ephemeral key, whose private half
    only b holds, so an impostor using its own ephemeral key gets other keys."""
    a, b = pair()
    impostor = Handshake(PrivateKey.generate(), 7, GENESIS)
    a_keys = a.session_keys(b.hello, initiator=False)
    impostor_keys = impostor.session_keys(a.hello, initiator=True)
    assert set(a_keys).isdisjoint(impostor_keys)


class MemoryLink:
    """Frames in a list, for driving a channel without sockets."""

    def __init__(self):
        self.frames: list[bytes] = []

    async def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    async def receive(self) -> bytes:
        return self.frames.pop(0)

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


def channels():
    a, b = pair()
    link = MemoryLink()
    sender = SecureChannel(link, *a.session_keys(b.hello, initiator=True))
    receiver = SecureChannel(link, *b.session_keys(a.hello, initiator=False))
    return link, sender, receiver


def run(coroutine):
    return asyncio.run(coroutine)


def test_sealed_frames_open_in_order():
    link, sender, receiver = channels()

    async def go():
        for text in (b"one", b"two", b""):
            await sender.send(text)
        return [await receiver.receive() for _ in range(3)]

    assert run(go()) == [b"one", b"two", b""]
    assert all(b"one" not in frame for frame in link.frames)


@pytest.mark.parametrize("tamper", ["alter", "replay", "reorder", "drop"])
def test_a_frame_altered_replayed_reordered_or_dropped_fails_to_open(tamper):
    link, sender, receiver = channels()

    async def go():
        await sender.send(b"first")
        await sender.send(b"second")
        first, second = link.frames
        if tamper == "alter":
            link.frames[:] = [bytes([first[0] ^ 1]) + first[1:], second]
        elif tamper == "replay":  # the first frame again, where the second is expected
            assert await receiver.receive() == b"first"
            link.frames[:] = [first]
        elif tamper == "reorder":
            link.frames[:] = [second, first]
        else:
            link.frames[:] = [second]
        with pytest.raises(ChannelError, match="failed authentication"):
            await receiver.receive()

    run(go())
