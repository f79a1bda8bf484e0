"""``StreamsTransport``: a pub/sub transport plus stream readers (Node's streams adapter).

Composed, not derived: the pub/sub part (``RedisTransport``, or ``ShardedTransport``
for ``use_sharded_pub_sub``) keeps the channels, publishes, appends (XADD, on its
pipelined publisher) and counts servers; ``StreamReader`` tasks read the streams and hand
each entry to the engine's ``on_entry``. One reader reads every stream on a standalone
Redis; over sharded pub/sub each stream has a reader on the shard that owns it.

The link is up (``on_change(True)``, ``health().healthy``) while the pub/sub part is
subscribed and every reader is connected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio.connection import AbstractConnection

from .._errors import AdapterClosedError, RedisCommandError
from .._health import AdapterHealth
from .base import Transport, TransportHooks
from .histogram import LatencyHistogram
from .stream_reader import StreamReader


class Opener(Transport, Protocol):
    """A pub/sub transport that also opens dedicated connections (for the readers)."""

    async def open_connection(self, role: str, key: str) -> AbstractConnection: ...


STREAM_STATS = ("stream_entries_read", "stream_entries_lost", "stream_gaps", "stream_reconnects")
"""The keys ``StreamsTransport.stats()`` adds to ``base.TRANSPORT_STATS``."""


class StreamsTransport:
    """Pub/sub for requests and answers, streams for broadcasts and socket operations."""

    def __init__(
        self,
        hooks: TransportHooks,
        pubsub: Callable[[TransportHooks], Opener],
        *,
        streams: list[str],
        one_reader: bool,
        read_count: int,
        block: float,
        timeout: float,
        logger: logging.Logger,
    ) -> None:
        if hooks.on_entry is None:
            raise TypeError("a streams transport needs an on_entry hook")
        self._hooks = hooks
        self._up = False
        self._inner_up = False
        inner = pubsub(dataclasses.replace(hooks, on_change=self._inner_changed, on_entry=None))
        self._inner = inner
        self.where = inner.where
        groups = [streams] if one_reader else [[stream] for stream in streams]
        self.readers = [
            StreamReader(
                group,
                self._opener(group[0]),
                hooks.on_entry,
                read_count=read_count,
                block=block,
                timeout=timeout,
                where=inner.where,
                logger=logger,
                on_change=self._changed,
            )
            for group in groups
        ]
        self._timeout = timeout
        self._logger = logger
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.want, self.unwant = inner.want, inner.unwant
        self.want_pattern, self.unwant_pattern = inner.want_pattern, inner.unwant_pattern
        self.check_size = inner.check_size
        self.publish, self.append = inner.publish, inner.append
        self.count_subscribers, self.channels = inner.count_subscribers, inner.channels
        self.confirm = inner.confirm

    def _opener(self, key: str) -> Callable[[], Awaitable[AbstractConnection]]:
        return lambda: self._inner.open_connection("streams", key)

    @property
    def inner(self) -> Transport:
        """The pub/sub part."""
        return self._inner

    @property
    def listening(self) -> bool:
        return self._inner.listening

    @property
    def latency(self) -> LatencyHistogram:
        return self._inner.latency

    def listen(self) -> None:
        """Start the pub/sub listener and the readers (idempotent)."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        self._inner.listen()
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(reader.run(), name="socketio-redis-async stream reader")
                for reader in self.readers
            ]

    async def start(self) -> None:
        """Listen; return once subscribed and every reader knows where it starts."""
        self.listen()
        await self._inner.start()
        waits = [asyncio.ensure_future(reader.ready.wait()) for reader in self.readers]
        _, late = await asyncio.wait(waits, timeout=self._timeout)
        for wait in late:
            wait.cancel()
        if late:
            errors = {r.last_error for r in self.readers if not r.ready.is_set()}
            raise RedisCommandError(
                f"could not start reading the streams at {self.where} within "
                f"{self._timeout:g} s ({'; '.join(e for e in errors if e) or 'no answer'}); "
                "the adapter keeps retrying"
            )

    def _inner_changed(self, up: bool) -> None:
        self._inner_up = up
        self._changed()

    def _changed(self) -> None:
        up = self._inner_up and all(reader.connected for reader in self.readers)
        if up != self._up:
            self._up = up
            self._hooks.on_change(up)

    def health(self) -> AdapterHealth:
        """The pub/sub link's health, unhealthy too while a reader is disconnected."""
        health = self._inner.health()
        down = [reader for reader in self.readers if not reader.connected]
        if not down:
            return health
        return dataclasses.replace(
            health, healthy=False, last_error=down[0].last_error or health.last_error
        )

    def stats(self) -> dict[str, int]:
        """``base.TRANSPORT_STATS`` and ``STREAM_STATS``."""
        readers = self.readers
        return {
            **self._inner.stats(),
            "stream_entries_read": sum(r.entries_read for r in readers),
            "stream_entries_lost": sum(r.entries_lost for r in readers),
            "stream_gaps": sum(r.gaps for r in readers),
            "stream_reconnects": sum(r.reconnects for r in readers),
        }

    async def stop_listening(self) -> None:
        """Cancel the readers and the pub/sub listener, and wait for them (bounded)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=10)
            if stuck:
                self._logger.error("the stream readers did not stop within 10 s")
        await self._inner.stop_listening()

    async def aclose(self) -> None:
        """Stop reading, then close the pub/sub part."""
        await self.stop_listening()
        await self._inner.aclose()
