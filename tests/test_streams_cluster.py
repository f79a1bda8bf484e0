"""AsyncStreamsRedisAdapter and the streams emitter on a real Redis Cluster (3 shards)."""

from __future__ import annotations

import pytest

from socketio_redis_async import AsyncEmitter
from tests.rediscluster import RedisCluster, owner_of
from tests.streams import start_streams

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("sharded", [True, False], ids=["sharded-pubsub", "pubsub"])
async def test_servers_on_different_nodes_share_streams_on_every_shard(
    redis_cluster: RedisCluster, key, make_client, sharded
):
    """With 5 streams spread over the shards, servers on different nodes exchange
    broadcasts in several namespaces (the emitter's too), count each other, and answer
    fetch_sockets; each stream is appended to and read on the shard that owns it."""
    options = {"stream_count": 5, "use_sharded_pub_sub": sharded, "namespaces": "*"}
    a = await start_streams(redis_cluster.url(0), key, **options)
    b = await start_streams(redis_cluster.url(1), key, **options)
    try:
        namespaces = ["/", "/a", "/b", "/c", "/d", "/e"]
        client = await make_client(b, namespaces)
        owners = {owner_of(redis_cluster, a.adapter.stream_of(nsp)) for nsp in namespaces}
        assert len(owners) >= 2
        assert await a.adapter.server_count() == 2
        for nsp in namespaces:
            await a.sio.emit("hello", nsp, namespace=nsp)
        for nsp in namespaces:
            assert await client.wait_for("hello", namespace=nsp) == [[nsp]]
        assert {s.id for s in await a.adapter.fetch_sockets()} == {client.sid()}
        async with AsyncEmitter(
            redis_cluster.url(2), streams=True, stream_name=key, stream_count=5, key=key
        ) as emitter:
            for nsp in namespaces:
                await emitter.of(nsp).emit("from-emitter", nsp)
        for nsp in namespaces:
            assert await client.wait_for("from-emitter", namespace=nsp) == [[nsp]]
    finally:
        await a.aclose()
        await b.aclose()
