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
fails at once instead of growing memory while Redis does not answer (``backlog``).

``publish_queued`` (the ``queued_emits`` option) returns once the message is queued, as
Node's adapters do: nobody awaits it, so its outcome goes to a ``Report`` callback, once
per batch; while the backlog is full it waits for room, at most ``timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    hiredis = None  # type: ignore[assignment]

from .._errors import AdapterClosedError, PublishError, RedisCommandError
from .backlog import Backlog, Item, Report
from .commands import drop_connection, pack_command, read_replies
from .histogram import LatencyHistogram

_YIELD_EVERY = 64  # queued messages the writer has not taken yet: give it a turn


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
        on_error: Callable[[PublishError], None] | None = None,
    ) -> None:
        """``on_error``: called with each error that failed messages (e.g. MOVED)."""
        self._connect = connect
        self._name = command.decode()
        self._command = b"*3\r\n$%d\r\n%b\r\n" % (len(command), command)
        self._max = max_message_size
        self._where = where
        self._timeout = timeout
        self._backlog = Backlog(4 * max_message_size, where=where, on_error=on_error)
        # Before reconnecting, wait (at most the given seconds) for this process's own
        # subscriptions: after a Redis restart, re-subscribe first, then publish.
        self._ready = ready
        self._conn: AbstractConnection | None = None
        self._parser: Any = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.published = 0
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

    async def publish_queued(self, channel: str, payload: bytes, report: Report) -> None:
        """Queue a PUBLISH and return without its reply: ``report(count, error)`` hears
        how it went. While the backlog is full, wait for room, at most ``timeout`` s:
        PublishError past that (the message was not queued)."""
        self.check_size(payload)
        await self._queue_only(channel.encode(), payload, None, report)

    async def command_queued(self, key: str, report: Report, *args: bytes) -> None:
        """Another command (XADD...), queued like ``publish_queued``."""
        await self._queue_only(key.encode(), b"", pack_command(*args), report)

    async def settle_queued(self) -> None:
        """Wait until every message queued so far is answered or failed (bounded)."""
        if self._backlog.unsettled:
            await self._backlog.settle(self._timeout + 1)

    @property
    def unsettled(self) -> int:
        """Queued messages (nobody awaits them) not answered yet."""
        return self._backlog.unsettled

    @property
    def backlog_bytes(self) -> int:
        return self._backlog.bytes

    @property
    def backlog_entries(self) -> int:
        return self._backlog.entries

    @property
    def failures(self) -> int:
        """Messages that failed with PublishError."""
        return self._backlog.failures

    @property
    def last_error(self) -> tuple[float, str | None]:
        """(loop time, text) of the last PublishError."""
        return self._backlog.last_error

    async def _queued(self, channel: bytes, payload: bytes, command: bytes | None) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._append(Item(channel, payload, fut, self._now() + self._timeout, command))
        return await fut

    async def _queue_only(
        self, channel: bytes, payload: bytes, command: bytes | None, report: Report
    ) -> None:
        size = len(channel) + len(payload) + len(command or b"")
        if self._backlog.full(size):
            await self._backlog.room(size, self._timeout)
        deadline = self._now() + self._timeout
        self._append(Item(channel, payload, None, deadline, command, report))
        if len(self._backlog.items) % _YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a loop that never yields: the writer's turn

    def _append(self, item: Item) -> None:
        self._backlog.append(item)
        self._idle.clear()
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="socketio-redis-async publisher")
        self._wake.set()

    async def aclose(self) -> None:
        """Send what is queued, refuse further publishes, close the connection."""
        self._closed = self._backlog.closed = True
        self._backlog.wake()  # who waits for room: the adapter is closed
        with anyio.CancelScope(shield=True):
            if self._task is not None and not self._task.done():
                with anyio.move_on_after(self._timeout + 1):
                    await self._idle.wait()
            if self._task is not None:
                self._task.cancel()
                await asyncio.wait([self._task])
            left = self._backlog.take()
            self._backlog.fail(left, AdapterClosedError("the adapter closed before publishing"))
            self._backlog.done(left)
            await self._drop_connection()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._backlog.items:
                batch = self._backlog.take()
                try:
                    await self._flush(batch)
                finally:
                    self._backlog.done(batch)
            self._idle.set()

    async def _flush(self, batch: list[Item]) -> None:
        """Send one batch and settle every future in it, whatever happens."""
        now = asyncio.get_running_loop().time()
        live = [item for item in batch if item.live]
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
        for item in self._backlog.accepted(live, replies, self._name):
            self.latency.observe(answered - (item.deadline - self._timeout))

    def _timeout_error(self, what: str) -> PublishError:
        return PublishError(
            f"could not publish to Redis at {self._where} within publish_timeout="
            f"{self._timeout:g} s ({what}); the connection is dropped and re-opened"
        )

    def _fail(self, batch: list[Item], error: BaseException) -> None:
        self._backlog.fail(batch, error)

    async def _send(self, batch: list[Item]) -> list[Any]:
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
