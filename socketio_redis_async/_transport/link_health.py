"""A Redis transport's health and counters, read from its subscriber(s) and publisher(s)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from .._health import AdapterHealth

if TYPE_CHECKING:
    from .publisher import Publisher
    from .shards import Publishers, Subscribers
    from .subscriber import Subscriber


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
