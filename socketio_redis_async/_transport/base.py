"""The transport boundary: what the cluster engine needs from a message bus.

A transport keeps a set of channels (and, for the classic protocol's unmultiplexed mode,
patterns) subscribed, says when the bus confirmed them, publishes in this server's order,
counts the subscribers of a channel, lists channels, and reports its health. It knows
nothing of Socket.IO: channel names and payloads are opaque bytes to it.

Implementations: ``pubsub.RedisTransport`` (classic pub/sub), ``sharded.ShardedTransport``
(SSUBSCRIBE/SPUBLISH on the shard owning each channel) and ``memory.MemoryTransport``
(one process, no Redis). A transport is built by a ``TransportFactory`` from the
``TransportHooks`` the engine gives it, so the engine and the transport never hold each
other by more than these callbacks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from .._health import AdapterHealth
from .backlog import Report as Report
from .histogram import LatencyHistogram

OnMessage = Callable[[bytes, bytes, "bytes | None"], Awaitable[None]]
"""``(channel, payload, pattern)`` for each message received; ``pattern`` is the
PSUBSCRIBE pattern that matched, None for a subscribed channel."""

OnEntry = Callable[[bytes, bytes, list[bytes]], Awaitable[None]]
"""``(stream, entry id, [field, value, ...])`` for each stream entry read, in order."""


@dataclass(frozen=True, slots=True)
class TransportHooks:
    """What a transport calls back into: the engine's receiver and its health callback."""

    on_message: OnMessage
    on_change: Callable[[bool], None]
    """``False`` when the link is lost, ``True`` once every subscription is confirmed."""
    uid: Callable[[], str]
    """This server's uid (names connections; changes in a forked child)."""
    on_entry: OnEntry | None = None
    """Where a transport that reads streams hands their entries."""


class Transport(Protocol):
    """The message bus under the cluster engine."""

    where: str
    """Where the bus is, for messages (a URL with its credentials redacted)."""

    @property
    def listening(self) -> bool:
        """Whether the listener runs."""

    @property
    def latency(self) -> LatencyHistogram:
        """Seconds from queueing each publish to the bus accepting it."""

    def want(self, channel: str) -> None:
        """Keep ``channel`` subscribed (idempotent, takes effect in the background)."""

    def unwant(self, channel: str) -> None:
        """Stop keeping ``channel`` subscribed."""

    def want_pattern(self, pattern: str) -> None:
        """Keep a glob pattern subscribed (the classic protocol without multiplexing)."""

    def unwant_pattern(self, pattern: str) -> None:
        """Stop keeping ``pattern`` subscribed."""

    def listen(self) -> None:
        """Start the listener task (idempotent); AdapterClosedError once closed."""

    async def start(self) -> None:
        """Listen, and return once the bus confirmed every subscription (bounded)."""

    async def confirm(self, channels: list[str]) -> None:
        """Wait (bounded) until these subscriptions are confirmed; no-op when not listening."""

    def check_size(self, payload: bytes) -> None:
        """Raise ValueError if ``payload`` is over the largest message allowed."""

    async def publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        """Publish in this server's order; the number of subscribers that received it.

        Raises PublishError (never only logs) when the bus did not accept it."""

    async def append(self, stream: str, fields: tuple[bytes, ...], max_len: int) -> bytes:
        """``XADD stream MAXLEN ~ max_len * fields...`` in this server's order, with the
        publishes; the entry's id. Raises PublishError like ``publish``."""

    async def publish_queued(self, channel: str, payload: bytes, report: Report) -> None:
        """Queue a publish in this server's order and return without waiting for the bus:
        ``report(count, error)`` hears how queued messages went. Waits for room while the
        publisher's backlog is full, at most ``publish_timeout``; then PublishError (the
        message was not queued). A publish or append awaited afterwards, on any
        connection, reaches the bus after it."""

    async def append_queued(
        self, stream: str, fields: tuple[bytes, ...], max_len: int, report: Report
    ) -> None:
        """``append``, queued like ``publish_queued`` (its entry id is not known)."""

    async def settle_queued(self) -> None:
        """Wait (bounded) until every message queued so far was answered or failed."""

    async def count_subscribers(self, channel: str) -> int:
        """How many connections subscribe ``channel`` (NUMSUB), cluster-wide."""

    async def channels(self, pattern: str) -> list[bytes | str]:
        """The subscribed channels matching a glob pattern, cluster-wide."""

    def health(self) -> AdapterHealth:
        """A snapshot of the link to the bus."""

    def stats(self) -> dict[str, int]:
        """The transport's counters (reconnects, published, backlog...)."""

    async def stop_listening(self) -> None:
        """Cancel the listener and wait for it (bounded)."""

    async def aclose(self) -> None:
        """Stop listening and publishing; close what the transport owns."""


TransportFactory = Callable[[TransportHooks], Transport]
"""Builds a transport for an engine; the adapters pass one per protocol."""


TRANSPORT_STATS = (
    "handler_errors",
    "reconnects",
    "subscribed_channels",
    "published",
    "publish_batches",
    "publish_failures",
    "publish_backlog_bytes",
)
"""The keys of ``Transport.stats()``."""
