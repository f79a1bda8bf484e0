"""Test servers on AsyncStreamsRedisAdapter, and raw access to their streams."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import redis.asyncio

from socketio_redis_async import AsyncStreamsRedisAdapter
from tests.helpers import Node

MakeStreams = Callable[..., Awaitable[Node]]


async def start_streams(url: str, prefix: str, **options: Any) -> Node:
    """A python-socketio server on aiohttp whose manager is an AsyncStreamsRedisAdapter;
    its stream is named after ``prefix`` unless ``stream_name`` is given."""
    options.setdefault("stream_name", prefix)
    return await Node.start(url, prefix, AsyncStreamsRedisAdapter, **options)


async def reader_clients(client: redis.asyncio.Redis, node: Node) -> list[str]:
    """The ids of ``node``'s stream reader connections (named ``...:<uid>:streams``)."""
    uid = node.adapter.uid
    return [
        str(c["id"])
        for c in await client.client_list()
        if c.get("name", "").endswith(f":{uid}:streams")
    ]


async def kill_readers(client: redis.asyncio.Redis, node: Node) -> int:
    """Kill ``node``'s stream reader connections; how many there were."""
    ids = await reader_clients(client, node)
    for client_id in ids:
        await client.client_kill_filter(_id=client_id)
    return len(ids)


@contextlib.asynccontextmanager
async def reader_stalled(node: Node, sender: Node, event: Any) -> AsyncIterator[None]:
    """Inside: ``node``'s stream reader is stuck handling an entry (a long GC pause, a busy
    loop...), the one ``sender`` emits as ``event`` on entering; on leaving it goes on."""
    (reader,) = node.adapter._streams.readers
    handle, stalled, release = reader._on_entry, anyio.Event(), anyio.Event()

    async def stall(stream: bytes, entry_id: bytes, fields: list[bytes]) -> None:
        stalled.set()
        await release.wait()
        await handle(stream, entry_id, fields)

    reader._on_entry = stall
    try:
        await sender.sio.emit(*event)
        with anyio.fail_after(5):
            await stalled.wait()
        yield
    finally:
        reader._on_entry = handle
        release.set()
