"""AsyncShardedRedisAdapter and the sharded emitters on a real Redis Cluster (3 shards)."""

from __future__ import annotations

import json

import pytest

from socketio_redis_async import AsyncEmitter, Emitter
from tests.helpers import Node, run_cli
from tests.rediscluster import RedisCluster, owner_of
from tests.sharded import start_sharded

pytestmark = pytest.mark.anyio


async def test_servers_on_different_nodes_share_rooms_on_every_shard(
    redis_cluster: RedisCluster, key, make_client
):
    """Rooms spread over all three shards (subscribed slot by slot, so no CROSSSLOT), and
    servers are counted over every master."""
    a = await start_sharded(redis_cluster.url(0), key)
    b = await start_sharded(redis_cluster.url(1), key)
    try:
        client = await make_client(b)
        rooms = [f"room-{i}" for i in range(24)]
        for room in rooms:
            await b.sio.enter_room(client.sid(), room)
        owners = {owner_of(redis_cluster, f"{key}#/#{room}#") for room in rooms}
        assert len(owners) == 3
        assert await a.adapter.server_count() == 2
        for room in rooms:
            await a.sio.emit("hello", room, to=room)
        await client.wait_for("hello", len(rooms))
        assert {s.id for s in await a.adapter.fetch_sockets()} == {client.sid()}
    finally:
        await a.aclose()
        await b.aclose()


async def test_sharded_emitters_reach_rooms_on_every_shard(
    redis_cluster: RedisCluster, key, make_client
):
    """Emitter and AsyncEmitter with sharded=True find the cluster and SPUBLISH each room's
    broadcast on its own shard (Node's emitter cannot talk to sharded servers at all)."""
    node = await start_sharded(redis_cluster.url(2), key)
    try:
        client = await make_client(node)
        rooms = [f"room-{i}" for i in range(12)]
        for room in rooms:
            await node.sio.enter_room(client.sid(), room)
        with Emitter(redis_cluster.url(0), key=key, sharded=True) as emitter:
            for room in rooms:
                assert emitter.to(room).emit("sync", room) == 1
        async with AsyncEmitter(redis_cluster.url(1), key=key, sharded=True) as aemitter:
            for room in rooms:
                assert await aemitter.to(room).emit("async", room) == 1
            await aemitter.sockets_join("all-joined")
        await client.wait_for("sync", len(rooms))
        await client.wait_for("async", len(rooms))
        assert {args[0] for args in client.received("sync")} == set(rooms)
    finally:
        await node.aclose()


async def test_the_cli_counts_servers_over_every_node(redis_cluster: RedisCluster, key):
    """socketio-redis servers sums over the cluster's nodes, for classic servers subscribed
    on three different nodes and for sharded servers (SHARDNUMSUB over the masters)."""
    classic = [await Node.start(redis_cluster.url(i), key) for i in (0, 1, 2)]
    shards = [await start_sharded(redis_cluster.url(i), f"{key}s") for i in (0, 2)]
    try:
        code, out, err = await run_cli(
            "servers", "--json", "--url", redis_cluster.url(1), "--key", key
        )
        assert (code, err, json.loads(out)["count"]) == (0, "", 3)
        code, out, err = await run_cli(
            "servers", "--json", "--sharded", "--url", redis_cluster.url(1), "--key", f"{key}s"
        )
        assert (code, err) == (0, "")
        assert json.loads(out) == {"count": 2, "uids": sorted(n.adapter.uid for n in shards)}
    finally:
        for node in classic + shards:
            await node.aclose()
