"""Where sessions are kept and missed entries read: Redis, through the transport's
pipelined publisher on the shard that owns each key (one small interface, two backends:
this one and ``memory_store`` for a single process).

Writes are conditional: a server replaces or deletes a session only if Redis still holds
the value that server wrote last. So a socket that was recovered elsewhere (the client
came back before its old connection timed out) never has its new session overwritten or
deleted by the old connection's server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Entry = tuple[bytes, list[bytes]]
"""A stream entry: its id and its flat ``[field, value, ...]``."""

Command = Callable[..., Awaitable[Any]]
"""``command(key, *args)``: one Redis command on ``key``'s shard; its reply."""

_PUT = b"""local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[2] then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3]) end
return 0"""
_DROP = b"""if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0"""


class SessionStore(Protocol):
    """What recovery needs from Redis."""

    async def put(self, key: str, value: bytes, ttl_ms: int, previous: bytes | None) -> None:
        """Store ``value`` for ``ttl_ms``: unconditionally if ``previous`` is None, else
        only where the key is gone or still holds ``previous``."""

    async def drop(self, key: str, previous: bytes) -> None:
        """Delete the key if it still holds ``previous``."""

    async def get(self, key: str) -> bytes | None:
        """The stored value (kept: the restored socket's connection replaces it)."""

    async def entries(self, stream: str, start: str, end: str, count: int) -> list[Entry]:
        """``XRANGE stream start end COUNT count`` (``(id`` excludes ``id``)."""

    async def ever_trimmed(self, stream: str) -> bool:
        """Whether entries were ever deleted from ``stream`` (True when it cannot tell)."""


class RedisSessionStore:
    """``SessionStore`` on Redis commands."""

    def __init__(self, command: Command) -> None:
        self._command = command

    async def put(self, key: str, value: bytes, ttl_ms: int, previous: bytes | None) -> None:
        k = key.encode()
        if previous is None:
            await self._command(key, b"SET", k, value, b"PX", b"%d" % ttl_ms)
        else:
            await self._command(key, b"EVAL", _PUT, b"1", k, value, previous, b"%d" % ttl_ms)

    async def drop(self, key: str, previous: bytes) -> None:
        await self._command(key, b"EVAL", _DROP, b"1", key.encode(), previous)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._command(key, b"GET", key.encode())
        return value

    async def entries(self, stream: str, start: str, end: str, count: int) -> list[Entry]:
        reply = await self._command(
            stream,
            b"XRANGE",
            stream.encode(),
            start.encode(),
            end.encode(),
            b"COUNT",
            b"%d" % count,
        )
        return [(entry_id, list(fields)) for entry_id, fields in reply or []]

    async def ever_trimmed(self, stream: str) -> bool:
        try:
            reply = await self._command(stream, b"XINFO", b"STREAM", stream.encode())
        except Exception as exc:  # no such stream: nothing was ever in it
            if "no such key" in str(exc).lower():
                return False
            raise
        info = dict(zip(reply[::2], reply[1::2], strict=False))
        deleted = info.get(b"max-deleted-entry-id")  # Redis 7 and later
        return deleted is None or deleted != b"0-0"
