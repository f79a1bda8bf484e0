"""Prometheus metrics: ``adapter.stats``, ``adapter.health()`` and the publish latency.

``prometheus_text(*adapters)`` renders the text exposition format (0.0.4) with no
dependency; ``metrics_app`` (ASGI) and ``metrics_handler`` (aiohttp) serve it, and
``PrometheusCollector`` feeds a ``prometheus_client`` registry (the ``prometheus``
extra). Every series carries a ``server`` label, the adapter's uid.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol

from ._health import AdapterHealth
from ._transport.histogram import LatencyHistogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "socketio_redis_"


class Observable(Protocol):
    """What the metrics read from an adapter."""

    @property
    def uid(self) -> str: ...

    @property
    def stats(self) -> Mapping[str, int]: ...

    @property
    def publish_latency(self) -> LatencyHistogram: ...

    def health(self) -> AdapterHealth: ...


# stats key -> (metric name without the prefix, type, help)
STATS: dict[str, tuple[str, str, str]] = {
    "published": ("published_total", "counter", "Messages published to Redis."),
    "publish_batches": ("publish_batches_total", "counter", "Pipelined PUBLISH batches."),
    "publish_failures": (
        "publish_failures_total",
        "counter",
        "Publishes that raised PublishError (timeout, refusal, lost connection).",
    ),
    "publish_backlog_bytes": (
        "publish_backlog_bytes",
        "gauge",
        "Bytes queued or in flight to Redis.",
    ),
    "queued_publish_failures": (
        "queued_publish_failures_total",
        "counter",
        "Queued emits (queued_emits=True) that Redis did not accept; nobody awaited them.",
    ),
    "queued_dropped_at_close": (
        "queued_dropped_at_close_total",
        "counter",
        "Queued emits not published before the adapter closed.",
    ),
    "dropped_messages": (
        "dropped_messages_total",
        "counter",
        "Malformed or oversized messages read from Redis and dropped.",
    ),
    "handler_errors": (
        "handler_errors_total",
        "counter",
        "Errors raised while handling a message read from Redis.",
    ),
    "reconnects": ("reconnects_total", "counter", "Re-established pub/sub connections."),
    "subscribed_channels": (
        "subscribed_channels",
        "gauge",
        "Channels the pub/sub connection is subscribed to (or about to be).",
    ),
    "pending_acks": ("pending_acks", "gauge", "Broadcast acks this server waits for."),
    "pending_requests": (
        "pending_requests",
        "gauge",
        "Cluster requests this server waits for answers to.",
    ),
    "unusable_answers": (
        "unusable_answers_total",
        "counter",
        "Answers from other servers that could not be used (wrong shape, too large).",
    ),
    "slow_consumers_disconnected": (
        "slow_consumers_disconnected_total",
        "counter",
        "Client connections dropped for not reading (max_socket_backlog).",
    ),
    "volatile_skipped": (
        "volatile_skipped_total",
        "counter",
        "Volatile packets not sent to a backed-up client connection.",
    ),
    "direct_writes": (
        "direct_writes_total",
        "counter",
        "Packets written straight to an idle websocket, past engine.io's writer queue.",
    ),
    # AsyncStreamsRedisAdapter only:
    "stream_entries_read": ("stream_entries_read_total", "counter", "Stream entries read."),
    "stream_entries_lost": (
        "stream_entries_lost_total",
        "counter",
        "Stream entries trimmed before this server read them (counted ones).",
    ),
    "stream_gaps": (
        "stream_gaps_total",
        "counter",
        "Gaps found in a stream: entries trimmed or lost by Redis before they were read.",
    ),
    "stream_reconnects": (
        "stream_reconnects_total",
        "counter",
        "Re-established stream reader connections.",
    ),
    "recovered_sessions": (
        "recovered_sessions_total",
        "counter",
        "Connections that got their session back (connection-state recovery).",
    ),
    "recovery_failures": (
        "recovery_failures_total",
        "counter",
        "Recoveries not possible (expired, trimmed, unknown pid...): a new session instead.",
    ),
    "recovery_store_errors": (
        "recovery_store_errors_total",
        "counter",
        "Recovery sessions Redis did not store or delete when asked.",
    ),
    "recovery_sessions_live": (
        "recovery_sessions",
        "gauge",
        "Sessions this server keeps stored for its connected sockets.",
    ),
}

HEALTH: dict[str, tuple[str, str]] = {
    "healthy": ("healthy", "1 while the pub/sub link is up and every channel is confirmed."),
    "connected": ("connected", "1 while the pub/sub connection is open."),
    "subscribed_channels": (
        "confirmed_channels",
        "Channels and patterns Redis has confirmed on the current connection.",
    ),
    "wanted_channels": ("wanted_channels", "Channels and patterns this server needs."),
    "seconds_since_contact": (
        "seconds_since_contact",
        "Seconds since the last data from Redis (NaN before the first).",
    ),
}


def _value(value: float | bool | None) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _label(uid: str) -> str:
    escaped = uid.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'server="{escaped}"'


def samples(adapter: Observable) -> Iterator[tuple[str, str, str, list[tuple[str, str]]]]:
    """(name, type, help, [(series suffix and labels, value)]) for one adapter."""
    label = _label(adapter.uid)
    stats = adapter.stats
    for key, (name, kind, help_text) in STATS.items():
        if key in stats:
            yield PREFIX + name, kind, help_text, [(f"{{{label}}}", _value(stats[key]))]
    health = adapter.health()
    for field, (name, help_text) in HEALTH.items():
        value = getattr(health, field)
        yield PREFIX + name, "gauge", help_text, [(f"{{{label}}}", _value(value))]
    hist = adapter.publish_latency
    series = [
        (f'_bucket{{{label},le="{"+Inf" if math.isinf(b) else repr(b)}"}}', str(n))
        for b, n in hist.cumulative()
    ]
    series += [(f"_sum{{{label}}}", repr(hist.sum)), (f"_count{{{label}}}", str(hist.count))]
    yield (
        PREFIX + "publish_latency_seconds",
        "histogram",
        "Seconds from queueing a PUBLISH to Redis answering it.",
        series,
    )


def prometheus_text(*adapters: Observable) -> str:
    """The Prometheus text exposition of every adapter's metrics (one family per metric)."""
    families: dict[str, tuple[str, str, list[str]]] = {}
    for adapter in adapters:
        for name, kind, help_text, series in samples(adapter):
            lines = families.setdefault(name, (kind, help_text, []))[2]
            lines.extend(f"{name}{suffix} {value}" for suffix, value in series)
    out = []
    for name, (kind, help_text, lines) in families.items():
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines]
    return "\n".join(out) + "\n"


def metrics_app(*adapters: Observable) -> Callable[..., Awaitable[None]]:
    """An ASGI app answering every HTTP GET with :func:`prometheus_text` of ``adapters``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status, body = 200, prometheus_text(*adapters).encode()
        if scope.get("method") not in ("GET", "HEAD"):
            status, body = 405, b"use GET\n"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", CONTENT_TYPE.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def metrics_handler(*adapters: Observable) -> Callable[[Any], Awaitable[Any]]:
    """An aiohttp handler: ``app.router.add_get("/metrics", metrics_handler(adapter))``."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=prometheus_text(*adapters).encode(),
            headers={"Content-Type": CONTENT_TYPE},
        )

    return handler


class PrometheusCollector:
    """A ``prometheus_client`` collector (``pip install socketio-redis-async[prometheus]``):
    ``prometheus_client.REGISTRY.register(PrometheusCollector(adapter))``."""

    def __init__(self, *adapters: Observable) -> None:
        self._adapters = adapters

    def collect(self) -> Iterator[Any]:
        from prometheus_client.parser import text_string_to_metric_families

        yield from text_string_to_metric_families(prometheus_text(*self._adapters))
