"""The one pub/sub connection of a process: subscriptions, confirmations, reconnects.

``want``/``unwant`` change plain sets; a writer task sends every change that piled up
as a few chunked (UN)SUBSCRIBEs (see ``_subscriptions``), so a burst of joins costs a
handful of round trips, and ``wait`` resolves once Redis confirmed a SUBSCRIBE sent
after the wait began.

If the connection fails, ``run`` logs it (one line, no traceback), waits a short
jittered backoff (``backoff``: 0.1-0.2 s at first, capped at 1 s while Redis stays
down; a NOAUTH or NOPERM is kept by ``refusals``), reconnects and re-subscribes
everything; it only ends when cancelled. ``pubsub_reader`` reads the replies. A PING
goes out after ``health_check_interval`` seconds of silence, and a connection that stays
silent for another interval after it is treated as dead, so a frozen Redis is detected
and logged within 2.5 intervals (time the event loop spent blocked does not count).
``on_change(subscribed)`` is called on every change between "every wanted channel is
confirmed" and "the link is down"; ``ready()`` lets the publisher wait for the
re-subscription after a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import anyio
from redis.asyncio.connection import AbstractConnection

from .._errors import AccessDeniedError
from .backoff import BACKOFF_CAP, GRACE, OutageLog, backoff_delay
from .commands import describe, drop_connection
from .pubsub_reader import MessageHandler, PubSubReader
from .refusals import Refusals
from .subscriptions import Subscriptions
from .watchdog import watch

__all__ = ["MessageHandler", "Subscriber"]


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
        self._reader = PubSubReader(self._channels, self._patterns, self._dispatch, self._accepted)
        self._refusals = Refusals(explain, logger)
        self._outages = OutageLog(logger, where)
        self.connected = False
        self.failing = False  # the last attempt to connect or stay connected failed
        self.stopping = False
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

    @property
    def last_contact(self) -> float | None:
        """Loop time of the last data read from the pub/sub connection (None: never)."""
        return self._reader.last_read or None

    @property
    def denied(self) -> AccessDeniedError | None:
        """Why Redis refused us, if it did since the last confirmed subscription."""
        return self._refusals.denied

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
                hold = self._reconnected_at + BACKOFF_CAP + GRACE - _now()
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
        return self._refusals.next()

    def forget_denial(self, fut: asyncio.Future[AccessDeniedError]) -> None:
        """Stop tracking a future from :meth:`next_denial`."""
        self._refusals.forget(fut)

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
        delay = backoff_delay(failures)
        denied = self._refusals.record(exc)
        if denied is not None:
            self._refusals.log(denied, failures)
        else:
            self._outages.failed(what, exc, delay, failures)
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
        self._reader.last_read = asyncio.get_running_loop().time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._write, conn)
            tg.start_soon(watch, conn, self._health_check_interval, lambda: self._reader.last_read)
            tg.start_soon(self._announce)
            await self._reader.read(conn)

    async def _write(self, conn: AbstractConnection) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            for command in self._channels.plan() + self._patterns.plan():
                await conn.send_packed_command(conn.pack_command(*command), check_health=False)

    def _accepted(self) -> None:
        """After a refusal: once every command sent is confirmed, the refusal is over."""
        if self.denied is not None and self._channels.settled and self._patterns.settled:
            self._refusals.denied = None
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
