"""Redis clients from URLs: ``redis``, ``rediss``, ``unix``, ``valkey``, ``valkeys``, Sentinel.

The URL forms are python-socketio's (``AsyncRedisManager``), so a URL moves over as is:

* ``valkey://`` and ``valkeys://`` are ``redis://`` and ``rediss://``: Valkey speaks RESP,
  and redis-py serves it (no second client library to install or to sniff).
* ``redis+sentinel://[user:password@]host1:port1,host2:port2/db/service_name`` (and
  ``valkey+sentinel://``) asks the sentinels for the master of ``service_name``; every
  new connection asks again, so a reconnect after a failover reaches the new master.

Parsing is pure; only ``async_client`` / ``sync_client`` build (unconnected) clients.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, unquote_plus, urlsplit

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.sentinel

SENTINEL_SCHEMES = ("redis+sentinel", "valkey+sentinel")
_ALIASES = {"valkey": "redis", "valkeys": "rediss"}
_EXAMPLE = "redis+sentinel://user:password@host1:26379,host2:26379/0/mymaster"


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None

    def connection_kwargs(self) -> dict[str, Any]:
        """Settings of the connections to the master (the sentinels get no credentials,
        as in python-socketio)."""
        kwargs: dict[str, Any] = {"db": self.db}
        if self.username:
            kwargs["username"] = self.username
        if self.password:
            kwargs["password"] = self.password
        return kwargs


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse a ``redis+sentinel://`` URL; ValueError says what a valid one looks like."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        raise ValueError(f"not a Sentinel URL; use the form {_EXAMPLE!r}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for item in hosts.split(","):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"Sentinel address {item!r} must be host:port (e.g. 127.0.0.1:26379); "
                f"use the form {_EXAMPLE!r}"
            )
        sentinels.append((host.strip("[]"), int(port)))
    path = [segment for segment in parts.path.split("/") if segment]
    if len(path) != 2 or not path[0].isdigit():
        raise ValueError(
            "a Sentinel URL ends with /<db>/<service name> (the name the sentinels "
            f"monitor, e.g. mymaster); use the form {_EXAMPLE!r}"
        )
    return SentinelTarget(
        sentinels=tuple(sentinels),
        service=unquote(path[1]),
        db=int(path[0]),
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def plain_url(url: str) -> str:
    """The URL redis-py's ``from_url`` understands: ``valkey[s]://`` becomes ``redis[s]://``."""
    scheme, sep, rest = url.partition("://")
    return f"{_ALIASES.get(scheme.lower(), scheme)}{sep}{rest}"


def is_sentinel_url(url: str) -> bool:
    """True for ``redis+sentinel://`` and ``valkey+sentinel://`` URLs."""
    return urlsplit(url).scheme in SENTINEL_SCHEMES


def _sentinels(pool: Any) -> list[Any]:
    sentinels: list[Any] = pool.sentinel_manager.sentinels
    return sentinels


class _AsyncSentinelRedis(redis.asyncio.Redis):
    """The master's client; closing it also closes the connections to the sentinels."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in _sentinels(self.connection_pool):
            await client.aclose()


class _SentinelRedis(redis.Redis):
    """The master's client; closing it also closes the connections to the sentinels."""

    def close(self) -> None:
        super().close()
        for client in _sentinels(self.connection_pool):
            client.close()


# redis-py passes URL query arguments on to the connection class; its asyncio SSLConnection
# takes ssl_password only from 7.2, and before that fails at the first command, deep inside
# its pool, with an error that names neither the URL nor the fix.
_ASYNC_SSL_PASSWORD = (
    "ssl_password" in inspect.signature(redis.asyncio.connection.SSLConnection).parameters
)


def check_async_url(url: str) -> str:
    """``url``, if redis-py's asyncio client can take everything in it; else ValueError."""
    if not _ASYNC_SSL_PASSWORD and "ssl_password" in parse_qs(urlsplit(url).query):
        raise ValueError(
            "?ssl_password= needs redis-py 7.2 or newer for asyncio clients (installed: "
            f"{redis.__version__}): upgrade redis-py, or use a key file without a password"
        )
    return url


def async_client(url: str, **options: Any) -> redis.asyncio.Redis:
    """A ``redis.asyncio.Redis`` for any URL this package accepts, with extra client
    ``options`` (``socket_timeout``...; for Sentinel they also reach the sentinels when
    their name starts with ``socket_``, as redis-py does)."""
    check_async_url(url)
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = redis.asyncio.sentinel.Sentinel(
            list(target.sentinels), **target.connection_kwargs(), **options
        )
        client: redis.asyncio.Redis = sentinel.master_for(
            target.service, redis_class=_AsyncSentinelRedis
        )
        return client
    return redis.asyncio.Redis.from_url(plain_url(url), **options)


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A synchronous ``redis.Redis`` for any URL this package accepts (see async_client)."""
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = redis.sentinel.Sentinel(
            list(target.sentinels), **target.connection_kwargs(), **options
        )
        sync: redis.Redis = sentinel.master_for(target.service, redis_class=_SentinelRedis)
        return sync
    return redis.Redis.from_url(plain_url(url), **options)


_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|credential", re.IGNORECASE)


def ambiguous_url(parts: SplitResult) -> bool:
    """True if a password may have spilled out of the netloc (an unencoded ``/ ? #``)."""
    if parts.scheme not in SENTINEL_SCHEMES:  # a Sentinel URL lists several host:port
        try:
            parts.port  # noqa: B018 - raises ValueError for a non-numeric port
        except ValueError:
            return True
    return "@" in parts.path or "@" in parts.query or bool(parts.fragment)


def redact_url(url: str) -> str:
    """The URL with every credential redis-py would read replaced by ``***``, safe to log.

    Covers the password in ``user:password@`` and ``:password@``, a lone ``secret@`` (which
    redis-cli reads as a password), and query parameters such as ``?password=`` and
    ``?ssl_password=``. A URL whose password seems to contain an unencoded ``/``, ``?``
    or ``#`` is redacted whole after the scheme. The user name is kept.
    """
    parts = urlsplit(url)
    if ambiguous_url(parts):
        return f"{parts.scheme}://***"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if colon else f"***@{hostport}"
    query = "&".join(
        f"{name}=***" if _SECRET_PARAM.search(unquote_plus(name)) else f"{name}{eq}{value}"
        for name, eq, value in (item.partition("=") for item in parts.query.split("&"))
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
