"""A Redis Cluster node dies under a server: it moves to another node and hears again."""

from __future__ import annotations

import asyncio
import contextlib

import anyio
import pytest

from socketio_redis_async import PublishError
from tests.helpers import Node
from tests.rediscluster import RedisCluster

pytestmark = pytest.mark.anyio


async def test_killed_node_moves_subscriber_and_publisher(
    own_redis_cluster: RedisCluster, key, make_client, reliability
):
    """kill -9 of the node a server listens on: it re-subscribes elsewhere, both ways work."""
    cluster = own_redis_cluster
    a = await Node.start(cluster.url(0), key)
    b = await Node.start(cluster.url(4), key)
    try:
        ca, cb = await make_client(a), await make_client(b)
        await a.sio.emit("warm", 0)  # opens a's publishing connection (on node 0)
        assert await cb.wait_for("warm") == [[0]]
        home = cluster.node_of(f"socketio-redis-async:{a.adapter.uid}:sub")
        assert home is cluster.nodes[0]
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        cluster.kill(home)
        tick = 0
        with anyio.fail_after(20):
            while not ca.received("tick"):
                tick += 1
                await b.sio.emit("tick", tick)
                await asyncio.sleep(0.05)
        gap = loop.time() - killed_at
        moved = cluster.node_of(f"socketio-redis-async:{a.adapter.uid}:sub")
        assert moved is not home
        with anyio.fail_after(20):
            while not cb.received("back"):
                with contextlib.suppress(PublishError):  # may fail while the link moves
                    await a.sio.emit("back", 1)
                await asyncio.sleep(0.05)
        with anyio.fail_after(20):
            while await a.adapter.server_count() != 2:
                await asyncio.sleep(0.05)
        reliability.record(
            "cluster_node_kill_deaf_gap",
            gap,
            "s",
            "kill -9 of the Redis Cluster node a server subscribes on, until it hears "
            "broadcasts again (through another node)",
            "< 20 s (test bound)",
        )
    finally:
        await a.aclose()
        await b.aclose()


async def test_frozen_node_is_left_for_another(
    own_redis_cluster: RedisCluster, key, make_client, reliability
):
    """SIGSTOP of a server's node: its watchdog gives up on it and it listens elsewhere."""
    cluster = own_redis_cluster
    a = await Node.start(cluster.url(0), key, health_check_interval=0.5)
    b = await Node.start(cluster.url(4), key)
    try:
        ca = await make_client(a)
        home = cluster.node_of(f"socketio-redis-async:{a.adapter.uid}:sub")
        loop = asyncio.get_running_loop()
        frozen_at = loop.time()
        cluster.freeze(home)
        tick = 0
        with anyio.fail_after(20):
            while not ca.received("tick"):
                tick += 1
                await b.sio.emit("tick", tick)
                await asyncio.sleep(0.05)
        gap = loop.time() - frozen_at
        assert cluster.node_of(f"socketio-redis-async:{a.adapter.uid}:sub") is not home
        reliability.record(
            "cluster_node_freeze_deaf_gap",
            gap,
            "s",
            "SIGSTOP of the Redis Cluster node a server subscribes on "
            "(health_check_interval=0.5 s), until it hears broadcasts through another node",
            "< 20 s (test bound)",
        )
    finally:
        await a.aclose()
        await b.aclose()
