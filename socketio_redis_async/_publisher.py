"""Publishing to Redis: every PUBLISH waiting at the same moment goes out in one pipeline.

One writer task owns a dedicated connection. Callers queue their message and await their
own result, so a failed publish is raised to the caller that asked for it
(``PublishError``), never only logged. Messages queued while a batch is in flight are
sent together as the next batch: one write and one read for many messages, which is what
keeps Redis CPU per message low under load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    hiredis = None  # type: ignore[assignment]

from ._errors import AdapterClosedError, PublishError

_Item = tuple[bytes, bytes, "asyncio.Future[int]"]


class Publisher:
    """Coalesces PUBLISH commands on one dedicated Redis connection."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AbstractConnection]],
        *,
        max_message_size: int,
        where: str,
    ) -> None:
        self._connect = connect
        self._max = max_message_size
        self._where = where
        self._conn: AbstractConnection | None = None
        self._parser: Any = None
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.published = 0

    def check_size(self, payload: bytes, limit: int | None = None) -> None:
        """Raise ValueError if ``payload`` is larger than ``limit`` (default: the configured
        max_message_size)."""
        if len(payload) > (limit or self._max):
            raise ValueError(
                f"message of {len(payload)} bytes exceeds max_message_size={self._max}; "
                "send large data another way, or raise max_message_size on every server "
                "(Redis disconnects subscribers whose output buffer passes its pubsub limit)"
            )

    async def publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        """PUBLISH ``payload`` (at most ``limit`` bytes, default max_message_size); return
        how many subscribers received it."""
        if self._closed:
            raise AdapterClosedError("cannot publish: the adapter is closed")
        self.check_size(payload, limit)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((channel.encode(), payload, fut))
        self._idle.clear()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()
        return await fut

    async def aclose(self) -> None:
        """Send what is queued, refuse further publishes, close the connection."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._task is not None and not self._task.done():
                with anyio.move_on_after(5):
                    await self._idle.wait()
            if self._task is not None:
                self._task.cancel()
                await asyncio.wait([self._task])
            self._fail(self._queue, AdapterClosedError("the adapter closed before publishing"))
            self._queue = []
            await self._drop_connection()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    replies = await self._send(batch)
                except PublishError as exc:
                    self._fail(batch, exc)
                    continue
                except BaseException:
                    self._fail(batch, PublishError("publishing was cancelled"))
                    raise
                for (_, _, fut), reply in zip(batch, replies, strict=True):
                    if fut.done():
                        continue
                    if isinstance(reply, int):
                        fut.set_result(reply)
                    else:
                        fut.set_exception(PublishError(f"Redis refused PUBLISH: {reply}"))
            self._idle.set()

    @staticmethod
    def _fail(batch: list[_Item], error: BaseException) -> None:
        for _, _, fut in batch:
            if not fut.done():
                fut.set_exception(error)

    async def _send(self, batch: list[_Item]) -> list[Any]:
        packed = b"".join(
            b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
            % (len(channel), channel, len(payload), payload)
            for channel, payload, _ in batch
        )
        try:
            conn = self._conn
            if conn is not None:
                try:
                    await conn.send_packed_command(packed, check_health=False)
                except (ConnectionError, OSError, RedisError):
                    # Nothing reached Redis on that stale connection: send once more.
                    await self._drop_connection()
                    conn = None
            if conn is None:
                conn = self._conn = await self._connect()
                self._parser = hiredis.Reader() if hiredis is not None else None
                await conn.send_packed_command(packed, check_health=False)
            replies = await self._replies(conn, len(batch))
        except (RedisError, OSError) as exc:
            await self._drop_connection()
            raise PublishError(
                f"could not publish to Redis at {self._where}: {type(exc).__name__}: {exc}"
            ) from exc
        except BaseException:
            await self._drop_connection()
            raise
        self.batches += 1
        self.published += len(batch)
        return replies

    async def _replies(self, conn: AbstractConnection, count: int) -> list[Any]:
        """Read ``count`` replies; error replies are returned, not raised."""
        stream = getattr(conn, "_reader", None)
        parser = self._parser
        if parser is None or not isinstance(stream, asyncio.StreamReader):
            replies: list[Any] = []
            for _ in range(count):
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            return replies
        replies = []
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

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)
