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
import re
import time

from .._errors import AdapterClosedError, PublishError
from .._health import AdapterHealth
from .base import TRANSPORT_STATS, TransportFactory, TransportHooks
from .histogram import LatencyHistogram
from .publisher import check_size


def glob_match(pattern: bytes, string: bytes) -> bool:
    """Whether ``string`` matches ``pattern`` by Redis' glob rules (``stringmatchlen``):
    ``*``, ``?``, ``[abc]``, ``[a-z]``, ``[^...]``, ``\\`` escaping the next byte; quirks
    included: ``[z-a]`` is ``[a-z]``, ``[`` left open ends with the pattern, ``[]`` matches
    nothing, ``[^]`` any byte, and no pattern but ``""`` matches ``""``."""
    return _regex(pattern).fullmatch(string) is not None if string else not pattern


@functools.lru_cache(maxsize=4096)
def _regex(pattern: bytes) -> re.Pattern[bytes]:
    out, p, end = [], 0, len(pattern)
    while p < end:
        c = pattern[p : p + 1]
        if c == b"[":
            p += 1
            negate = pattern[p : p + 1] == b"^"
            p += negate
            members = []
            while p < end and pattern[p] != ord("]"):
                if pattern[p] != ord("\\") and p + 2 < end and pattern[p + 1] == ord("-"):
                    members.append(b"\\x%02x-\\x%02x" % tuple(sorted(pattern[p : p + 3 : 2])))
                    p += 2
                else:  # a byte, or one escaped by a backslash
                    p += pattern[p] == ord("\\") and p + 1 < end
                    members.append(b"\\x%02x" % pattern[p])
                p += 1
            klass = b"[%s%s]" % (b"^" if negate else b"", b"".join(members))
            out.append(klass if members else b"." if negate else b"(?!)")
        elif c in (b"*", b"?"):
            out.append(b".*" if c == b"*" else b".")
        else:  # a byte, or one escaped by a backslash
            p += c == b"\\" and p + 1 < end
            out.append(b"\\x%02x" % pattern[p])
        p += 1
    return re.compile(b"".join(out), re.DOTALL)


class MemoryHub:
    """The in-process "Redis": the transports attached and what they subscribe."""

    def __init__(self) -> None:
        self.transports: dict[MemoryTransport, None] = {}  # attached, in attach order

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
        hub.transports[self] = None

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
            self._link_changed()

    async def start(self) -> None:
        self.listen()

    async def confirm(self, channels: list[str]) -> None:
        """Nothing to wait for: subscriptions take effect when made."""

    async def publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        """Deliver through the hub, in call order; the number of deliveries."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        check_size(payload, self._max, limit)
        if not self._linked:
            self._stats["publish_failures"] += 1
            self._last_error = f"cannot publish to {self.where}: the link is down"
            raise PublishError(self._last_error)
        started = time.monotonic()
        receivers = self._hub.publish(channel, payload)
        self._stats["published"] += 1
        self._contact = time.monotonic()
        self.latency.observe(self._contact - started)
        await asyncio.sleep(0)  # a checkpoint, as a round trip to Redis would be
        return receivers

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
                await self._hooks.on_message(channel, payload, pattern)
            except Exception:
                self._stats["handler_errors"] += 1
                self._logger.exception("error while handling a message from channel %r", channel)


def memory_transport(
    hub: MemoryHub, *, max_message_size: int = 8 * 1024 * 1024, where: str = "memory"
) -> TransportFactory:
    """A ``TransportFactory``: a ``MemoryTransport`` on ``hub`` for each engine."""
    return lambda hooks: MemoryTransport(hub, hooks, max_message_size=max_message_size, where=where)
