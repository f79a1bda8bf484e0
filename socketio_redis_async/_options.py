"""Validation of user options. Pure: no I/O; every error says what to pass instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_KEY = "socket.io"
SCHEMES = ("redis", "rediss", "unix")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_url(url: Any) -> str:
    """Validate a Redis URL (``redis://``, ``rediss://`` or ``unix://``)."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str such as {DEFAULT_URL!r}, not {type(url).__name__}")
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(
            f"url {redact_url(url)!r} has scheme {scheme!r}; use redis://, rediss:// (TLS) "
            "or unix://, e.g. 'redis://user:password@host:6379/0'"
        )
    return url


def resolve_url(url: str | None, host: str | None, port: int | None) -> str:
    """Build the URL from ``url``, or from ``host``/``port`` (the original adapter's options)."""
    if url is not None and (host is not None or port is not None):
        raise ValueError("pass either url or host/port, not both")
    if url is not None:
        return check_url(url)
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


@dataclass(frozen=True, slots=True)
class Options:
    """The adapter's validated settings."""

    url: str
    key: str
    requests_timeout: float
    ack_timeout: float
    with_channel_multiplexing: bool
    max_message_size: int
    max_answer_size: int
    health_check_interval: float
