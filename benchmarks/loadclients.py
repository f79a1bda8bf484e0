"""The load clients: many cheap Socket.IO connections in one process, counted per group.

python-socketio's client costs more CPU per received event than the servers under test
spend sending it, so the load clients would be the bottleneck. ``SocketIOClient`` is an
``asyncio.Protocol`` that parses server frames (unmasked, unfragmented text frames, which
is what python-engineio and Node's ``ws`` send) straight out of the receive buffer, answers
Engine.IO pings, and only JSON-decodes an event when latency is being measured.
Engine.IO 4 / Socket.IO 5 text framing, namespace ``/`` only.

``Counters`` is the counting protocol (``arm``/``wait``/``stats`` per group) that the
load clients and the raw redis-py subscriber (``servers.RawServer``) both answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from typing import Any

from .results import percentile

_EVENT_PREFIX = b"42"
_OP_TEXT, _OP_CLOSE, _OP_PING = 0x1, 0x8, 0x9


class Counter:
    """Events received since the last ``arm``."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.latency = False
        self.t_last = 0.0
        self.latencies: list[float] = []
        self._done: asyncio.Event = asyncio.Event()

    def arm(self, total: int, latency: bool = False) -> None:
        """Start counting from zero towards ``total`` events."""
        self.count = 0
        self.target = total
        self.latency = latency
        self.t_last = 0.0
        self.latencies = []
        self._done = asyncio.Event()

    def hit(self) -> None:
        """One event arrived."""
        self.count += 1
        if self.count == self.target:
            self.t_last = time.time()
            self._done.set()

    def hit_at(self, sent_at: float) -> None:
        """One event sent at ``sent_at`` (``time.time()`` of the sender) arrived."""
        self.latencies.append(time.time() - sent_at)
        self.hit()

    async def wait(self, timeout: float) -> dict[str, Any]:
        """Wait for the target; report what arrived and when the last one did."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout)
        complete = self._done.is_set()
        return {
            "received": self.count,
            "expected": self.target,
            "complete": complete,
            "t_last": self.t_last if complete else time.time(),
        }

    def stats(self) -> dict[str, Any]:
        """Latency percentiles in seconds (empty without latency samples)."""
        values = sorted(self.latencies)
        if not values:
            return {"samples": 0}
        return {
            "samples": len(values),
            "p50": percentile(values, 50),
            "p90": percentile(values, 90),
            "p99": percentile(values, 99),
            "max": values[-1],
        }


class Counters:
    """One ``Counter`` per group, and the commands that drive them.

    ``arm`` before a run, ``wait`` for the last event, then ``stats`` for the latency
    percentiles (asked for after the CPU snapshot, so that computing them is not billed to
    the run).
    """

    def __init__(self) -> None:
        self.counters: dict[str, Counter] = {}

    def counter(self, group: str) -> Counter:
        return self.counters.setdefault(group, Counter())

    async def arm(self, group: str, total: int, latency: bool) -> None:
        self.counter(group).arm(total, latency)

    async def wait(self, group: str, timeout: float) -> dict[str, Any]:
        return await self.counter(group).wait(timeout)

    async def stats(self, group: str) -> dict[str, Any]:
        return self.counter(group).stats()


class LoadClients(Counters):
    """The ``clients`` worker role: ``connect`` opens connections that count per group."""

    def __init__(self) -> None:
        super().__init__()
        self.clients: list[SocketIOClient] = []

    async def start(self) -> dict[str, Any]:
        return {}

    async def stop(self) -> None:
        for client in self.clients:
            client.close()

    def commands(self) -> dict[str, Any]:
        return {"connect": self.connect, "arm": self.arm, "wait": self.wait, "stats": self.stats}

    async def connect(self, group: str, port: int, n: int, rooms: list[str]) -> int:
        """Open ``n`` connections to ``port`` that join ``rooms``; count them as ``group``."""
        counter = self.counter(group)
        for _ in range(n):
            self.clients.append(await connect("127.0.0.1", port, {"rooms": rooms}, counter))
        return len(self.clients)


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
