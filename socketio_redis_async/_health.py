"""What the adapter tells the application about its link to Redis: a health snapshot and
the connection-change callback."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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


async def notify(callback: ConnectionCallback, subscribed: bool) -> None:
    """Call the application's callback (sync or async) with ``subscribed``."""
    result = callback(subscribed)
    if inspect.isawaitable(result):
        await result
