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
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from redis.asyncio.connection import AbstractConnection

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

MessageHandler = Callable[[bytes, bytes, "bytes | None"], Awaitable[None]]
"""``handler(channel, payload, pattern)``: pattern is None for a plain SUBSCRIBE."""

_CHUNK = 1000
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 10.0


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
        self._channels: set[str] = set()
        self._patterns: set[str] = set()
        self._sent: set[str] = set()
        self._psent: set[str] = set()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._inflight: dict[str, deque[list[asyncio.Future[None]]]] = {}
        self._dirty = asyncio.Event()
        self.connected = False
        self.reconnects = 0
        self.handler_errors = 0

    @property
    def channels(self) -> frozenset[str]:
        """The channels this subscriber wants (subscribed, or about to be)."""
        return frozenset(self._channels)

    def want(self, channel: str) -> None:
        """Ask for ``channel`` to be subscribed."""
        if channel not in self._channels:
            self._channels.add(channel)
            self._dirty.set()

    def unwant(self, channel: str) -> None:
        """Ask for ``channel`` to be unsubscribed; anyone waiting for it stops waiting."""
        if channel in self._channels:
            self._channels.discard(channel)
            for fut in self._waiting.pop(channel, ()):
                _resolve(fut)
            self._dirty.set()

    def want_pattern(self, pattern: str) -> None:
        """Ask for ``pattern`` to be PSUBSCRIBEd (confirmations are not awaited)."""
        if pattern not in self._patterns:
            self._patterns.add(pattern)
            self._dirty.set()

    async def wait(self, channels: Iterable[str], timeout: float) -> bool:
        """Wait until Redis confirms ``channels``; False if ``timeout`` ran out first."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for channel in channels:
            if channel not in self._channels:
                continue
            inflight = self._inflight.get(channel)
            if channel in self._sent and not inflight:
                continue
            fut: asyncio.Future[None] = loop.create_future()
            if inflight:
                inflight[-1].append(fut)
            else:
                self._waiting.setdefault(channel, []).append(fut)
            futures.append(fut)
        if not futures:
            return True
        _, pending = await asyncio.wait(futures, timeout=timeout)
        for fut in pending:
            fut.cancel()
        return not pending

    async def run(self) -> None:
        """Stay connected and subscribed until cancelled."""
        failures = 0
        while True:
            try:
                conn = await self._connect()
            except Exception as exc:
                failures += 1
                await self._backoff(failures, "cannot connect to", exc)
                continue
            if failures:
                self.reconnects += 1
                self._logger.warning(
                    "reconnected to Redis at %s; re-subscribing %d channels and %d patterns",
                    self._where,
                    len(self._channels),
                    len(self._patterns),
                )
            failures = 0
            try:
                await self._serve(conn)
            except Exception as exc:
                failures += 1
                await self._backoff(failures, "lost the pub/sub connection to", exc)
            finally:
                self.connected = False
                with anyio.CancelScope(shield=True):
                    await conn.disconnect(nowait=True)

    async def _backoff(self, failures: int, what: str, exc: BaseException) -> None:
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
        self._sent.clear()
        self._psent.clear()
        for channel, batches in self._inflight.items():
            for batch in batches:
                self._waiting.setdefault(channel, []).extend(batch)
        self._inflight.clear()
        self._dirty.set()
        self.connected = True
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._write, conn)
            await self._read(conn)

    async def _write(self, conn: AbstractConnection) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            subscribe = list(self._channels - self._sent)
            unsubscribe = list(self._sent - self._channels)
            psubscribe = list(self._patterns - self._psent)
            for chunk in _chunks(subscribe):
                for channel in chunk:
                    self._sent.add(channel)
                    batch = self._waiting.pop(channel, [])
                    self._inflight.setdefault(channel, deque()).append(batch)
                await conn.send_packed_command(
                    conn.pack_command("SUBSCRIBE", *chunk), check_health=False
                )
            for chunk in _chunks(unsubscribe):
                self._sent.difference_update(chunk)
                await conn.send_packed_command(
                    conn.pack_command("UNSUBSCRIBE", *chunk), check_health=False
                )
            for chunk in _chunks(psubscribe):
                self._psent.update(chunk)
                await conn.send_packed_command(
                    conn.pack_command("PSUBSCRIBE", *chunk), check_health=False
                )

    async def _read(self, conn: AbstractConnection) -> None:
        interval = self._health_check_interval
        pinged = False
        while True:
            response: Any = await conn.read_response(timeout=interval)
            if response is None:
                if pinged:
                    raise ConnectionError(f"no answer to PING within {interval:g} s")
                await conn.send_packed_command(conn.pack_command("PING"), check_health=False)
                pinged = True
                continue
            pinged = False
            if not isinstance(response, list) or len(response) < 3:
                continue
            kind = response[0]
            if kind == b"message":
                await self._dispatch(response[1], response[2], None)
            elif kind == b"pmessage" and len(response) == 4:
                await self._dispatch(response[2], response[3], response[1])
            elif kind == b"subscribe":
                self._confirm(response[1].decode())

    async def _dispatch(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        try:
            await self._handler(channel, payload, pattern)
        except Exception:
            self.handler_errors += 1
            self._logger.exception("error while handling a message from channel %r", channel)

    def _confirm(self, channel: str) -> None:
        batches = self._inflight.get(channel)
        if not batches:
            return
        for fut in batches.popleft():
            _resolve(fut)
        if not batches:
            del self._inflight[channel]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
