"""What Redis runs, as MONITOR shows it: for tests of the order in which commands arrive."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import redis.asyncio


@contextlib.asynccontextmanager
async def monitored(*urls: str) -> AsyncIterator[list[tuple[float, str]]]:
    """Inside: every command the Redis servers at ``urls`` run, as (their time, the
    command line MONITOR shows), in the order each server ran them."""
    seen: list[tuple[float, str]] = []
    clients = [redis.asyncio.Redis.from_url(url) for url in urls]
    monitors = [client.monitor() for client in clients]

    async def read(monitor: Any) -> None:
        while True:
            line = await monitor.connection.read_response()
            text = line.decode(errors="replace") if isinstance(line, bytes) else str(line)
            stamp, _, command = text.partition(" ")
            seen.append((float(stamp), command))

    try:
        async with contextlib.AsyncExitStack() as stack:
            for monitor in monitors:
                await stack.enter_async_context(monitor)
            async with anyio.create_task_group() as tg:
                for monitor in monitors:
                    tg.start_soon(read, monitor)
                try:
                    yield seen
                finally:
                    tg.cancel_scope.cancel()
    finally:
        for client in clients:
            await client.aclose()


def sends(commands: list[tuple[float, str]], text: str) -> list[tuple[float, str]]:
    """The PUBLISH, SPUBLISH and XADD commands that carry ``text``."""
    verbs = ('"PUBLISH"', '"SPUBLISH"', '"XADD"', '"publish"', '"spublish"', '"xadd"')
    return [(t, c) for t, c in commands if text in c and any(v in c for v in verbs)]


def unretrieved(caplog: pytest.LogCaptureFixture) -> list[str]:
    """asyncio's complaints about futures whose exception nobody retrieved."""
    gc.collect()
    return [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
