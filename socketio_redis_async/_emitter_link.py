"""How an emitter's messages reach Redis: PUBLISH or SPUBLISH, or XADD for a stream entry.

An emitter that made its own client for SPUBLISH or XADD asks Redis once whether it is a
Redis Cluster, and then switches to redis-py's ``RedisCluster``, which sends each command
to the shard owning its channel or stream (PUBLISH reaches every node from any node).
Every failure is a ``PublishError``; the asyncio emitter bounds each call by its timeout.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from ._errors import PublishError
from ._protocol.wire import Outgoing, WireFormat
from ._transport.commands import aclose_client, redis_call, xadd


@dataclass(slots=True)
class Link:
    """The client an emitter and the emitters ``of()`` made from it publish with."""

    client: Any
    checked: bool  # False until an emitter's own client looked for a Redis Cluster
    url: str
    where: str
    timeout: float


def _command(wire: WireFormat, out: Outgoing) -> tuple[str | bytes, ...]:
    # As a command, not .spublish(): redis.asyncio.RedisCluster has that method only from
    # redis-py 8.0, and the cluster client routes SPUBLISH by its channel's slot anyway.
    if out.fields is not None:  # redis-py's cluster client wants the command name as a str
        return ("XADD", *xadd(out.target, out.fields, out.max_len)[1:])
    return (wire.publish_command, out.target, out.payload)


def _receivers(out: Outgoing, reply: Any) -> int:
    """PUBLISH's count of subscribers; 0 for an entry (servers read it when they read)."""
    return int(reply) if out.fields is None else 0


def send(link: Link, wire: WireFormat, out: Outgoing) -> int:
    """Send ``out`` with the synchronous client."""
    try:
        if not link.checked:
            link.checked = True
            if link.client.info("cluster").get("cluster_enabled"):
                link.client.close()
                link.client = redis.RedisCluster.from_url(link.url, socket_timeout=link.timeout)
        return _receivers(out, link.client.execute_command(*_command(wire, out)))
    except (redis.RedisError, OSError) as exc:
        raise PublishError(
            f"could not publish: Redis at {link.where}: {type(exc).__name__}: {exc}"
        ) from exc


async def send_async(link: Link, wire: WireFormat, out: Outgoing) -> int:
    """Send ``out`` with the asyncio client, bounded by the link's timeout."""
    bound = functools.partial(
        redis_call, what="could not publish", where=link.where, timeout=link.timeout
    )
    if not link.checked:
        info = await bound(link.client.info("cluster"), error=PublishError)
        link.checked = True
        if info.get("cluster_enabled"):
            await aclose_client(link.client, link.timeout)
            link.client = redis.asyncio.RedisCluster.from_url(link.url, socket_timeout=link.timeout)
    call = link.client.execute_command(*_command(wire, out))
    return _receivers(out, await bound(call, error=PublishError))
