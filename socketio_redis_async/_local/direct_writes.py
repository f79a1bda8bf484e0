"""Websocket frames written by the delivery loop itself when nothing waits before them.

python-engineio gives every connection a queue that a writer task empties into the
websocket. Per recipient of a broadcast that is a queue put, a task switch, a timer (the
writer's ``poll`` waits under ``asyncio.wait_for``) and a frame encode. When a connection
is an aiohttp websocket whose writer is idle (its queue empty and the writer waiting on
it), the delivery loop writes the frame itself: same bytes, same order, encoded once per
broadcast. Everything else takes the plain path: polling, ASGI servers, an upgrade in
progress, a writer with packets in hand, a connection past its ping timeout, engine.io's
packet logging on, and any python-engineio this was not verified on.

The hook relies on private details: python-engineio's websocket factory
(``eio._async['websocket']``, called with the socket's bound ``_websocket_handler``), its
aiohttp driver's ``_sock`` and the socket's ``upgraded``/``upgrading``/``queue`` fields,
and ``asyncio.Queue._getters``. ``install`` checks each one and the versions in
``VERIFIED``; where any is missing it leaves the server untouched.

Broadcasts closer together than ``BURST_GAP`` take the plain path too: engine.io's writer
then sends what piled up back to back, so a client wakes once per batch instead of once
per frame (measured: at max rate a single client received 40% fewer broadcasts per second
when each frame went out as it came), and the checks here cost nothing in a burst.

A write that cannot finish at once (a paused transport, a compressor lock) finishes in a
tracked task, and the connection takes the plain path until it has: its packets then
queue up behind it where the slow-consumer guard and ``volatile`` see them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Coroutine, Generator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

VERIFIED = ((4, 12), (4, 16))
"""python-engineio (major, minor) range [lowest, highest) the hook was verified on."""

_TEXT = 0x1  # the websocket text opcode (aiohttp's WSMsgType.TEXT)
BURST_GAP = 0.0005
"""Seconds since the previous broadcast below which this one is part of a burst."""


def verified_engineio(installed: str | None = None) -> bool:
    """Whether the installed python-engineio (or ``installed``) is in VERIFIED."""
    if installed is None:
        try:
            installed = version("python-engineio")
        except PackageNotFoundError:
            return False
    try:
        release = tuple(int(part) for part in installed.split(".")[:2])
    except ValueError:
        return False
    return VERIFIED[0] <= release < VERIFIED[1]


class _Rest:
    """Awaits the rest of a coroutine already run up to its first suspension."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro, self._first = coro, first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._first
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # a cancellation goes on into the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(coro: Coroutine[Any, Any, Any], first: Any) -> None:
    await _Rest(coro, first)


class DirectWrites:
    """The direct path of one python-socketio server (``enabled`` once installed)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._drivers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._busy: set[Any] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._eio: Any = None
        self.enabled = False
        self.written = 0
        self._last = -math.inf

    def install(self, server: Any) -> bool:
        """Watch the websockets ``server`` (python-socketio's) opens, if the hook's
        assumptions hold there; False (and nothing changed) otherwise."""
        eio: Any = getattr(server, "eio", None)
        factories = getattr(eio, "_async", None)
        if not verified_engineio() or not isinstance(factories, dict):
            return False
        try:
            from engineio.async_drivers import aiohttp as driver
            from engineio.async_socket import AsyncSocket
        except ImportError:
            return False
        factory = factories.get("websocket")
        if factory is not driver.WebSocket or not hasattr(asyncio.Queue(), "_getters"):
            return False
        drivers = self._drivers

        def watched(handler: Any, eio_server: Any) -> Any:
            ws = factory(handler, eio_server)
            sock = getattr(handler, "__self__", None)
            if isinstance(sock, AsyncSocket):
                # A weak reference: the driver holds the socket (its handler), and the entry
                # must go once the connection's handler lets go of the driver.
                drivers[sock] = weakref.ref(ws)
            return ws

        eio._async = {**factories, "websocket": watched}  # this server's copy only
        self._eio, self.enabled = eio, True
        return True

    def write(self, sockets: dict[str, Any], eio_sids: list[str], frame: bytes) -> list[str]:
        """Write the text ``frame`` now to each connection of ``eio_sids`` (found in
        ``sockets``) that can take it; return those left for the plain path."""
        eio, now = self._eio, time.monotonic()
        last, self._last = self._last, now
        if now - last < BURST_GAP or not self._drivers or eio.logger.isEnabledFor(logging.INFO):
            return eio_sids  # a burst (engine.io's writer batches it), no websocket, or logs
        timed_out = time.time() - eio.ping_timeout
        drivers, busy, rest = self._drivers, self._busy, []
        for eio_sid in eio_sids:
            sock: Any = sockets.get(eio_sid)
            ws_ref = None if sock is None else drivers.get(sock)
            if ws_ref is None or sock in busy or not sock.upgraded or sock.upgrading:
                rest.append(eio_sid)
                continue
            if sock.closed or sock.closing:
                rest.append(eio_sid)
                continue
            queue = sock.queue
            for waiter in queue._getters:
                if not waiter.done():
                    break  # the writer waits for packets: it holds none
            else:
                rest.append(eio_sid)
                continue
            ws = ws_ref()
            response = None if ws is None else ws._sock
            if queue.qsize() or response is None or 0 < (sock.last_ping or 0) < timed_out:
                rest.append(eio_sid)  # packets wait first, or the plain path closes it
                continue
            self._send(sock, response, frame)
        return rest

    def _send(self, sock: Any, response: Any, frame: bytes) -> None:
        coro = response.send_frame(frame, _TEXT)
        try:
            first = coro.send(None)
        except StopIteration:
            self.written += 1
            return
        except Exception as exc:  # the connection is going: as engine.io's writer, drop
            self._logger.debug("direct write to %s failed: %r", sock.sid, exc)
            return
        self.written += 1
        self._busy.add(sock)
        task = asyncio.ensure_future(_finish(coro, first))
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(sock, done))

    def _finished(self, sock: Any, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._busy.discard(sock)
        if not task.cancelled() and task.exception() is not None:
            self._logger.debug("direct write to %s failed: %r", sock.sid, task.exception())

    def close(self) -> None:
        """Cancel the writes still waiting for their transport (on close)."""
        for task in list(self._tasks):
            task.cancel()
