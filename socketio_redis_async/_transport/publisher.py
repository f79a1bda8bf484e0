"""Publishing to Redis: every PUBLISH waiting at the same moment goes out in one pipeline.

One writer task owns a dedicated connection. Callers queue their message and await their
own result, so a failed publish is raised to the caller that asked for it
(``PublishError``), never only logged. Messages queued while a batch is in flight are
sent together as the next batch: one write and one read for many messages, which keeps
Redis CPU per message low under load. Stream appends (XADD) queue in the same order.

Faults are bounded. Every message has a deadline (``publish_timeout`` after it was
queued); a batch that is not answered by its oldest message's deadline fails with
``PublishError``, and its connection is dropped (its reply stream is unknown), so the
next batch reconnects, the handshake included, within its own deadline. Any other error,
even an unexpected one such as a corrupt reply, fails only the batch it hit. The bytes
waiting (queued or in flight) are bounded too: past 4 x ``max_message_size`` a publish
fails at once instead of growing memory while Redis does not answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import anyio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    hiredis = None  # type: ignore[assignment]

from .._errors import AdapterClosedError, PublishError, RedisCommandError
from .commands import drop_connection, pack_command, read_replies
from .histogram import LatencyHistogram


class _Item(NamedTuple):
    channel: bytes
    payload: bytes
    future: asyncio.Future[Any]
    deadline: float
    command: bytes | None = None
    """Another command, packed (``channel`` is then its key); None for a publish."""


def check_size(payload: bytes, max_message_size: int, limit: int | None = None) -> None:
    """Raise ValueError if ``payload`` is larger than ``limit`` (default max_message_size)."""
    if len(payload) > (limit or max_message_size):
        raise ValueError(
            f"message of {len(payload)} bytes exceeds max_message_size={max_message_size}; "
            "send large data another way, or raise max_message_size on every server "
            "(Redis disconnects subscribers whose output buffer passes its pubsub limit)"
        )


class Publisher:
    """Coalesces PUBLISH (and XADD) commands on one dedicated Redis connection."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AbstractConnection]],
        *,
        max_message_size: int,
        where: str,
        timeout: float = 5.0,
        ready: Callable[[float], Awaitable[object]] | None = None,
        command: bytes = b"PUBLISH",
    ) -> None:
        self._connect = connect
        self._name = command.decode()
        self._command = b"*3\r\n$%d\r\n%b\r\n" % (len(command), command)
        self._max = max_message_size
        self._where = where
        self._timeout = timeout
        self._max_backlog = 4 * max_message_size  # bytes queued or in flight
        # Before reconnecting, wait (at most the given seconds) for this process's own
        # subscriptions: after a Redis restart, re-subscribe first, then publish.
        self._ready = ready
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
        self.failures = 0
        self.backlog_bytes = 0
        self.backlog_entries = 0
        self.last_error: tuple[float, str | None] = (0.0, None)  # (loop time, text)
        self.last_success = 0.0  # loop time of the last answered batch
        self.latency = LatencyHistogram()  # queued -> answered, per published message

    def check_size(self, payload: bytes, limit: int | None = None) -> None:
        check_size(payload, self._max, limit)

    async def publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        """PUBLISH ``payload`` (at most ``limit`` bytes, default max_message_size); how many
        subscribers received it. PublishError within ``timeout`` seconds if Redis does not
        answer, at once if more than 4 x ``max_message_size`` bytes are already waiting."""
        self.check_size(payload, limit)
        reply: int = await self._queued(channel.encode(), payload, None)
        return reply

    async def command(self, key: str, *args: bytes) -> Any:
        """Any other command (XADD...) on ``key``, in order with the publishes; its reply.
        Errors as ``publish``."""
        return await self._queued(key.encode(), b"", pack_command(*args))

    async def _queued(self, channel: bytes, payload: bytes, command: bytes | None) -> Any:
        if self._closed:
            raise AdapterClosedError("cannot publish: the adapter is closed")
        size = len(channel) + len(payload) + len(command or b"")
        if self.backlog_bytes + size > self._max_backlog and self.backlog_entries:
            error = PublishError(
                f"cannot publish to Redis at {self._where}: {self.backlog_bytes} bytes in "
                f"{self.backlog_entries} messages are already waiting for it (limit "
                f"{self._max_backlog} bytes, 4 x max_message_size); Redis is slow or "
                "unreachable"
            )
            self.failures += 1
            self.last_error = (self._now(), str(error))
            raise error
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Item(channel, payload, fut, loop.time() + self._timeout, command))
        self.backlog_bytes += size
        self.backlog_entries += 1
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="socketio-redis-async publisher")
        self._wake.set()
        return await fut

    async def aclose(self) -> None:
        """Send what is queued, refuse further publishes, close the connection."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._task is not None and not self._task.done():
                with anyio.move_on_after(self._timeout + 1):
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
                    await self._flush(batch)
                finally:
                    self.backlog_entries -= len(batch)
                    self.backlog_bytes -= sum(_size(i) for i in batch)
            self._idle.set()

    async def _flush(self, batch: list[_Item]) -> None:
        """Send one batch and settle every future in it, whatever happens."""
        now = asyncio.get_running_loop().time()
        live = [item for item in batch if not item.future.done()]
        late = [item for item in live if item.deadline <= now]
        if late:
            self._fail(late, self._timeout_error("waiting behind an unanswered batch"))
            live = [item for item in live if item.deadline > now]
        if not live:
            return
        try:
            with anyio.fail_after(min(item.deadline for item in live) - now):
                replies = await self._send(live)
        except TimeoutError as exc:
            await self._drop_connection()
            error = self._timeout_error("no answer")
            error.__cause__ = exc
            self._fail(live, error)
            return
        except PublishError as exc:
            self._fail(live, exc)
            return
        except Exception as exc:  # e.g. hiredis.ProtocolError on a corrupt reply
            error = PublishError(
                f"could not publish to Redis at {self._where}: {type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            self._fail(live, error)
            return
        except BaseException:
            self._fail(live, PublishError("publishing was cancelled"))
            raise
        self.last_success = answered = asyncio.get_running_loop().time()
        for item, reply in zip(live, replies, strict=True):
            if item.future.done():
                continue
            if isinstance(reply, int) or (item.command and not isinstance(reply, Exception)):
                self.latency.observe(answered - (item.deadline - self._timeout))
                item.future.set_result(reply)
            else:
                name = item.command.split(b"\r\n")[2].decode() if item.command else self._name
                self._fail([item], PublishError(f"Redis refused {name}: {reply}"))

    def _timeout_error(self, what: str) -> PublishError:
        return PublishError(
            f"could not publish to Redis at {self._where} within publish_timeout="
            f"{self._timeout:g} s ({what}); the connection is dropped and re-opened"
        )

    def _fail(self, batch: list[_Item], error: BaseException) -> None:
        if batch and isinstance(error, PublishError):
            self.last_error = (self._now(), str(error))
        for item in batch:
            if not item.future.done():
                if isinstance(error, PublishError):
                    self.failures += 1
                item.future.set_exception(error)

    async def _send(self, batch: list[_Item]) -> list[Any]:
        head = self._command
        packed = b"".join(
            item.command
            or b"%b$%d\r\n%b\r\n$%d\r\n%b\r\n"
            % (head, len(item.channel), item.channel, len(item.payload), item.payload)
            for item in batch
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
                if self._ready is not None:
                    # Redis is back: let this process re-subscribe before it publishes
                    # again, but never spend more than half of what is left waiting.
                    left = min(item.deadline for item in batch) - self._now()
                    await self._ready(min(left / 2, 2.0))
                await conn.send_packed_command(packed, check_health=False)
            replies = await read_replies(conn, len(batch), self._parser)
        except RedisCommandError as exc:  # from the bounded connect
            await self._drop_connection()
            raise PublishError(f"could not publish: {exc}") from exc.__cause__
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

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await drop_connection(conn)


def _size(item: _Item) -> int:
    return len(item.channel) + len(item.payload) + len(item.command or b"")
