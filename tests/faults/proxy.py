"""A TCP proxy in front of a real redis-server that can corrupt one reply on demand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

import anyio

CORRUPT = b"?this is not RESP\r\n"  # '?' is no RESP type byte: hiredis raises ProtocolError


class RedisProxy:
    """Forwards 127.0.0.1:<port> to a redis-server; ``corrupt_next_publish_reply()`` makes
    the reply that follows the next PUBLISH on any connection arrive as garbage, once."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.corrupted = 0
        self._armed = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def corrupt_next_publish_reply(self) -> None:
        self._armed = True

    async def __aenter__(self) -> RedisProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        with anyio.fail_after(10):
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    def _own(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.add(client_w)
        try:
            redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        self._writers.add(redis_w)
        pending = [False]  # this connection's next reply is to be corrupted

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if self._armed and b"PUBLISH" in data:
                    self._armed = False
                    pending[0] = True
                redis_w.write(data)
                await redis_w.drain()
            redis_w.close()

        async def downstream() -> None:
            while data := await redis_r.read(65536):
                if pending[0]:
                    pending[0] = False
                    self.corrupted += 1
                    data = CORRUPT
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        self._own(_quietly(upstream()))
        self._own(_quietly(downstream()))


async def _quietly(coro: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        await coro
