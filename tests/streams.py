"""Test servers on AsyncStreamsRedisAdapter, and raw access to their streams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

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
