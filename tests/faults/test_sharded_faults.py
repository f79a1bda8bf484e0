"""AsyncShardedRedisAdapter under faults: slot moves, failovers and restarts of real Redis."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import anyio
import pytest
import trustme

from socketio_redis_async import PublishError
from socketio_redis_async._transport.shards import slot_of
from tests.helpers import Node, wait_until
from tests.rediscluster import RedisCluster, owner_of, require_cluster_tools
from tests.sharded import start_sharded

pytestmark = pytest.mark.anyio


async def test_a_moved_slot_ends_the_subscription_and_it_follows_the_slot(
    own_redis_cluster: RedisCluster, key, make_client
):
    """Moving a room channel's slot to another master makes Redis push ``sunsubscribe``;
    the server re-reads the slot map and subscribes on the new owner."""
    cluster = own_redis_cluster
    a = await start_sharded(cluster.url(0), key)
    b = await start_sharded(cluster.url(1), key)
    try:
        client = await make_client(b)
        await b.sio.enter_room(client.sid(), "room")
        channel = f"{key}#/#room#"
        source_id, source_port = owner_of(cluster, channel)
        target = next(
            node
            for node in cluster.alive
            if "master" in str(cluster.command(node, "ROLE")) and str(node.port) != source_port
        )
        target_id = str(cluster.command(target, "CLUSTER", "MYID"))
        slot = str(slot_of(channel))
        source = next(node for node in cluster.alive if str(node.port) == source_port)
        cluster.command(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        cluster.command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        for node in (target, source):
            cluster.command(node, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        await wait_until(lambda: owner_of(cluster, channel)[0] == target_id, 10)
        with anyio.fail_after(20):
            while not client.received("moved"):
                await a.sio.emit("moved", 1, to="room")
                await anyio.sleep(0.05)
        assert b.adapter.stats["reconnects"] >= 1  # the pushed sunsubscribe ended that link
    finally:
        await a.aclose()
        await b.aclose()


async def test_killing_the_master_of_a_room_fails_over_and_delivery_resumes(
    own_redis_cluster: RedisCluster, key, make_client, reliability
):
    """kill -9 of the master owning a room channel's slot while broadcasting: its replica
    takes over, both servers move there, and delivery resumes (the gap is measured)."""
    cluster = own_redis_cluster
    a = await start_sharded(cluster.url(0), key, health_check_interval=0.5)
    b = await start_sharded(cluster.url(1), key, health_check_interval=0.5)
    try:
        client = await make_client(b)
        await b.sio.enter_room(client.sid(), "room")
        _, port = owner_of(cluster, f"{key}#/#room#")
        victim = next(node for node in cluster.alive if str(node.port) == port)
        sent, failed, accepted = 0, 0, []
        await a.sio.emit("tick", 0, to="room")
        await client.wait_for("tick")
        killed = time.monotonic()
        cluster.kill(victim)
        resumed = None
        with anyio.fail_after(60):
            while resumed is None:
                sent += 1
                try:
                    await a.sio.emit("tick", sent, to="room")
                    accepted.append(sent)
                except PublishError:  # while the shard has no master
                    failed += 1
                await anyio.sleep(0.02)
                if any(args[0] > 0 for args in client.received("tick")):
                    resumed = time.monotonic() - killed
        reliability.record(
            "sharded_failover_gap",
            resumed,
            "s",
            "kill -9 of the master owning a room's slot (node timeout 1 s): until a broadcast "
            "to that room arrives again",
            "node timeout + election + a new owner's 1.5 s publish hold",
        )
        reliability.record(
            "sharded_failover_failed_emits",
            failed,
            "emits",
            f"Sharded failover: emits that raised PublishError ({sent} tried, one every 20 ms "
            "after the last one returned)",
            "every failed emit raises; none is silently dropped",
        )
        await a.sio.emit("after", 1, to="room")
        await client.wait_for("after")
        arrived = {args[0] for args in client.received("tick")}
        reliability.record(
            "sharded_failover_lost_emits",
            len(set(accepted) - arrived),
            "messages",
            "Sharded failover: emits that returned (Redis accepted the SPUBLISH) but never arrived",
            "measured, not bounded: pub/sub is at-most-once",
        )
        await wait_until(lambda: b.adapter.health().healthy, 10)
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_restarted_standalone_redis_is_subscribed_again(own_redis, key, make_client):
    """kill -9 and restart of a standalone Redis 7: every sharded channel, room channels
    included, is subscribed again and broadcasts flow."""
    a = await start_sharded(own_redis.url, key, health_check_interval=0.5)
    b = await start_sharded(own_redis.url, key, health_check_interval=0.5)
    try:
        client = await make_client(b)
        await b.sio.enter_room(client.sid(), "room")
        own_redis.kill()
        own_redis.start()
        with anyio.fail_after(20):
            while not client.received("back"):
                with contextlib.suppress(PublishError):  # until Redis is back
                    await a.sio.emit("back", 1, to="room")
                await anyio.sleep(0.05)
        await wait_until(lambda: b.adapter.health().healthy, 10)
        assert b.adapter.stats["reconnects"] >= 1
    finally:
        await a.aclose()
        await b.aclose()


@pytest.fixture
def tls_cluster(tmp_path) -> Iterator[RedisCluster]:
    """A Redis Cluster that speaks TLS only (clients, cluster bus and replication)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    files = tuple(str(tmp_path / name) for name in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(files[0])
    cert.private_key_pem.write_to_path(files[1])
    ca.cert_pem.write_to_path(files[2])
    with RedisCluster(require_cluster_tools(), tls=files) as cluster:  # type: ignore[arg-type]
        yield cluster


@pytest.mark.parametrize("protocol", ["classic", "sharded"])
async def test_on_a_tls_cluster_connections_move_over_tls(
    protocol, tls_cluster: RedisCluster, key, make_client
):
    """kill -9 of the master a server listens on, on a TLS-only cluster: the new
    connections (to another node, or to the promoted replica) use the same TLS settings."""
    cluster = tls_cluster
    _, port = owner_of(cluster, f"{key}#/#room#")
    victim = next(i for i, node in enumerate(cluster.nodes) if str(node.port) == port)
    other = next(
        i
        for i, node in enumerate(cluster.nodes)
        if i != victim and "master" in str(cluster.command(node, "ROLE"))
    )

    async def start(index: int) -> Node:
        url = cluster.url(index)
        if protocol == "classic":
            return await Node.start(url, key, health_check_interval=0.5)
        return await start_sharded(url, key, health_check_interval=0.5)

    a, b = await start(other), await start(victim)
    try:
        client = await make_client(b)
        await b.sio.enter_room(client.sid(), "room")
        await a.sio.emit("before", 1, to="room")
        await client.wait_for("before")
        cluster.kill(cluster.nodes[victim])
        with anyio.fail_after(60):
            while not client.received("after"):
                with contextlib.suppress(PublishError):
                    await a.sio.emit("after", 1, to="room")
                await anyio.sleep(0.05)
        await wait_until(lambda: b.adapter.health().healthy, 20)
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_restarted_cluster_is_subscribed_again_slot_by_slot(
    own_redis_cluster: RedisCluster, key, make_client
):
    """Every node of the cluster restarts: each server re-subscribes its room channels on
    all three shards, one slot per SSUBSCRIBE (node-redis 4.7 sends them all in one, gets
    CROSSSLOT and never subscribes again)."""
    cluster = own_redis_cluster
    a = await start_sharded(cluster.url(0), key, health_check_interval=0.5)
    b = await start_sharded(cluster.url(1), key, health_check_interval=0.5)
    try:
        client = await make_client(b)
        rooms = [f"room-{i}" for i in range(24)]
        for room in rooms:
            await b.sio.enter_room(client.sid(), room)
        for node in cluster.nodes:
            node.stop()
        for node in cluster.nodes:
            node.start()
        cluster.wait_ok(known=len(cluster.nodes))
        pending = set(rooms)
        with anyio.fail_after(60):
            while pending:
                for room in sorted(pending):
                    with contextlib.suppress(PublishError):
                        await a.sio.emit("back", room, to=room)
                await anyio.sleep(0.1)
                pending -= {args[0] for args in client.received("back")}
        await wait_until(lambda: b.adapter.health().healthy, 20)
    finally:
        await a.aclose()
        await b.aclose()
