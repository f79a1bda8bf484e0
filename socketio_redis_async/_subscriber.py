"""The one pub/sub connection of a process: subscriptions, confirmations, reconnects.

The wanted channels and patterns are plain sets changed synchronously (``want``,
``unwant``); a writer task reconciles them with Redis, sending every change that piled up
since its last pass as one SUBSCRIBE and one UNSUBSCRIBE (chunked), so a burst of
thousands of joins costs a handful of round trips. ``wait`` resolves once Redis has
confirmed the SUBSCRIBE that was sent *after* the wait began, so a message published
after it returns is delivered.

If the connection fails, ``run`` logs it, waits a capped, jittered backoff, reconnects
and re-subscribes everything; it only ends when cancelled. A PING goes out after
``health_check_interval`` seconds of silence, and a connection that stays silent for
another interval is treated as dead.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from redis.asyncio.connection import AbstractConnection

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    hiredis = None  # type: ignore[assignment]

MessageHandler = Callable[[bytes, bytes, "bytes | None"], Awaitable[None]]
"""``handler(channel, payload, pattern)``: pattern is None for a plain SUBSCRIBE."""

_CHUNK = 1000
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 10.0


class _Subscriptions:
    """One kind of subscription (channels or patterns): wanted, sent, and who waits."""

    def __init__(self, subscribe: str, unsubscribe: str, dirty: asyncio.Event) -> None:
        self.subscribe = subscribe
        self.unsubscribe = unsubscribe
        self.wanted: set[str] = set()
        self._dirty = dirty
        self._sent: set[str] = set()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._inflight: dict[str, deque[list[asyncio.Future[None]]]] = {}

    def want(self, name: str) -> None:
        if name not in self.wanted:
            self.wanted.add(name)
            self._dirty.set()

    def unwant(self, name: str) -> None:
        if name in self.wanted:
            self.wanted.discard(name)
            for fut in self._waiting.pop(name, ()):
                _resolve(fut)
            self._dirty.set()

    def waiter(self, name: str) -> asyncio.Future[None] | None:
        """A future resolved by the confirmation of a SUBSCRIBE sent from now on."""
        if name not in self.wanted:
            return None
        inflight = self._inflight.get(name)
        if name in self._sent and not inflight:
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if inflight:
            inflight[-1].append(fut)
        else:
            self._waiting.setdefault(name, []).append(fut)
        return fut

    def reset(self) -> None:
        """A new connection: nothing is subscribed; whoever waited keeps waiting."""
        self._sent.clear()
        for name, batches in self._inflight.items():
            for batch in batches:
                self._waiting.setdefault(name, []).extend(batch)
        self._inflight.clear()

    def plan(self) -> list[list[str]]:
        """The commands that bring Redis in line with ``wanted``, as argument lists."""
        commands = []
        for chunk in _chunks(list(self.wanted - self._sent)):
            for name in chunk:
                self._sent.add(name)
                batch = self._waiting.pop(name, [])
                self._inflight.setdefault(name, deque()).append(batch)
            commands.append([self.subscribe, *chunk])
        for chunk in _chunks(list(self._sent - self.wanted)):
            self._sent.difference_update(chunk)
            commands.append([self.unsubscribe, *chunk])
        return commands

    def confirm(self, name: str) -> None:
        batches = self._inflight.get(name)
        if not batches:
            return
        for fut in batches.popleft():
            _resolve(fut)
        if not batches:
            del self._inflight[name]


class Subscriber:
    """Keeps one Redis pub/sub connection subscribed to the wanted channels."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AbstractConnection]],
        handler: MessageHandler,
        *,
        logger: logging.Logger,
        where: str,
        health_check_interval: float,
    ) -> None:
        self._connect = connect
        self._handler = handler
        self._logger = logger
        self._where = where
        self._health_check_interval = health_check_interval
        self._dirty = asyncio.Event()
        self._channels = _Subscriptions("SUBSCRIBE", "UNSUBSCRIBE", self._dirty)
        self._patterns = _Subscriptions("PSUBSCRIBE", "PUNSUBSCRIBE", self._dirty)
        self.connected = False
        self.failing = False  # the last attempt to connect or stay connected failed
        self.stopping = False
        self._last_read = 0.0
        self.reconnects = 0
        self.handler_errors = 0

    @property
    def channels(self) -> frozenset[str]:
        """The channels this subscriber wants (subscribed, or about to be)."""
        return frozenset(self._channels.wanted)

    @property
    def patterns(self) -> frozenset[str]:
        """The patterns this subscriber wants."""
        return frozenset(self._patterns.wanted)

    def want(self, channel: str) -> None:
        """Ask for ``channel`` to be subscribed."""
        self._channels.want(channel)

    def unwant(self, channel: str) -> None:
        """Ask for ``channel`` to be unsubscribed; anyone waiting for it stops waiting."""
        self._channels.unwant(channel)

    def want_pattern(self, pattern: str) -> None:
        """Ask for ``pattern`` to be PSUBSCRIBEd."""
        self._patterns.want(pattern)

    def unwant_pattern(self, pattern: str) -> None:
        """Ask for ``pattern`` to be PUNSUBSCRIBEd."""
        self._patterns.unwant(pattern)

    async def wait(
        self, channels: Iterable[str], timeout: float, patterns: Iterable[str] = ()
    ) -> bool:
        """Wait until Redis confirms ``channels`` and ``patterns``; False on timeout."""
        futures = [self._channels.waiter(name) for name in channels]
        futures += [self._patterns.waiter(name) for name in patterns]
        pending = [fut for fut in futures if fut is not None]
        if not pending:
            return True
        _, late = await asyncio.wait(pending, timeout=timeout)
        for fut in late:
            fut.cancel()
        return not late

    async def run(self) -> None:
        """Stay connected and subscribed until cancelled."""
        failures = 0
        while True:
            try:
                conn = await self._connect()
            except Exception as exc:
                if self.stopping:
                    raise
                failures += 1
                await self._backoff(failures, "cannot connect to", exc)
                continue
            if failures:
                self.reconnects += 1
                self._logger.warning(
                    "reconnected to Redis at %s; re-subscribing %d channels and %d patterns",
                    self._where,
                    len(self._channels.wanted),
                    len(self._patterns.wanted),
                )
            failures = 0
            try:
                await self._serve(conn)
            except Exception as exc:
                # Cancelling a write can surface as another error from redis-py; never
                # reconnect once the owner asked us to stop.
                if self.stopping:
                    raise
                failures += 1
                await self._backoff(failures, "lost the pub/sub connection to", exc)
            finally:
                self.connected = False
                with anyio.CancelScope(shield=True):
                    await conn.disconnect(nowait=True)

    async def _backoff(self, failures: int, what: str, exc: BaseException) -> None:
        self.failing = True
        delay = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(failures, 16))
        delay *= random.uniform(0.5, 1.0)
        self._logger.error(
            "%s Redis at %s (%s); cross-server messages are NOT delivered until it is back; "
            "retrying in %.2f s (attempt %d)",
            what,
            self._where,
            _describe(exc),
            delay,
            failures,
        )
        await anyio.sleep(delay)

    async def _serve(self, conn: AbstractConnection) -> None:
        self._channels.reset()
        self._patterns.reset()
        self._dirty.set()
        self.connected = True
        self.failing = False
        self._last_read = asyncio.get_running_loop().time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._write, conn)
            tg.start_soon(self._watch, conn)
            await self._read(conn)

    async def _write(self, conn: AbstractConnection) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            for command in self._channels.plan() + self._patterns.plan():
                await conn.send_packed_command(conn.pack_command(*command), check_health=False)

    async def _watch(self, conn: AbstractConnection) -> None:
        """PING after a silent interval; a second silent interval means the link is dead."""
        interval = self._health_check_interval
        loop = asyncio.get_running_loop()
        while True:
            await anyio.sleep(interval / 2)
            idle = loop.time() - self._last_read
            if idle >= 2 * interval:
                raise ConnectionError(f"no data and no answer to PING for {idle:.1f} s")
            if idle >= interval:
                await conn.send_packed_command(conn.pack_command("PING"), check_health=False)

    async def _read(self, conn: AbstractConnection) -> None:
        # No per-read timeout (the watchdog covers silence). When redis-py exposes the
        # connection's stream, parse it with our own hiredis reader: every reply already
        # in the buffer is handled in one tight loop, without a coroutine chain per reply.
        stream = getattr(conn, "_reader", None)
        if hiredis is None or not isinstance(stream, asyncio.StreamReader):
            await self._read_replies(conn)
            return
        loop = asyncio.get_running_loop()
        parser = hiredis.Reader()
        while True:
            data = await stream.read(65536)
            if not data:
                raise ConnectionError("Redis closed the pub/sub connection")
            self._last_read = loop.time()
            parser.feed(data)
            while (response := parser.gets()) is not False:
                await self._handle(response)

    async def _read_replies(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            response = await conn.read_response()
            self._last_read = loop.time()
            await self._handle(response)

    async def _handle(self, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return
        kind = response[0]
        if kind == b"message":
            await self._dispatch(response[1], response[2], None)
        elif kind == b"pmessage" and len(response) == 4:
            await self._dispatch(response[2], response[3], response[1])
        elif kind == b"subscribe":
            self._channels.confirm(response[1].decode())
        elif kind == b"psubscribe":
            self._patterns.confirm(response[1].decode())

    async def _dispatch(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        try:
            await self._handler(channel, payload, pattern)
        except Exception:
            self.handler_errors += 1
            self._logger.exception("error while handling a message from channel %r", channel)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _describe(exc: BaseException) -> str:
    # Unwrap task-group exception groups that hold a single error.
    while len(getattr(exc, "exceptions", ())) == 1:
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return f"{type(exc).__name__}: {exc}"
