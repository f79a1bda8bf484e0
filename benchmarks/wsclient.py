"""A minimal Socket.IO v5 client over a raw websocket, cheap enough to be a load client.

python-socketio's client costs more CPU per received event than the servers under test
spend sending it, so the load clients would be the bottleneck. This one is an
``asyncio.Protocol`` that parses server frames (unmasked, unfragmented text frames, which
is what python-engineio and Node's ``ws`` send) straight out of the receive buffer, answers
Engine.IO pings, and only JSON-decodes an event when latency is being measured.
Engine.IO 4 / Socket.IO 5 text framing, namespace ``/`` only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

from .counting import Counter

_EVENT_PREFIX = b"42"
_OP_TEXT, _OP_CLOSE, _OP_PING = 0x1, 0x8, 0x9


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (clients must mask; the payloads here are tiny)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, 0x80 | size])
    else:
        header = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return header + mask + masked


class SocketIOClient(asyncio.Protocol):
    """One websocket connection to ``/socket.io/``; events go to ``counter``."""

    def __init__(self, host: str, port: int, auth: dict[str, Any], counter: Counter) -> None:
        self.counter = counter
        self.connected: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self._host = f"{host}:{port}"
        self._auth = json.dumps(auth, separators=(",", ":")).encode()
        self._buf = bytearray()
        self._upgraded = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {self._host}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_client_frame(opcode, payload))

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status:
                self.connected.set_exception(ConnectionError(status.decode(errors="replace")))
                self.close()
                return
            self._upgraded = True
            del buf[: end + 4]
        pos, size = 0, len(buf)
        while size - pos >= 2:
            length = buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = buf[pos] & 0x0F
            if opcode == _OP_TEXT and buf[start : start + 2] == _EVENT_PREFIX:
                counter = self.counter
                if counter.latency:
                    counter.hit_at(json.loads(buf[start + 2 : end])[1]["t"])
                else:
                    counter.hit()
            else:
                self._control(opcode, bytes(buf[start:end]))
            pos = end
        del buf[:pos]

    def _control(self, opcode: int, frame: bytes) -> None:
        if opcode == _OP_PING:
            self._send(0xA, frame)
        elif opcode == _OP_CLOSE:
            self.close()
        elif opcode != _OP_TEXT:
            return
        elif frame == b"2":  # Engine.IO ping
            self._send(_OP_TEXT, b"3")
        elif frame[:1] == b"0":  # Engine.IO open: connect to namespace "/"
            self._send(_OP_TEXT, b"40" + self._auth)
        elif frame[:2] == b"40" and not self.connected.done():
            self.connected.set_result(json.loads(frame[2:])["sid"])
        elif frame[:2] == b"44" and not self.connected.done():
            self.connected.set_exception(ConnectionError(f"connect refused: {frame!r}"))


async def connect(
    host: str, port: int, auth: dict[str, Any], counter: Counter, timeout: float = 10
) -> SocketIOClient:
    """Open a connection and return once the server accepted the namespace connect."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: SocketIOClient(host, port, auth, counter), host, port),
        timeout,
    )
    await asyncio.wait_for(asyncio.shield(client.connected), timeout)
    return client
