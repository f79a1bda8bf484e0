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

import anyio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

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
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.published = 0

    def check_size(self, payload: bytes) -> None:
        """Raise ValueError if ``payload`` is larger than the configured limit."""
        if len(payload) > self._max:
            raise ValueError(
                f"message of {len(payload)} bytes exceeds max_message_size={self._max}; "
                "send large data another way, or raise max_message_size on every server "
                "(Redis disconnects subscribers whose output buffer passes its pubsub limit)"
            )

    async def publish(self, channel: str, payload: bytes) -> int:
        """PUBLISH ``payload``; return how many subscribers received it."""
        if self._closed:
            raise AdapterClosedError("cannot publish: the adapter is closed")
        self.check_size(payload)
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
                    counts = await self._send(batch)
                except PublishError as exc:
                    self._fail(batch, exc)
                    continue
                except BaseException:
                    self._fail(batch, PublishError("publishing was cancelled"))
                    raise
                for (_, _, fut), count in zip(batch, counts, strict=True):
                    if not fut.done():
                        fut.set_result(count)
            self._idle.set()

    @staticmethod
    def _fail(batch: list[_Item], error: BaseException) -> None:
        for _, _, fut in batch:
            if not fut.done():
                fut.set_exception(error)

    async def _send(self, batch: list[_Item]) -> list[int]:
        commands = [("PUBLISH", channel, payload) for channel, payload, _ in batch]
        try:
            conn = self._conn
            if conn is not None:
                try:
                    await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                except (ConnectionError, OSError, RedisError):
                    # Nothing reached Redis on that stale connection: send once more.
                    await self._drop_connection()
                    conn = None
            if conn is None:
                conn = self._conn = await self._connect()
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            counts = [await conn.read_response() for _ in batch]
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
        return [count if isinstance(count, int) else 0 for count in counts]

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)
