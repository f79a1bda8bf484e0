"""The one pub/sub connection of a process: subscriptions, confirmations, reconnects.

``want``/``unwant`` change plain sets; a writer task sends every change that piled up
as a few chunked (UN)SUBSCRIBEs (see ``_subscriptions``), so a burst of joins costs a
handful of round trips, and ``wait`` resolves once Redis confirmed a SUBSCRIBE sent
after the wait began.

If the connection fails, ``run`` logs it (one line, no traceback), waits a short
jittered backoff (0.1-0.2 s at first, capped at 1 s while Redis stays down), reconnects
and re-subscribes everything; it only ends when cancelled. A PING goes out after
``health_check_interval`` seconds of silence, and a connection that stays silent for
another interval after it is treated as dead, so a frozen Redis is detected and logged
within 2.5 intervals (time the event loop spent blocked by other code does not count).
``on_change(subscribed)`` is called on every change between "every wanted channel is
confirmed" and "the link is down"; ``ready()`` lets the publisher wait for the
re-subscription after a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from .._errors import AccessDeniedError
from .commands import describe, drop_connection
from .subscriptions import Subscriptions
from .watchdog import watch

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    hiredis = None  # type: ignore[assignment]

MessageHandler = Callable[[bytes, bytes, "bytes | None"], Awaitable[None]]
"""``handler(channel, payload, pattern)``: pattern is None for a plain SUBSCRIBE."""

_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 1.0
_GRACE = 0.2  # what a reconnect and a SUBSCRIBE take, added to the backoff cap
_LOG_EVERY = 30.0  # while Redis stays down, repeat the error at most this often (seconds)
_DENIAL_LOG_INTERVAL = 60.0


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
        on_change: Callable[[bool], None] | None = None,
        explain: Callable[[BaseException], AccessDeniedError | None] = lambda exc: None,
        sharded: Callable[[str], object] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        """``sharded``: SSUBSCRIBE instead of SUBSCRIBE, grouping channels by this key (the
        hash slot on a Redis Cluster); ``on_failure(exc)`` on every failed connection."""
        self._connect = connect
        self._on_failure = on_failure
        self._explain = explain
        self._handler = handler
        self._logger = logger
        self._where = where
        self._health_check_interval = health_check_interval
        self._dirty = asyncio.Event()
        if sharded is None:
            self._channels = Subscriptions("SUBSCRIBE", "UNSUBSCRIBE", self._dirty)
        else:
            self._channels = Subscriptions("SSUBSCRIBE", "SUNSUBSCRIBE", self._dirty, sharded)
        self._patterns = Subscriptions("PSUBSCRIBE", "PUNSUBSCRIBE", self._dirty)
        self.connected = False
        self.failing = False  # the last attempt to connect or stay connected failed
        self.stopping = False
        self._last_read = 0.0
        self.reconnects = 0
        self.handler_errors = 0
        self.last_error: tuple[float, str | None] = (0.0, None)  # (loop time, text)
        self.running = False
        self.subscribed = False  # connected, and every wanted subscription confirmed
        self._announced: bool | None = None
        self._on_change = on_change
        self._resubscribed = asyncio.Event()
        self._lost_at: float | None = None
        self._reconnected_at: float | None = None
        self._last_log = -1e9
        self.denied: AccessDeniedError | None = None  # Redis refused us since the last confirm
        self._denial_waiters: set[asyncio.Future[AccessDeniedError]] = set()
        self._denial_logged = ("", -_DENIAL_LOG_INTERVAL)

    @property
    def last_contact(self) -> float | None:
        """Loop time of the last data read from the pub/sub connection (None: never)."""
        return self._last_read or None

    def confirmed(self) -> tuple[int, int]:
        """(channels and patterns Redis confirmed, channels and patterns wanted)."""
        wanted = len(self._channels.wanted) + len(self._patterns.wanted)
        if not self.connected:
            return 0, wanted
        return self._channels.confirmed() + self._patterns.confirmed(), wanted

    async def ready(self, timeout: float) -> bool:
        """Before publishing on a new connection: re-subscribe first, cluster-wide.

        Waits (at most ``timeout`` s) until this subscriber is re-subscribed and, if it
        reconnected recently, until one backoff cap has passed since: every other server
        retries at least that often, so a message published after that finds them
        subscribed again instead of being silently lost. True if subscribed (or the
        listener is not running, so there is nothing to wait for).
        """
        with anyio.move_on_after(max(timeout, 0)):
            if self.running and not self.subscribed:
                await self._resubscribed.wait()
            if self._reconnected_at is not None:
                hold = self._reconnected_at + _BACKOFF_CAP + _GRACE - _now()
                if hold > 0:
                    await anyio.sleep(hold)
        return self.subscribed or not self.running

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
        self, channels: Iterable[str], timeout: float | None, patterns: Iterable[str] = ()
    ) -> bool:
        """Wait until Redis confirms ``channels`` and ``patterns``; False on timeout."""
        futures = [self._channels.waiter(name) for name in channels]
        futures += [self._patterns.waiter(name) for name in patterns]
        pending = [fut for fut in futures if fut is not None]
        _, late = await asyncio.wait(pending, timeout=timeout) if pending else ((), ())
        for fut in late:
            fut.cancel()
        return not late

    def next_denial(self) -> asyncio.Future[AccessDeniedError]:
        """A future resolved when Redis next refuses us (discard with ``forget_denial``)."""
        fut: asyncio.Future[AccessDeniedError] = asyncio.get_running_loop().create_future()
        self._denial_waiters.add(fut)
        return fut

    def forget_denial(self, fut: asyncio.Future[AccessDeniedError]) -> None:
        """Stop tracking a future from :meth:`next_denial`."""
        self._denial_waiters.discard(fut)
        fut.cancel()

    def _denial(self, exc: BaseException) -> AccessDeniedError | None:
        """If ``exc`` is an authentication or ACL refusal, record it and tell who waits."""
        denied = self._explain(exc)
        if denied is not None:
            self.denied = denied
            for fut in self._denial_waiters:
                if not fut.done():
                    fut.set_result(denied)
        return denied

    async def run(self) -> None:
        """Stay connected and subscribed until cancelled."""
        self.running = True
        try:
            await self._run()
        finally:
            self.running = False

    async def _run(self) -> None:
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
                self._reconnected_at = _now()
                if self.denied is None:  # while refused, _backoff logs once a minute
                    self._logger.warning(
                        "reconnected to Redis at %s; re-subscribing %d channels and %d patterns",
                        self._where,
                        len(self._channels.wanted),
                        len(self._patterns.wanted),
                    )
            if self.denied is None:
                failures = 0  # a connection whose commands are refused keeps backing off
            try:
                await self._serve(conn)
            except Exception as exc:
                # Cancelling a write can surface as another error from redis-py; never
                # reconnect once the owner asked us to stop.
                if self.stopping:
                    raise
                failures += 1
                self._lost_at = asyncio.get_running_loop().time()
                self.connected = False
                await self._backoff(failures, "lost the pub/sub connection to", exc)
            finally:
                self.connected = False
                await drop_connection(conn)

    async def _backoff(self, failures: int, what: str, exc: BaseException) -> None:
        self.failing = True
        if self._on_failure is not None:
            self._on_failure(exc)
        self.last_error = (
            asyncio.get_running_loop().time(),
            f"{what} Redis at {self._where}: {describe(exc)}",
        )
        self._set_subscribed(False)
        delay = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(failures, 16))
        delay *= random.uniform(0.5, 1.0)
        denied = self._denial(exc)
        if denied is not None:
            # One line, no traceback; the same refusal at most once a minute.
            now = asyncio.get_running_loop().time()
            last_text, last_time = self._denial_logged
            if str(denied) != last_text or now - last_time >= _DENIAL_LOG_INTERVAL:
                self._denial_logged = (str(denied), now)
                self._logger.error(
                    "%s; cross-server messages are NOT delivered until this is fixed; "
                    "retrying (attempt %d; this error is logged at most once a minute)",
                    denied,
                    failures,
                )
            await anyio.sleep(delay)
            return
        now = asyncio.get_running_loop().time()
        if failures <= 3 or now - self._last_log >= _LOG_EVERY:
            self._last_log = now
            self._logger.error(
                "%s Redis at %s (%s); cross-server messages are NOT delivered until it is "
                "back; retrying in %.2f s (attempt %d)",
                what,
                self._where,
                describe(exc),
                delay,
                failures,
            )
        await anyio.sleep(delay)

    def _set_subscribed(self, subscribed: bool) -> None:
        self.subscribed = subscribed
        if subscribed:
            self._resubscribed.set()
        else:
            self._resubscribed.clear()
        if self._announced is not subscribed:
            self._announced = subscribed
            if self._on_change is not None:
                self._on_change(subscribed)

    async def _announce(self) -> None:
        """Once a new connection has every wanted subscription confirmed, say so."""
        await self.wait(self.channels, None, self.patterns)
        if self._lost_at is not None:
            self._logger.warning(
                "re-subscribed to %d channels on Redis at %s, %.1f s after the link was "
                "lost; messages other servers published meanwhile were not received",
                len(self._channels.wanted) + len(self._patterns.wanted),
                self._where,
                asyncio.get_running_loop().time() - self._lost_at,
            )
            self._lost_at = None
        self.failing = False
        self._set_subscribed(True)

    async def _serve(self, conn: AbstractConnection) -> None:
        self._channels.reset()
        self._patterns.reset()
        self._dirty.set()
        self.connected = True
        self.failing = False
        self._last_read = asyncio.get_running_loop().time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._write, conn)
            tg.start_soon(watch, conn, self._health_check_interval, lambda: self._last_read)
            tg.start_soon(self._announce)
            await self._read(conn)

    async def _write(self, conn: AbstractConnection) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            for command in self._channels.plan() + self._patterns.plan():
                await conn.send_packed_command(conn.pack_command(*command), check_health=False)

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
        if isinstance(response, Exception):
            # An error reply (NOPERM, NOAUTH...): the command it answers had no effect, so
            # start over on a new connection, where everything is subscribed again.
            raise response if isinstance(response, ResponseError) else ResponseError(str(response))
        if not isinstance(response, list) or len(response) < 3:
            return
        kind = response[0]
        if kind == b"message" or kind == b"smessage":
            await self._dispatch(response[1], response[2], None)
        elif kind == b"pmessage" and len(response) == 4:
            await self._dispatch(response[2], response[3], response[1])
        elif kind == b"subscribe" or kind == b"ssubscribe":
            self._channels.confirm(response[1].decode())
            if self.denied is not None:
                self._accepted()
        elif kind == b"psubscribe":
            self._patterns.confirm(response[1].decode())
            if self.denied is not None:
                self._accepted()
        elif kind == b"sunsubscribe" and not self._channels.left(response[1].decode()):
            # Redis ended a sharded subscription: its slot moved to another node.
            raise ConnectionError(f"Redis ended the subscription of {response[1]!r}")

    def _accepted(self) -> None:
        """After a refusal: once every command sent is confirmed, the refusal is over."""
        if self._channels.settled and self._patterns.settled:
            self.denied = None
            self._lost_at = None  # this line reports the recovery; _announce need not
            self._logger.warning(
                "Redis at %s accepts the subscriptions again; cross-server messages are "
                "delivered (those published while it refused them were not received)",
                self._where,
            )

    async def _dispatch(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        try:
            await self._handler(channel, payload, pattern)
        except Exception:
            self.handler_errors += 1
            self._logger.exception("error while handling a message from channel %r", channel)


def _now() -> float:
    return asyncio.get_running_loop().time()
