"""Reading streams: ``XREAD BLOCK`` on a dedicated connection, from the last entry handled.

One task reads a set of streams (one ``XREAD`` names them all) and hands each entry, in
order, to ``on_entry``. At its first connection it asks each stream for its last id and
its count of entries ever added (``XINFO STREAM``), and reads on from there: a server
sees what is added after it started, as Node's ``$`` does, but without Node's race
between the first ``XREAD`` and ``start()`` returning.

When the connection fails (killed, Redis paused, restarted, failed over), it reconnects
with a jittered backoff (Node re-polls at once, in a tight loop) and reads on from the
offsets it handled: whatever was added meanwhile is delivered, in order, once. Every
``XREAD`` is bounded by ``block`` plus the timeout, so a frozen Redis is noticed.

Gaps are reported, never silent: after each reconnect, after a full read (the server is
behind), and after handling a read took 10 ms or more, the next read is preceded in the
same write by an ``XINFO STREAM`` that compares what Redis still holds with what this
server handled; after a reconnect it also asks whether the entry at its offset still
exists. Entries trimmed (``MAXLEN``) before they were read, and entries Redis lost
(restarted without its data: the entry at the offset is gone), are logged and counted
by its ``ledger`` (see ``stream_gaps``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from .backoff import OutageLog, backoff_delay
from .base import OnEntry

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    hiredis = None  # type: ignore[assignment]
from .commands import describe, drop_connection, pack_command, read_replies
from .stream_gaps import FIRST as _FIRST
from .stream_gaps import GapLedger

LINGER = 0.001
"""The default of ``linger``: seconds a reader that found entries waiting lets the next
ones gather (asyncio sleeps a millisecond at least anyway)."""
BUSY = 0.0005
"""An XREAD answered this fast found its entries waiting: the stream is busy."""
CHECK_AFTER = 0.01
"""Handling a reply this long (seconds) makes the next read check its streams for a gap:
in less, only a ``max_len`` under about 2,000 could be overrun (at 200k entries/s)."""


def _fields(reply: list[Any]) -> dict[bytes, Any]:
    return dict(zip(reply[::2], reply[1::2], strict=False))


class StreamReader:
    """Reads ``streams`` from the entries it handled, across reconnects."""

    def __init__(
        self,
        streams: list[str],
        connect: Callable[[], Awaitable[AbstractConnection]],
        on_entry: OnEntry,
        *,
        read_count: int,
        block: float,
        timeout: float,
        where: str,
        logger: logging.Logger,
        on_change: Callable[[], None],
        start: bytes | None = None,
        linger: float = LINGER,
    ) -> None:
        """``start``: read every stream from this id (``0``: all it holds), not its end."""
        self._start = start
        self._linger = linger
        self._names = [s.encode() for s in streams]
        self._connect = connect
        self._on_entry = on_entry
        self._count = b"%d" % read_count
        self._read_count = read_count
        self._block = b"%d" % int(block * 1000)
        self._bound = block + timeout
        self._timeout = timeout
        self._logger = logger
        self._where = where
        self._outage = OutageLog(
            logger, where, "what other servers add meanwhile is read once it is back"
        )
        self._on_change = on_change
        self.offsets: dict[bytes, bytes] = {}
        """Per stream, the id of the last entry handled (``0-0``: none yet)."""
        self.ledger = GapLedger(logger)
        """Entries trimmed or lost before they were read (``gaps``, ``entries_lost``)."""
        self._behind: set[bytes] = set()  # streams to check for a gap before the next read
        self._handled: set[bytes] = set()  # streams that had entries in the last reply
        self._replied_at = 0.0
        self.ready = asyncio.Event()
        """Set once the start offsets are known: entries added from then on will be read."""
        self.connected = False
        self.entries_read = 0
        self.reconnects = 0
        self.handler_errors = 0
        self.last_error: str | None = None
        self.last_contact: float | None = None

    async def run(self) -> None:
        """Read until cancelled; never raises otherwise."""
        failures = 0
        while True:
            conn = None
            try:
                conn = await self._connect()
                self.reconnects += self.ready.is_set()
                await self._position(conn)
                self._set_connected(True)
                failures = 0
                while True:
                    await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.last_error = f"reading the streams at {self._where}: {describe(exc)}"
                self._set_connected(False)
                delay = backoff_delay(failures)
                self._outage.failed("lost the stream reader's link to", exc, delay, failures)
                await asyncio.sleep(delay)
            finally:
                if conn is not None:
                    await drop_connection(conn)

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            self._on_change()

    async def _calls(
        self, conn: AbstractConnection, bound: float, *commands: tuple[bytes, ...]
    ) -> list[Any]:
        """Send ``commands`` in one write; their replies, an error reply as its exception.

        Past ``bound`` seconds the connection is aborted, so the wait fails at once. The
        replies are parsed with a hiredis reader of our own when redis-py exposes the
        connection's stream (as the pub/sub reader does): no coroutine chain per reply.
        """
        loop = asyncio.get_running_loop()
        expired: list[bool] = []
        timer = loop.call_later(bound, _expire, conn, expired)
        try:
            await conn.send_packed_command(b"".join(map(_pack, commands)), check_health=False)
            parser = hiredis.Reader(replyError=ResponseError) if hiredis is not None else None
            replies = await read_replies(conn, len(commands), parser)
        except Exception as exc:
            if expired:
                raise TimeoutError(f"Redis did not answer within {bound:g} s") from exc
            raise
        finally:
            timer.cancel()
        self.last_contact = loop.time()
        return replies

    async def _info(self, conn: AbstractConnection, stream: bytes) -> dict[bytes, Any] | None:
        """``XINFO STREAM`` as a map; None when the stream does not exist (yet)."""
        return _info_of((await self._calls(conn, self._timeout, _xinfo(stream)))[0])

    async def _position(self, conn: AbstractConnection) -> None:
        """At the first connection, start at each stream's end; after a reconnect, check
        each stream for a gap, asking whether the entry at its offset still exists."""
        ranges = [
            (b"XRANGE", s, self.offsets.get(s, _FIRST), self.offsets.get(s, _FIRST))
            for s in self._names
        ]
        replies = await self._calls(conn, self._timeout, *map(_xinfo, self._names), *ranges)
        infos, held = replies[: len(self._names)], replies[len(self._names) :]
        for stream, reply, found in zip(self._names, infos, held, strict=True):
            info = _info_of(reply)
            if stream not in self.offsets:
                self.offsets[stream] = info[b"last-generated-id"] if info else _FIRST
                if self._start is not None and info:  # a replay: from there
                    self.offsets[stream] = self._start
                self.ledger.start(stream, info, replay=self._start is not None)
            else:
                exists = bool(found) and not isinstance(found, Exception)
                self.ledger.check(stream, self.offsets[stream], info, exists)
        self.ready.set()

    async def _read(self, conn: AbstractConnection) -> None:
        """One XREAD from the offsets, preceded (same write) by an XINFO of each stream that
        may be behind: Redis may have trimmed past this server's offset, and XREAD would
        skip that gap silently."""
        if asyncio.get_running_loop().time() - self._replied_at >= CHECK_AFTER:
            self._behind.update(self._handled)  # handling them took a while
        self._handled.clear()
        checked = sorted(self._behind)
        self._behind.clear()
        ids = [self.offsets[s] for s in self._names]
        xread = (b"XREAD", b"COUNT", self._count, b"BLOCK", self._block, b"STREAMS")
        asked = asyncio.get_running_loop().time()
        *infos, reply = await self._calls(
            conn, self._bound, *map(_xinfo, checked), (*xread, *self._names, *ids)
        )
        self._replied_at = asyncio.get_running_loop().time()
        for stream, info in zip(checked, infos, strict=True):
            self.ledger.check(stream, self.offsets[stream], _info_of(info), None)
        if isinstance(reply, Exception):
            raise reply
        for stream, entries in reply or ():
            for entry_id, fields in entries:
                self.offsets[stream] = entry_id
                self.ledger.handled(stream)
                self.entries_read += 1
                try:
                    await self._on_entry(stream, entry_id, fields)
                except Exception:
                    self.handler_errors += 1
                    self._logger.exception("error while handling entry %r of %r", entry_id, stream)
            self._handled.add(stream)
            if len(entries) >= self._read_count:
                self._behind.add(stream)
        if reply and self._linger and not self._behind and self._replied_at - asked < BUSY:
            # The entries were waiting when the XREAD came, fewer than a full read: the
            # stream is busier than this reader. Let the next ones gather for a moment, so
            # that one XREAD takes several (at max rate: a third of the reader's CPU and
            # half of Redis' per entry). A reader that waited for its entry reads again at
            # once: a quiet stream's latency does not change.
            await asyncio.sleep(self._linger)


def _expire(conn: AbstractConnection, expired: list[bool]) -> None:
    expired.append(True)
    writer = getattr(conn, "_writer", None)
    if writer is not None:
        writer.transport.abort()


def _xinfo(stream: bytes) -> tuple[bytes, ...]:
    return (b"XINFO", b"STREAM", stream)


def _pack(command: tuple[bytes, ...]) -> bytes:
    return pack_command(*command)


def _info_of(reply: Any) -> dict[bytes, Any] | None:
    """An ``XINFO STREAM`` reply as a map; None when the stream does not exist (yet)."""
    if isinstance(reply, ResponseError):
        if "no such key" in str(reply).lower():
            return None
        raise reply
    return _fields(reply)
