"""The one boundary every Redis command other than the publisher's PUBLISH goes through.

Each call gets a time bound, and every failure leaves it as this package's own
``RedisCommandError`` (or the subclass the caller asks for), with the redis-py or OS
error chained and the URL redacted; nothing from redis-py escapes to the application.
Cancelling a redis-py command drops its connection (redis-py disconnects on any error
while reading a reply), so a timed-out command never leaves a stray reply behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from .._errors import RedisCommandError

T = TypeVar("T")


async def redis_call(
    call: Awaitable[T],
    *,
    what: str,
    where: str,
    timeout: float,
    error: type[RedisCommandError] = RedisCommandError,
) -> T:
    """Await ``call`` for at most ``timeout`` seconds; raise ``error`` on any Redis failure.

    ``what`` starts the message (``"PUBSUB NUMSUB failed"``); ``where`` is the redacted URL.
    """
    try:
        with anyio.fail_after(timeout):
            return await call
    except TimeoutError as exc:
        # anyio's bound expiring, or a socket timeout (both are TimeoutErrors).
        raise error(f"{what}: Redis at {where} did not answer within {timeout:g} s") from exc
    except (RedisError, OSError) as exc:
        raise error(f"{what}: Redis at {where}: {describe(exc)}") from exc


def describe(exc: BaseException) -> str:
    """``Type: message`` of an error, a task group's single error unwrapped."""
    while len(getattr(exc, "exceptions", ())) == 1:
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def drop_connection(conn: AbstractConnection) -> None:
    """Close ``conn`` at once, even while being cancelled.

    The transport is aborted rather than closed: a TLS close waits for the peer's
    close_notify, and a close still pending when the event loop ends leaks the socket.
    """
    _abort(conn)
    with anyio.CancelScope(shield=True):
        await conn.disconnect(nowait=True)


async def aclose_client(client: Redis | RedisCluster, timeout: float) -> None:
    """Close a client this package created: abort its pooled connections, then close it."""
    # A RedisCluster keeps its connections in each node (``_connections``).
    pools: list[Any] = (
        client.get_nodes() if isinstance(client, RedisCluster) else [client.connection_pool]
    )
    for pool in pools:
        for conn in [
            *getattr(pool, "_available_connections", ()),
            *getattr(pool, "_in_use_connections", ()),
            *getattr(pool, "_connections", ()),
        ]:
            _abort(conn)
    with anyio.CancelScope(shield=True), anyio.move_on_after(timeout):
        await client.aclose()


def _abort(conn: AbstractConnection) -> None:
    writer = getattr(conn, "_writer", None)
    if writer is not None:
        writer.transport.abort()


def pack_command(*args: bytes) -> bytes:
    """A command in the Redis protocol (an array of bulk strings)."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def xadd(stream: str, fields: tuple[bytes, ...], max_len: int) -> tuple[bytes, ...]:
    """``XADD stream MAXLEN ~ max_len * fields...``, as command arguments."""
    return (b"XADD", stream.encode(), b"MAXLEN", b"~", b"%d" % max_len, b"*", *fields)


async def read_replies(conn: AbstractConnection, count: int, parser: Any) -> list[Any]:
    """Read ``count`` replies; an error reply is returned (as its exception), not raised.

    ``parser``: a hiredis reader fed straight from the connection's stream when redis-py
    exposes it (no coroutine chain per reply), or None for redis-py's own parsing.
    """
    stream = getattr(conn, "_reader", None)
    replies: list[Any] = []
    if parser is None or not isinstance(stream, asyncio.StreamReader):
        for _ in range(count):
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    while len(replies) < count:
        reply = parser.gets()
        if reply is False:
            data = await stream.read(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            parser.feed(data)
        else:
            replies.append(reply)
    return replies
