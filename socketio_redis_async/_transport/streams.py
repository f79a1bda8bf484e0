"""``StreamsTransport``: a pub/sub transport plus stream readers (Node's streams adapter).

Composed, not derived, of three parts:

* the pub/sub part (``RedisTransport``, or ``ShardedTransport`` for
  ``use_sharded_pub_sub``) keeps the channels, publishes and counts servers;
* the router, a ``ShardedTransport`` that subscribes nothing (the pub/sub part itself
  when it is sharded), appends each entry (XADD) on the pipelined publisher of the
  shard that owns its stream, and opens the readers' connections there;
* ``StreamReader`` tasks read the streams and hand each entry to the engine's
  ``on_entry``: one reader for every stream on a standalone Redis, one per stream on a
  Redis Cluster (streams on different shards cannot share an ``XREAD``).

The link is up (``on_change(True)``, ``health().healthy``) while the pub/sub part is
subscribed and every reader is connected. With a router of its own, a publish awaited on
one part first waits for what was queued (``queued_emits``) on the other, so that what a
task queues and then awaits reaches Redis in that order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from redis.asyncio.connection import AbstractConnection

from .._errors import AdapterClosedError, RedisCommandError
from .._health import AdapterHealth
from .base import Transport, TransportHooks
from .histogram import LatencyHistogram
from .stream_reader import StreamReader


class Router(Transport, Protocol):
    """What appends entries and opens reader connections on the right shard."""

    async def is_cluster(self) -> bool: ...

    async def open_connection(self, role: str, key: str) -> AbstractConnection: ...

    async def command(self, key: str, *args: bytes) -> Any: ...


MakeRouter = Callable[[TransportHooks], Router]


class StreamsTransport:
    """Pub/sub for requests and answers, streams for broadcasts and socket operations."""

    def __init__(
        self,
        hooks: TransportHooks,
        pubsub: Callable[[TransportHooks], Transport],
        router: MakeRouter | None,
        *,
        streams: list[str],
        read_count: int,
        block: float,
        linger: float,
        timeout: float,
        logger: logging.Logger,
    ) -> None:
        """``router`` None: the pub/sub part is the router (it must be a ``Router``)."""
        if hooks.on_entry is None:
            raise TypeError("a streams transport needs an on_entry hook")
        self._hooks = hooks
        self._on_entry = hooks.on_entry
        self._up = False
        self._inner_up = False
        quiet = dataclasses.replace(hooks, on_entry=None)
        inner = pubsub(dataclasses.replace(quiet, on_change=self._inner_changed))
        self._inner = inner
        self._router: Router = (
            router(dataclasses.replace(quiet, on_change=lambda up: None))
            if router is not None
            else inner  # type: ignore[assignment]
        )
        self._own_router = router is not None
        self.where = inner.where
        self._streams = streams
        self._reading = {
            "read_count": read_count,
            "block": block,
            "timeout": timeout,
            "linger": linger,
        }
        self.readers: list[StreamReader] = []
        self._ready = asyncio.Event()  # the readers exist
        self._timeout = timeout
        self._logger = logger
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.want, self.unwant = inner.want, inner.unwant
        self.want_pattern, self.unwant_pattern = inner.want_pattern, inner.unwant_pattern
        self.check_size, self.confirm = inner.check_size, inner.confirm
        self.count_subscribers, self.channels = inner.count_subscribers, inner.channels
        self.publish_queued, self.append_queued = inner.publish_queued, self._router.append_queued
        self.publish, self.append = inner.publish, self._router.append
        if self._own_router:
            self.publish, self.append = self._publish_in_order, self._append_in_order
        self.command = self._router.command  # recovery sessions and XRANGE

    async def _publish_in_order(
        self, channel: str, payload: bytes, limit: int | None = None
    ) -> int:
        await self._router.settle_queued()
        return await self._inner.publish(channel, payload, limit)

    async def _append_in_order(self, stream: str, fields: tuple[bytes, ...], max_len: int) -> bytes:
        await self._inner.settle_queued()
        return await self._router.append(stream, fields, max_len)

    async def settle_queued(self) -> None:
        """Wait (bounded) for what is queued on either part."""
        await self._inner.settle_queued()
        if self._own_router:
            await self._router.settle_queued()

    def offset(self, stream: str) -> bytes | None:
        """The id of the last entry of ``stream`` handled (where reading resumes)."""
        name = stream.encode()
        for reader in self.readers:
            if name in reader.offsets:
                return reader.offsets[name]
        return None

    @property
    def listening(self) -> bool:
        return self._inner.listening

    @property
    def latency(self) -> LatencyHistogram:
        return self._inner.latency

    def listen(self) -> None:
        """Start the pub/sub listener, the router and the readers (idempotent)."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        self._inner.listen()
        if self._own_router:
            self._router.listen()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._read(), name="socketio-redis-async stream readers"
            )

    async def _read(self) -> None:
        """Make the readers once the topology is known, and run them."""
        while True:
            try:
                cluster = await self._router.is_cluster()
                break
            except RedisCommandError as exc:  # Redis not reachable yet: the router retries
                self._logger.debug("waiting for the topology: %s", exc)
        groups = [[s] for s in self._streams] if cluster else [self._streams]
        self.readers = [
            StreamReader(
                group,
                functools.partial(self._router.open_connection, "streams", group[0]),
                self._on_entry,
                where=self.where,
                logger=self._logger,
                on_change=self._changed,
                **self._reading,  # type: ignore[arg-type]
            )
            for group in groups
        ]
        self._ready.set()
        await asyncio.gather(*(reader.run() for reader in self.readers))

    async def start(self) -> None:
        """Listen; return once subscribed and every reader knows where it starts."""
        self.listen()
        await self._inner.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        waits = [asyncio.ensure_future(self._ready.wait())]
        await asyncio.wait(waits, timeout=self._timeout)
        waits = [asyncio.ensure_future(reader.ready.wait()) for reader in self.readers]
        if waits:
            await asyncio.wait(waits, timeout=max(0.0, deadline - loop.time()))
        for wait in waits:
            wait.cancel()
        if not self._ready.is_set() or not all(r.ready.is_set() for r in self.readers):
            errors = "; ".join(sorted({r.last_error or "" for r in self.readers} - {""}))
            raise RedisCommandError(
                f"could not start reading the streams at {self.where} within "
                f"{self._timeout:g} s ({errors or 'no answer'}); the adapter keeps retrying"
            )

    def _inner_changed(self, up: bool) -> None:
        self._inner_up = up
        self._changed()

    def _changed(self) -> None:
        readers = self.readers
        up = self._inner_up and bool(readers) and all(reader.connected for reader in readers)
        if up != self._up:
            self._up = up
            self._hooks.on_change(up)

    def health(self) -> AdapterHealth:
        """The pub/sub link's health, unhealthy too while a reader is disconnected."""
        health = self._inner.health()
        if self._own_router:  # the appends' failures count too
            failed = health.publish_failures + self._router.stats()["publish_failures"]
            health = dataclasses.replace(health, publish_failures=failed)
        down = [reader for reader in self.readers if not reader.connected]
        if self.readers and not down:
            return health
        error = down[0].last_error if down else "the stream readers are not started"
        return dataclasses.replace(health, healthy=False, last_error=error or health.last_error)

    def stats(self) -> dict[str, int]:
        """``base.TRANSPORT_STATS`` and the readers' counters."""
        readers = self.readers
        stats = self._inner.stats()
        if self._own_router:  # appends are published by the router
            for name, value in self._router.stats().items():
                if name.startswith("publish"):
                    stats[name] += value
        return {
            **stats,
            "stream_entries_read": sum(r.entries_read for r in readers),
            "stream_entries_lost": sum(r.ledger.entries_lost for r in readers),
            "stream_gaps": sum(r.ledger.gaps for r in readers),
            "stream_reconnects": sum(r.reconnects for r in readers),
        }

    async def stop_listening(self) -> None:
        """Cancel the readers and the listeners, and wait for them (bounded)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            _, stuck = await asyncio.wait([self._task], timeout=10)
            if stuck:
                self._logger.error("the stream readers did not stop within 10 s")
        await self._inner.stop_listening()
        if self._own_router:
            await self._router.stop_listening()

    async def aclose(self) -> None:
        """Stop reading, then close the pub/sub part and the router."""
        await self.stop_listening()
        await self._inner.aclose()
        if self._own_router:
            await self._router.aclose()
