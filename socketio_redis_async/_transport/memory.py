"""An in-process message bus: the ``Transport`` protocol without Redis, for unit tests of
the cluster engine and the facade (engines on one ``MemoryHub`` act as servers on one Redis,
with no socket and no subprocess) and for a single-process application.

``MemoryHub`` plays Redis: ``publish`` gives ``(channel, payload, None)`` to each transport
subscribing the channel, then ``(channel, payload, pattern)`` per matching pattern (Redis'
glob rules), the publisher's own included, and returns the deliveries made. Subscriptions
are kept from the first ``want`` but count and receive only while the transport is on the
bus (listening, link up). Its listener awaits ``on_message`` per message in publish order,
counting and logging a handler's exception. ``hub.disconnect``/``hub.reconnect`` drop and
restore a link: what is queued or published meanwhile is lost; publishing raises PublishError.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from .._errors import AdapterClosedError, PublishError
from .._health import AdapterHealth
from .base import TRANSPORT_STATS, Report, TransportFactory, TransportHooks
from .glob import glob_match
from .histogram import LatencyHistogram
from .publisher import check_size

_T = TypeVar("_T")
_ENTRIES = b"\0entries"  # the queue's marker: new entries in the stream named as channel


class MemoryHub:
    """The in-process "Redis": the transports attached, what they subscribe, the streams."""

    def __init__(self) -> None:
        self.transports: dict[MemoryTransport, None] = {}  # attached, in attach order
        self.streams: dict[str, list[tuple[int, bytes, tuple[bytes, ...]]]] = {}
        self._last = (0, 0)

    def append(self, stream: str, fields: tuple[bytes, ...], max_len: int) -> bytes:
        """XADD: a new entry, trimmed to ``max_len``; each stream reader on the bus is told."""
        ms = max(int(time.time() * 1000), self._last[0])
        self._last = (ms, self._last[1] + 1 if ms == self._last[0] else 0)
        entry_id = b"%d-%d" % self._last
        entries = self.streams.setdefault(stream, [])
        index = entries[-1][0] + 1 if entries else 0
        entries.append((index, entry_id, fields))
        del entries[:-max_len]
        for transport in self._on_bus():
            if transport.reads_streams:
                transport.queue.put_nowait((stream.encode(), b"", _ENTRIES))
        return entry_id

    def _on_bus(self) -> list[MemoryTransport]:
        return [t for t in self.transports if t.on_bus]

    def publish(self, channel: str, payload: bytes) -> int:
        """Deliver to every subscriber of ``channel``, then once per matching pattern; the
        number of deliveries (PUBLISH's answer)."""
        name, receivers = channel.encode(), 0
        for transport in self._on_bus():
            if channel in transport.wanted:
                transport.queue.put_nowait((name, payload, None))
                receivers += 1
            for pattern in sorted(transport.patterns):
                if glob_match(pattern.encode(), name):
                    transport.queue.put_nowait((name, payload, pattern.encode()))
                    receivers += 1
        return receivers

    def numsub(self, channel: str) -> int:
        """How many transports subscribe ``channel`` (PUBSUB NUMSUB)."""
        return sum(channel in t.wanted for t in self._on_bus())

    def channels(self, pattern: str) -> list[bytes]:
        """The subscribed channels matching ``pattern``, sorted (PUBSUB CHANNELS)."""
        names = {c.encode() for t in self._on_bus() for c in t.wanted}
        return sorted(n for n in names if glob_match(pattern.encode(), n))

    def disconnect(self, transport: MemoryTransport) -> None:
        """Drop ``transport``'s link, as if its Redis connections were lost."""
        transport.set_link(False)

    def reconnect(self, transport: MemoryTransport) -> None:
        """Bring ``transport``'s link back: everything it wants is subscribed again."""
        transport.set_link(True)


class MemoryTransport:
    """A ``Transport`` on a ``MemoryHub``: one listener task, no Redis."""

    def __init__(
        self,
        hub: MemoryHub,
        hooks: TransportHooks,
        *,
        max_message_size: int = 8 * 1024 * 1024,
        where: str = "memory",
        logger: logging.Logger | None = None,
    ) -> None:
        self.where = where
        self._hub = hub
        self._hooks = hooks
        self._max = max_message_size
        self._logger = logger or logging.getLogger("socketio_redis_async")
        self.latency = LatencyHistogram()
        self.check_size = functools.partial(check_size, max_message_size=max_message_size)
        self.wanted: set[str] = set()
        self.patterns: set[str] = set()
        self.want, self.unwant = self.wanted.add, self.wanted.discard
        self.want_pattern, self.unwant_pattern = self.patterns.add, self.patterns.discard
        self.queue: asyncio.Queue[tuple[bytes, bytes, bytes | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._linked = True
        self._announced = False
        self._contact: float | None = None
        self._last_error: str | None = None
        self._stats = dict.fromkeys(TRANSPORT_STATS, 0)
        self._read: dict[str, int] = {}  # stream -> index of the next entry to hand over
        self.entries_lost = 0
        hub.transports[self] = None

    @property
    def reads_streams(self) -> bool:
        """Whether the engine takes stream entries (its hooks have ``on_entry``)."""
        return self._hooks.on_entry is not None

    @property
    def listening(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def on_bus(self) -> bool:
        """Listening with the link up: its subscriptions count and receive."""
        return self._linked and self.listening and not self._closed

    def listen(self) -> None:
        """Start the listener task (idempotent); every subscription is confirmed at once."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        if not self.listening:
            name = f"socketio-redis-async memory listener {self._hooks.uid()}"
            self._task = asyncio.get_running_loop().create_task(self._listen(), name=name)
            for stream, entries in self._hub.streams.items():  # read what comes from now on
                self._read.setdefault(stream, entries[-1][0] + 1 if entries else 0)
            self._link_changed()

    async def start(self) -> None:
        self.listen()

    async def confirm(self, channels: list[str]) -> None:
        """Nothing to wait for: subscriptions take effect when made."""

    async def publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        """Deliver through the hub, in call order; the number of deliveries."""
        return await self._send(payload, limit, lambda: self._hub.publish(channel, payload))

    async def append(self, stream: str, fields: tuple[bytes, ...], max_len: int) -> bytes:
        """XADD through the hub; the entry's id."""
        return await self._send(b"", None, lambda: self._hub.append(stream, fields, max_len))

    async def publish_queued(self, channel: str, payload: bytes, report: Report) -> None:
        """``publish``, its outcome (at once: the hub has no queue) told to ``report``."""
        self._queued(payload, lambda: self._hub.publish(channel, payload), report)

    async def append_queued(
        self, stream: str, fields: tuple[bytes, ...], max_len: int, report: Report
    ) -> None:
        """``append``, its outcome told to ``report``."""
        self._queued(b"", lambda: self._hub.append(stream, fields, max_len), report)

    async def settle_queued(self) -> None:
        """Nothing waits: queued messages are delivered when queued."""

    def _queued(self, payload: bytes, send: Callable[[], object], report: Report) -> None:
        try:
            self._deliver(payload, None, send)
        except PublishError as exc:
            report(1, exc)
        else:
            report(1, None)

    async def _send(self, payload: bytes, limit: int | None, send: Callable[[], _T]) -> _T:
        answer = self._deliver(payload, limit, send)
        await asyncio.sleep(0)  # a checkpoint, as a round trip to Redis would be
        return answer

    def _deliver(self, payload: bytes, limit: int | None, send: Callable[[], _T]) -> _T:
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        check_size(payload, self._max, limit)
        if not self._linked:
            self._stats["publish_failures"] += 1
            self._last_error = f"cannot publish to {self.where}: the link is down"
            raise PublishError(self._last_error)
        started = time.monotonic()
        answer = send()
        self._stats["published"] += 1
        self._contact = time.monotonic()
        self.latency.observe(self._contact - started)
        return answer

    async def count_subscribers(self, channel: str) -> int:
        return self._hub.numsub(channel)

    async def channels(self, pattern: str) -> list[bytes | str]:
        return list(self._hub.channels(pattern))

    def health(self) -> AdapterHealth:
        up, wanted = self.on_bus, len(self.wanted) + len(self.patterns)
        since = None if self._contact is None else time.monotonic() - self._contact
        return AdapterHealth(
            healthy=up,
            connected=up,
            subscribed_channels=wanted if up else 0,
            wanted_channels=wanted,
            seconds_since_contact=since,
            reconnects=self._stats["reconnects"],
            publish_failures=self._stats["publish_failures"],
            last_error=self._last_error,
        )

    def stats(self) -> dict[str, int]:
        """The keys of ``base.TRANSPORT_STATS``; each publish is a batch of its own."""
        batches = self._stats["published"]
        return {**self._stats, "subscribed_channels": len(self.wanted), "publish_batches": batches}

    async def stop_listening(self) -> None:
        """Cancel the listener and wait for it (bounded); it cannot listen again."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=10)

    async def aclose(self) -> None:
        """Stop listening and leave the hub."""
        await self.stop_listening()
        self._hub.transports.pop(self, None)

    def set_link(self, up: bool) -> None:
        """The hub's fault hooks: drop the link (losing what is queued) or restore it."""
        if up != self._linked:
            self._linked = up
            self._stats["reconnects"] += up
            if not up:
                self._last_error = f"lost the link to {self.where}"
                while not self.queue.empty():
                    self.queue.get_nowait()
            elif self.reads_streams:  # read on from where it was, like XREAD from an offset
                for stream in self._hub.streams:
                    self.queue.put_nowait((stream.encode(), b"", _ENTRIES))
            self._link_changed()

    def _link_changed(self) -> None:
        """Call ``on_change`` when being on the bus changed (at most once per change)."""
        if self.on_bus != self._announced:
            self._announced = self.on_bus
            self._hooks.on_change(self._announced)

    async def _listen(self) -> None:
        while True:
            channel, payload, pattern = await self.queue.get()
            self._contact = time.monotonic()
            try:
                if pattern == _ENTRIES:
                    await self._read_entries(channel.decode())
                else:
                    await self._hooks.on_message(channel, payload, pattern)
            except Exception:
                self._stats["handler_errors"] += 1
                self._logger.exception("error while handling a message from channel %r", channel)

    async def _read_entries(self, stream: str) -> None:
        """Hand over the stream's entries from this transport's offset."""
        entries, on_entry = self._hub.streams.get(stream, []), self._hooks.on_entry
        assert on_entry is not None
        start = self._read.setdefault(stream, 0)
        if entries and entries[0][0] > start:
            self.entries_lost += entries[0][0] - start
            self._logger.error(
                "%d entries of stream %r were trimmed before this server read them",
                entries[0][0] - start,
                stream,
            )
        for index, entry_id, fields in entries:
            if index >= self._read[stream] and self.on_bus:
                self._read[stream] = index + 1
                await on_entry(stream.encode(), entry_id, list(fields))


def memory_transport(
    hub: MemoryHub, *, max_message_size: int = 8 * 1024 * 1024, where: str = "memory"
) -> TransportFactory:
    """A ``TransportFactory``: a ``MemoryTransport`` on ``hub`` for each engine."""
    return lambda hooks: MemoryTransport(hub, hooks, max_message_size=max_message_size, where=where)
