"""The contenders and how a python-socketio server is built for each one.

python-socketio and the adapter are imported where a manager is built, not here: the
load-client process imports this module only for its names and should start in a blink.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socketio

ADAPTER = "adapter"
ADAPTER_NOMUX = "adapter-nomux"
ADAPTER_UVLOOP = "adapter-uvloop"
EMITTER = "emitter"
EMITTER_UVLOOP = "emitter-uvloop"
UVLOOP = "-uvloop"  # a contender name ending in this runs its process on uvloop
REDIS_MANAGER = "redismanager"
ASYNC_MANAGER = "asyncmanager"
RAW = "raw"
NODE = "node"
SHARDED = "sharded"
NODE_SHARDED = "node-sharded"

LABELS = {
    ADAPTER: "AsyncRedisAdapter",
    ADAPTER_NOMUX: "AsyncRedisAdapter (multiplexing off)",
    ADAPTER_UVLOOP: "AsyncRedisAdapter on uvloop",
    EMITTER: "AsyncEmitter",
    EMITTER_UVLOOP: "AsyncEmitter on uvloop",
    REDIS_MANAGER: "socketio.AsyncRedisManager",
    ASYNC_MANAGER: "socketio.AsyncManager (single process)",
    RAW: "raw redis-py pub/sub + hiredis (no socket.io)",
    NODE: "Node @socket.io/redis-adapter 8.3",
    SHARDED: "AsyncShardedRedisAdapter (dynamic)",
    NODE_SHARDED: "Node createShardedAdapter 8.3 (dynamic)",
}

EVENT = "m"
TEXT = "benchmark payload 0123456789"


def payload(seq: int, sent_at: float) -> dict[str, Any]:
    """The event argument every contender sends: a sequence number and a send timestamp."""
    return {"i": seq, "t": sent_at, "text": TEXT}


def base_contender(contender: str) -> str:
    """``contender`` without its event-loop suffix (``adapter-uvloop`` is ``adapter``)."""
    return contender.removesuffix(UVLOOP)


def build_manager(contender: str, redis_url: str, key: str) -> socketio.AsyncManager:
    """The client manager of ``contender`` on ``redis_url`` with channel prefix ``key``."""
    import socketio

    from socketio_redis_async import AsyncRedisAdapter, AsyncShardedRedisAdapter

    contender = base_contender(contender)
    if contender == ADAPTER:
        return AsyncRedisAdapter(redis_url, key=key)
    if contender == SHARDED:
        return AsyncShardedRedisAdapter(redis_url, channel_prefix=key)
    if contender == ADAPTER_NOMUX:
        return AsyncRedisAdapter(redis_url, key=key, with_channel_multiplexing=False)
    if contender == REDIS_MANAGER:
        return socketio.AsyncRedisManager(redis_url, channel=key)
    if contender == ASYNC_MANAGER:
        return socketio.AsyncManager()
    raise ValueError(f"not a python-socketio contender: {contender!r}")


async def start_manager(sio: socketio.AsyncServer, manager: socketio.AsyncManager) -> None:
    """Start listening before the first client connects (python-socketio does it lazily)."""
    from socketio_redis_async import AsyncRedisAdapter, AsyncShardedRedisAdapter

    if isinstance(manager, (AsyncRedisAdapter, AsyncShardedRedisAdapter)):
        await manager.start()
        return
    sio.manager_initialized = True
    manager.initialize()


async def stop_manager(manager: socketio.AsyncManager) -> None:
    """Close what the manager opened (only the adapter has something to close)."""
    from socketio_redis_async import AsyncRedisAdapter, AsyncShardedRedisAdapter

    if isinstance(manager, (AsyncRedisAdapter, AsyncShardedRedisAdapter)):
        await manager.aclose()
