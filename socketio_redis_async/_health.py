"""What the adapter tells the application about its link to Redis: a health snapshot and
the connection-change callback."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._transport.publisher import Publisher
    from ._transport.shards import Publishers, Subscribers
    from ._transport.subscriber import Subscriber

ConnectionCallback = Callable[[bool], Awaitable[object] | object]
"""``on_connection_change(subscribed)``: sync or async; see :class:`AdapterHealth`."""


@dataclass(frozen=True, slots=True)
class AdapterHealth:
    """A snapshot of an adapter's link to Redis (``adapter.health()``).

    ``healthy`` is True when the pub/sub connection is up, Redis has confirmed every
    channel this server needs, and it answered within the last two health-check
    intervals. While it is False, messages from other servers are being missed.
    """

    healthy: bool
    connected: bool
    """The pub/sub connection is open."""
    subscribed_channels: int
    """Channels and patterns Redis has confirmed on the current connection."""
    wanted_channels: int
    """Channels and patterns this server needs."""
    seconds_since_contact: float | None
    """Since the last data read from Redis (pub/sub) or the last answered publish."""
    reconnects: int
    """Times the pub/sub connection was re-established."""
    publish_failures: int
    """Publishes that raised PublishError."""
    last_error: str | None
    """The most recent Redis error, pub/sub or publish (the URL's password redacted)."""


def health_of(subscriber: Subscriber, publisher: Publisher, interval: float) -> AdapterHealth:
    """The current :class:`AdapterHealth` of an adapter's subscriber and publisher."""
    try:
        now = asyncio.get_running_loop().time()
    except RuntimeError:  # called from outside the event loop (e.g. a thread)
        now = time.monotonic()
    confirmed, wanted = subscriber.confirmed()
    contacts = [t for t in (subscriber.last_contact, publisher.last_success) if t]
    read = subscriber.last_contact
    errors = [e for e in (subscriber.last_error, publisher.last_error) if e[1] is not None]
    return AdapterHealth(
        healthy=subscriber.connected
        and subscriber.subscribed
        and read is not None
        and now - read < 2 * interval,
        connected=subscriber.connected,
        subscribed_channels=confirmed,
        wanted_channels=wanted,
        seconds_since_contact=now - max(contacts) if contacts else None,
        reconnects=subscriber.reconnects,
        publish_failures=publisher.failures,
        last_error=max(errors)[1] if errors else None,
    )


def transport_stats(
    subscriber: Subscriber | Subscribers, publisher: Publisher | Publishers
) -> dict[str, int]:
    """A Redis transport's counters (``Transport.stats()``)."""
    return {
        "handler_errors": subscriber.handler_errors,
        "reconnects": subscriber.reconnects,
        "subscribed_channels": len(subscriber.channels),
        "published": publisher.published,
        "publish_batches": publisher.batches,
        "publish_failures": publisher.failures,
        "publish_backlog_bytes": publisher.backlog_bytes,
    }


async def notify(callback: ConnectionCallback, subscribed: bool) -> None:
    """Call the application's callback (sync or async) with ``subscribed``."""
    result = callback(subscribed)
    if inspect.isawaitable(result):
        await result
