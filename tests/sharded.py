"""Test servers on AsyncShardedRedisAdapter, and raw access to sharded channels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio
import socketio

from socketio_redis_async import AsyncShardedRedisAdapter
from tests.helpers import NAMESPACES, Node, serve

MakeSharded = Callable[..., Awaitable[Node]]


async def start_sharded(url: str, prefix: str, mode: str = "dynamic", **options: Any) -> Node:
    """A python-socketio server on aiohttp whose manager is an AsyncShardedRedisAdapter."""
    options.setdefault("requests_timeout", 2)
    adapter = AsyncShardedRedisAdapter(
        url, channel_prefix=prefix, subscription_mode=mode, **options
    )
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=adapter,
        namespaces=NAMESPACES,
        transports=["websocket"],
    )
    runner, port = await serve(sio)
    try:
        await adapter.start()
    except BaseException:
        await adapter.aclose()
        await runner.cleanup()
        raise
    return Node(sio, adapter, runner, port)


async def shard_numsub(client: redis.asyncio.Redis, channel: str) -> int:
    """``PUBSUB SHARDNUMSUB`` of one channel on one (standalone) Redis."""
    reply = await client.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply[1])
