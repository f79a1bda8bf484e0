"""Publishing to Redis: every PUBLISH waiting at the same moment goes out in one pipeline.

Callers await their own result, so a failed publish is raised to the caller that asked
for it (``PublishError``), never only logged. Under load, publishes issued while a batch
is in flight are sent together as the next batch: one write and one read for many
messages, which is what keeps Redis CPU per message low.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ._errors import AdapterClosedError, PublishError

_Item = tuple[bytes, bytes, "asyncio.Future[int]"]


class Publisher:
    """Coalesces PUBLISH commands on one Redis client."""

    def __init__(self, client: Callable[[], Redis], *, max_message_size: int, where: str) -> None:
        self._client = client
        self._max = max_message_size
        self._where = where
        self._queue: list[_Item] = []
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
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())
        return await fut

    async def aclose(self) -> None:
        """Send what is queued, then refuse further publishes."""
        self._closed = True
        if self._task is not None:
            with anyio.CancelScope(shield=True):
                await asyncio.wait([self._task])

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                counts = await self._send(batch)
            except BaseException as exc:
                error = (
                    exc
                    if isinstance(exc, PublishError)
                    else PublishError(
                        f"could not publish to Redis at {self._where}: {type(exc).__name__}: {exc}"
                    )
                )
                for _, _, fut in batch + self._queue:
                    if not fut.done():
                        fut.set_exception(error)
                if not isinstance(exc, Exception):
                    self._queue.clear()
                    raise
                continue
            for (_, _, fut), count in zip(batch, counts, strict=True):
                if not fut.done():
                    fut.set_result(count)

    async def _send(self, batch: list[_Item]) -> list[int]:
        pool = self._client().connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            commands = [("PUBLISH", channel, payload) for channel, payload, _ in batch]
            try:
                await conn.send_packed_command(conn.pack_commands(commands))
            except (ConnectionError, OSError, RedisError):
                # Nothing reached Redis: safe to send once more on a fresh connection.
                await conn.disconnect()
                await conn.send_packed_command(conn.pack_commands(commands))
            counts = [await _read(conn.read_response()) for _ in batch]
        except BaseException as exc:
            await conn.disconnect()
            if isinstance(exc, (RedisError, OSError)):
                raise PublishError(
                    f"could not publish to Redis at {self._where}: {type(exc).__name__}: {exc}"
                ) from exc
            raise
        finally:
            await pool.release(conn)
        self.batches += 1
        self.published += len(batch)
        return counts


async def _read(response: Awaitable[object]) -> int:
    value = await response
    if isinstance(value, Exception):
        raise PublishError(f"Redis refused PUBLISH: {value}")
    if not isinstance(value, int):
        raise PublishError(f"unexpected answer to PUBLISH: {value!r:.40}")
    return value
