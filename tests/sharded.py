"""Test servers on AsyncShardedRedisAdapter, and raw access to sharded channels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio

from socketio_redis_async import AsyncShardedRedisAdapter
from tests.helpers import Node

MakeSharded = Callable[..., Awaitable[Node]]


async def start_sharded(url: str, prefix: str, mode: str = "dynamic", **options: Any) -> Node:
    """A python-socketio server on aiohttp whose manager is an AsyncShardedRedisAdapter."""
    return await Node.start(
        url, prefix, AsyncShardedRedisAdapter, subscription_mode=mode, **options
    )


async def shard_numsub(client: redis.asyncio.Redis, channel: str) -> int:
    """``PUBSUB SHARDNUMSUB`` of one channel on one (standalone) Redis."""
    reply = await client.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply[1])
