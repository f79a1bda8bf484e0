"""Reading the subscriber's pub/sub connection: every reply parsed and acted on.

A message (``message``, ``smessage``, ``pmessage``) goes to the dispatcher; a
``subscribe``, ``ssubscribe`` or ``psubscribe`` reply confirms a subscription; an error
reply (NOPERM, NOAUTH...) is raised, so the subscriber starts over on a new connection;
a ``sunsubscribe`` nobody asked for means the slot moved to another node. There is no
per-read timeout: the watchdog covers silence, using ``last_read``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from .subscriptions import Subscriptions

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    hiredis = None  # type: ignore[assignment]

MessageHandler = Callable[[bytes, bytes, "bytes | None"], Awaitable[None]]
"""``handler(channel, payload, pattern)``: pattern is None for a plain SUBSCRIBE."""


class PubSubReader:
    """Reads a pub/sub connection until it fails, acting on every reply.

    ``dispatch`` gets every message, ``confirmed()`` is called after every confirmed
    subscription; ``last_read`` is the loop time of the last data read (0: never).
    """

    def __init__(
        self,
        channels: Subscriptions,
        patterns: Subscriptions,
        dispatch: MessageHandler,
        confirmed: Callable[[], None],
    ) -> None:
        self._channels = channels
        self._patterns = patterns
        self._dispatch = dispatch
        self._confirmed = confirmed
        self.last_read = 0.0

    async def read(self, conn: AbstractConnection) -> None:
        """Handle every reply on ``conn``; raises once it fails or Redis closes it."""
        # When redis-py exposes the connection's stream, parse it with our own hiredis
        # reader: every reply already in the buffer is handled in one tight loop, without
        # a coroutine chain per reply.
        stream = getattr(conn, "_reader", None)
        if hiredis is None or not isinstance(stream, asyncio.StreamReader):
            await self._read_replies(conn)
            return
        loop = asyncio.get_running_loop()
        parser = hiredis.Reader()
        while True:
            data = await stream.read(65536)
            if not data:
                raise ConnectionError("Redis closed the pub/sub connection")
            self.last_read = loop.time()
            parser.feed(data)
            while (response := parser.gets()) is not False:
                await self._handle(response)

    async def _read_replies(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            response = await conn.read_response()
            self.last_read = loop.time()
            await self._handle(response)

    async def _handle(self, response: Any) -> None:
        if isinstance(response, Exception):
            # An error reply (NOPERM, NOAUTH...): the command it answers had no effect, so
            # start over on a new connection, where everything is subscribed again.
            raise response if isinstance(response, ResponseError) else ResponseError(str(response))
        if not isinstance(response, list) or len(response) < 3:
            return
        kind = response[0]
        if kind == b"message" or kind == b"smessage":
            await self._dispatch(response[1], response[2], None)
        elif kind == b"pmessage" and len(response) == 4:
            await self._dispatch(response[2], response[3], response[1])
        elif kind == b"subscribe" or kind == b"ssubscribe":
            self._channels.confirm(response[1].decode())
            self._confirmed()
        elif kind == b"psubscribe":
            self._patterns.confirm(response[1].decode())
            self._confirmed()
        elif kind == b"sunsubscribe" and not self._channels.left(response[1].decode()):
            # Redis ended a sharded subscription: its slot moved to another node.
            raise ConnectionError(f"Redis ended the subscription of {response[1]!r}")
