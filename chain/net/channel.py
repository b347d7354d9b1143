"""Frames between two nodes: a length-prefixed link, and the encrypted channel over it.

`FrameLink` is the small interface under the channel: send one frame, receive one
frame, close. `StreamLink` is the real one, over a TCP stream: a 4-byte big-endian length,
then the frame. Tests put a link of their own in its place to delay, drop or cut frames.

`SecureChannel` seals each message with ChaCha20-Poly1305 under the direction's session
key and a counter nonce (8 bytes of frame count after 4 zero bytes), so a frame that is
altered, replayed, reordered or dropped fails to open, and the connection ends.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

TAG = 16  # bytes ChaCha20-Poly1305 adds
MAX_FRAME = (32 << 20) + TAG + 64  # the largest message (wire.py) sealed, with room to spare


class ChannelError(ConnectionError):
    """The link broke, a frame was oversized, or a frame failed to open."""


class FrameLink(Protocol):
    async def send(self, frame: bytes) -> None: ...

    async def receive(self) -> bytes: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class StreamLink:
    """Length-prefixed frames over an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame: int = MAX_FRAME):
        self.reader, self.writer, self.max_frame = reader, writer, max_frame

    async def send(self, frame: bytes) -> None:
        self.writer.write(struct.pack(">I", len(frame)) + frame)
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as err:
            raise ChannelError(f"the connection broke: {err}") from None

    async def receive(self) -> bytes:
        try:
            (length,) = struct.unpack(">I", await self.reader.readexactly(4))
            if length > self.max_frame:
                raise ChannelError(f"a frame of {length} bytes (at most {self.max_frame})")
            return await self.reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise ChannelError("the peer closed the connection") from None
        except ConnectionError as err:
            if isinstance(err, ChannelError):
                raise
            raise ChannelError(f"the connection broke: {err}") from None

    def close(self) -> None:
        self.writer.close()

    async def wait_closed(self) -> None:
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (ConnectionError, asyncio.TimeoutError, RuntimeError):
            pass


class SecureChannel:
    """Authenticated encryption of every frame, one key and one counter per direction."""

    def __init__(self, link: FrameLink, send_key: bytes, receive_key: bytes):
        self.link = link
        self._seal = ChaCha20Poly1305(send_key)
        self._open = ChaCha20Poly1305(receive_key)
        self._sent = 0
        self._received = 0

    async def send(self, plaintext: bytes) -> None:
        nonce = _nonce(self._sent)
        self._sent += 1
        await self.link.send(self._seal.encrypt(nonce, plaintext, None))

    async def receive(self) -> bytes:
        frame = await self.link.receive()
        nonce = _nonce(self._received)
        self._received += 1
        try:
            return self._open.decrypt(nonce, frame, None)
        except InvalidTag:
            raise ChannelError(f"frame {self._received - 1} failed authentication (altered, replayed, reordered "
                               f"or not sealed with this session's key)") from None

    def close(self) -> None:
        self.link.close()

    async def wait_closed(self) -> None:
        await self.link.wait_closed()


def _nonce(counter: int) -> bytes:
    return bytes(4) + counter.to_bytes(8, "big")
