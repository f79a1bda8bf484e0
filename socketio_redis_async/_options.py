"""Validation of user options. Pure: no I/O; every error says what to pass instead."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import urlsplit

from redis.connection import parse_url

from ._local.backlog import DEFAULT_MAX_SOCKET_BACKLOG, check_backlog
from ._local.handshake import DEFAULT_REDACTED_HEADERS, DEFAULT_REDACTED_QUERY
from ._transport.clients import (
    SENTINEL_SCHEMES,
    ambiguous_url,
    check_async_url,
    parse_sentinel_url,
    plain_url,
)
from ._transport.clients import redact_url as redact_url

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_KEY = "socket.io"
SCHEMES = ("redis", "rediss", "unix", "valkey", "valkeys", *SENTINEL_SCHEMES)


def check_url(url: Any) -> str:
    """Validate a Redis URL: redis://, rediss://, unix://, valkey[s]://, or Sentinel."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str such as {DEFAULT_URL!r}, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"url {redact_url(url)!r} has scheme {parts.scheme!r}; use redis://, rediss:// "
            "(TLS), unix://, valkey://, valkeys:// or redis+sentinel://, "
            "e.g. 'redis://user:password@host:6379/0'"
        )
    if ambiguous_url(parts):
        raise ValueError(
            f"url {redact_url(url)!r} cannot be read safely: percent-encode the user name and "
            "password (urllib.parse.quote(password, safe='')) so that '/', '?', '#' and '@' "
            "in them become %2F, %3F, %23 and %40"
        )
    try:
        if parts.scheme in SENTINEL_SCHEMES:
            parse_sentinel_url(url)
        else:
            parse_url(plain_url(url))  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ValueError(f"url {redact_url(url)!r} is not a valid Redis URL: {exc}") from None
    return url


def resolve_url(url: str | None, host: str | None, port: int | None) -> str:
    """Build the URL from ``url``, or from ``host``/``port`` (the original adapter's options)."""
    if url is not None and (host is not None or port is not None):
        raise ValueError("pass either url or host/port, not both")
    if url is not None:
        return check_async_url(check_url(url))  # the adapters' clients are asyncio ones
    if host is None and port is None:
        return DEFAULT_URL
    if host is not None and (not isinstance(host, str) or not host):
        raise TypeError("host must be a non-empty str such as 'localhost'")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise TypeError(f"port must be an int such as 6379, not {type(port).__name__}")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, not {port}")
    return f"redis://{host or 'localhost'}:{port or 6379}/0"


def check_key(key: Any) -> str:
    """Validate the channel prefix."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a str such as 'socket.io', not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty; the Node adapter's default is 'socket.io'")
    return key


def check_seconds(name: str, value: Any) -> float:
    """Validate a positive duration in seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds such as 5, not {type(value).__name__}")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds > 0, not {value!r}")
    return float(value)


def check_size(name: str, value: Any) -> int:
    """Validate a positive size in bytes."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int number of bytes, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0 bytes, not {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Validate a flag."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r:.40}")
    return value


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")


def check_names(name: str, value: Any, *, headers: bool) -> frozenset[str]:
    """Validate a collection of header (``headers=True``) or query parameter names.

    Returned in lower case, so that matching is case-insensitive; in header names ``_`` is
    read as ``-``, as the WSGI/ASGI environ does.
    """
    example = "['x-api-key', 'cookie']" if headers else "['token', 'access_token']"
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{name} must be a list or set of names such as {example}, not {type(value).__name__}"
        )
    names = set()
    for item in value:
        if not isinstance(item, str) or not item:
            raise TypeError(
                f"{name} must hold non-empty str names such as {example}, not {item!r:.40}"
            )
        item = item.lower()
        if headers:
            item = item.replace("_", "-")
            if not _HEADER_NAME.fullmatch(item):
                raise ValueError(
                    f"{name}: {item!r:.40} is not an HTTP header name; pass names such as {example}"
                )
        names.add(item)
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class Options:
    """The adapter's validated settings."""

    url: str = field(repr=False)
    key: str
    requests_timeout: float
    ack_timeout: float
    with_channel_multiplexing: bool
    max_message_size: int
    max_answer_size: int
    health_check_interval: float
    max_socket_backlog: int | None
    publish_timeout: float
    redact_headers: frozenset[str]
    redact_query: frozenset[str]
    queued_emits: bool
    direct_writes: bool
    redis_options: dict[str, Any] = field(repr=False)


def build_options(
    *,
    url: str | None,
    host: str | None,
    port: int | None,
    key: str,
    requests_timeout: float,
    ack_timeout: float,
    with_channel_multiplexing: bool,
    max_message_size: int,
    max_answer_size: int,
    health_check_interval: float,
    max_socket_backlog: int | None,
    publish_timeout: float,
    share_sensitive_headers: bool,
    redact_headers: Iterable[str] | None,
    redact_query: Iterable[str] | None,
    redis_options: dict[str, Any] | None,
    queued_emits: bool = False,
    direct_writes: bool = True,
) -> Options:
    """Validate the adapter's keyword arguments (ValueError/TypeError saying what to pass)."""
    options_ok = isinstance(redis_options, dict) and all(type(k) is str for k in redis_options)
    if redis_options is not None and not options_ok:
        raise TypeError("redis_options must be a dict of redis.asyncio.Redis keyword arguments")
    if check_bool("share_sensitive_headers", share_sensitive_headers):
        if redact_headers is not None:
            raise ValueError(
                "pass either share_sensitive_headers=True or redact_headers, not both "
                "(share_sensitive_headers=True is the same as redact_headers=[])"
            )
        redact_headers = ()
    return Options(
        url=resolve_url(url, host, port),
        key=check_key(key),
        requests_timeout=check_seconds("requests_timeout", requests_timeout),
        ack_timeout=check_seconds("ack_timeout", ack_timeout),
        with_channel_multiplexing=check_bool(
            "with_channel_multiplexing", with_channel_multiplexing
        ),
        max_message_size=check_size("max_message_size", max_message_size),
        max_answer_size=max(check_size("max_answer_size", max_answer_size), max_message_size),
        health_check_interval=check_seconds("health_check_interval", health_check_interval),
        max_socket_backlog=check_backlog(max_socket_backlog),
        publish_timeout=check_seconds("publish_timeout", publish_timeout),
        redact_headers=DEFAULT_REDACTED_HEADERS
        if redact_headers is None
        else check_names("redact_headers", redact_headers, headers=True),
        redact_query=DEFAULT_REDACTED_QUERY
        if redact_query is None
        else check_names("redact_query", redact_query, headers=False),
        queued_emits=check_bool("queued_emits", queued_emits),
        direct_writes=check_bool("direct_writes", direct_writes),
        redis_options=dict(redis_options or {}),
    )


class AdapterOptions(TypedDict, total=False):
    """The options every adapter takes beyond its protocol's own, written once (each one
    is documented on ``AsyncRedisAdapter``); an adapter takes them as ``**options``."""

    host: str | None
    port: int | None
    requests_timeout: float
    ack_timeout: float
    max_message_size: int
    max_answer_size: int
    health_check_interval: float
    share_sensitive_headers: bool
    max_socket_backlog: int | None
    redact_headers: Iterable[str] | None
    redact_query: Iterable[str] | None
    publish_timeout: float
    queued_emits: bool
    direct_writes: bool
    redis_options: dict[str, Any] | None
    logger: Any
    on_connection_change: Any


ADAPTER_DEFAULTS: dict[str, Any] = {
    "host": None,
    "port": None,
    "requests_timeout": 5.0,
    "ack_timeout": 60.0,
    "max_message_size": 8 * 1024 * 1024,
    "max_answer_size": 30 * 1024 * 1024,
    "health_check_interval": 2.0,
    "share_sensitive_headers": False,
    "max_socket_backlog": DEFAULT_MAX_SOCKET_BACKLOG,
    "redact_headers": None,
    "redact_query": None,
    "publish_timeout": 5.0,
    "queued_emits": False,
    "direct_writes": True,
    "redis_options": None,
}


def adapter_options(url: str | None, key: str, given: AdapterOptions) -> Options:
    """``Options`` from an adapter's ``**options`` (``logger`` and ``on_connection_change``
    are the facade's, not here); TypeError names an option that does not exist."""
    unknown = sorted(set(given) - set(ADAPTER_DEFAULTS) - {"logger", "on_connection_change"})
    if unknown:
        raise TypeError(
            f"unknown option {unknown[0]!r}; the options are the protocol's own and "
            f"{', '.join(sorted(ADAPTER_DEFAULTS))}, logger, on_connection_change"
        )
    chosen = {**ADAPTER_DEFAULTS, **{k: v for k, v in given.items() if k in ADAPTER_DEFAULTS}}
    return build_options(url=url, key=key, with_channel_multiplexing=True, **chosen)
