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
ADAPTER_PLAIN = "adapter-plain"  # direct_writes=False: every packet through engine.io's queue
ADAPTER_UVLOOP = "adapter-uvloop"
EMITTER = "emitter"
EMITTER_UVLOOP = "emitter-uvloop"
UVLOOP = "-uvloop"  # a contender name ending in this runs its process on uvloop
QUEUED = "-queued"  # this package's adapter with queued_emits=True
REDIS_MANAGER = "redismanager"
ASYNC_MANAGER = "asyncmanager"
RAW = "raw"
NODE = "node"
SHARDED = "sharded"
NODE_SHARDED = "node-sharded"
STREAMS = "streams"
NODE_STREAMS = "node-streams"
ADAPTER_QUEUED = ADAPTER + QUEUED
SHARDED_QUEUED = SHARDED + QUEUED
STREAMS_QUEUED = STREAMS + QUEUED
CSR = "-csr"  # a streams contender with connection-state recovery on
STREAMS_CSR = STREAMS + CSR
NODE_STREAMS_CSR = NODE_STREAMS + CSR
NODE_CONTENDERS = (NODE, NODE_SHARDED, NODE_STREAMS, NODE_STREAMS_CSR)  # run by node_bench.js
# Broadcasts are entries of a Redis stream:
STREAMS_CONTENDERS = (STREAMS, STREAMS_QUEUED, STREAMS_CSR, NODE_STREAMS, NODE_STREAMS_CSR)
STREAM = "bench-stream"  # the stream of the streams contenders when none is given

LABELS = {
    ADAPTER: "AsyncRedisAdapter",
    ADAPTER_NOMUX: "AsyncRedisAdapter (multiplexing off)",
    ADAPTER_PLAIN: "AsyncRedisAdapter, direct_writes=False",
    ADAPTER_UVLOOP: "AsyncRedisAdapter on uvloop",
    EMITTER: "AsyncEmitter",
    EMITTER_UVLOOP: "AsyncEmitter on uvloop",
    REDIS_MANAGER: "socketio.AsyncRedisManager",
    ASYNC_MANAGER: "socketio.AsyncManager (single process)",
    RAW: "raw redis-py pub/sub + hiredis (no socket.io)",
    NODE: "Node @socket.io/redis-adapter 8.3",
    SHARDED: "AsyncShardedRedisAdapter (dynamic)",
    NODE_SHARDED: "Node createShardedAdapter 8.3 (dynamic)",
    STREAMS: "AsyncStreamsRedisAdapter",
    NODE_STREAMS: "Node @socket.io/redis-streams-adapter 0.3.1",
    ADAPTER_QUEUED: "AsyncRedisAdapter, queued_emits",
    SHARDED_QUEUED: "AsyncShardedRedisAdapter (dynamic), queued_emits",
    STREAMS_QUEUED: "AsyncStreamsRedisAdapter, queued_emits",
    STREAMS_CSR: "AsyncStreamsRedisAdapter, connection-state recovery",
    NODE_STREAMS_CSR: "Node @socket.io/redis-streams-adapter 0.3.1, connectionStateRecovery",
}

EVENT = "m"
TEXT = "benchmark payload 0123456789"


def payload(seq: int, sent_at: float) -> dict[str, Any]:
    """The event argument every contender sends: a sequence number and a send timestamp."""
    return {"i": seq, "t": sent_at, "text": TEXT}


def base_contender(contender: str) -> str:
    """``contender`` without its event-loop suffix (``adapter-uvloop`` is ``adapter``)."""
    return contender.removesuffix(UVLOOP)


def build_manager(
    contender: str, redis_url: str, key: str, stream: str = STREAM
) -> socketio.AsyncManager:
    """The client manager of ``contender`` on ``redis_url`` with channel prefix ``key``
    (and, for the streams adapter, broadcasts on the Redis stream ``stream``)."""
    import socketio

    from socketio_redis_async import (
        AsyncRedisAdapter,
        AsyncShardedRedisAdapter,
        AsyncStreamsRedisAdapter,
        ConnectionStateRecovery,
    )

    contender = base_contender(contender)
    if contender == STREAMS_CSR:
        return AsyncStreamsRedisAdapter(
            redis_url,
            stream_name=stream,
            channel_prefix=key,
            connection_state_recovery=ConnectionStateRecovery(),
        )
    queued = contender.endswith(QUEUED)
    contender = contender.removesuffix(QUEUED)
    if contender == ADAPTER:
        return AsyncRedisAdapter(redis_url, key=key, queued_emits=queued)
    if contender == SHARDED:
        return AsyncShardedRedisAdapter(redis_url, channel_prefix=key, queued_emits=queued)
    if contender == STREAMS:
        # Node's defaults otherwise: MAXLEN ~ 10,000, COUNT 100, BLOCK 5 s.
        return AsyncStreamsRedisAdapter(
            redis_url, stream_name=stream, channel_prefix=key, queued_emits=queued
        )
    if queued:
        raise ValueError(f"only this package's adapters queue emits, not {contender!r}")
    if contender == ADAPTER_NOMUX:
        return AsyncRedisAdapter(redis_url, key=key, with_channel_multiplexing=False)
    if contender == ADAPTER_PLAIN:
        return AsyncRedisAdapter(redis_url, key=key, direct_writes=False)
    if contender == REDIS_MANAGER:
        return socketio.AsyncRedisManager(redis_url, channel=key)
    if contender == ASYNC_MANAGER:
        return socketio.AsyncManager()
    raise ValueError(f"not a python-socketio contender: {contender!r}")


def adapter_classes() -> tuple[type[Any], ...]:
    """This package's adapters (classic, sharded, streams): they start and close."""
    from socketio_redis_async import (
        AsyncRedisAdapter,
        AsyncShardedRedisAdapter,
        AsyncStreamsRedisAdapter,
    )

    return (AsyncRedisAdapter, AsyncShardedRedisAdapter, AsyncStreamsRedisAdapter)


async def start_manager(sio: socketio.AsyncServer, manager: socketio.AsyncManager) -> None:
    """Start listening before the first client connects (python-socketio does it lazily).

    The adapters' ``start()`` returns once subscribed; the streams adapter's also once its
    reader knows where the stream ends, so no entry added after it is missed."""
    if isinstance(manager, adapter_classes()):
        await manager.start()
        return
    sio.manager_initialized = True
    manager.initialize()


async def stop_manager(manager: socketio.AsyncManager) -> None:
    """Close what the manager opened (only the adapters have something to close)."""
    if isinstance(manager, adapter_classes()):
        await manager.aclose()
