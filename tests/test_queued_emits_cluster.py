"""``queued_emits=True`` on a real Redis Cluster (3 masters): the sharded adapter with rooms
on every shard, and the streams adapter (appends on the stream's shard, requests over
pub/sub). What a task queues and then awaits runs on Redis in that order, even across
connections to different nodes (compared by the time each master's MONITOR shows)."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import Client, Node, wait_until
from tests.monitor import monitored, sends, unretrieved
from tests.rediscluster import RedisCluster, owner_of
from tests.sharded import start_sharded
from tests.streams import start_streams

pytestmark = pytest.mark.anyio


def master_urls(cluster: RedisCluster) -> list[str]:
    """The URL of every master of ``cluster``."""
    text = str(cluster.command(cluster.alive[0], "CLUSTER", "NODES"))
    ports = {
        line.split()[1].split("@")[0].rsplit(":", 1)[1]
        for line in text.splitlines()
        if "master" in line.split()[2] and "fail" not in line.split()[2]
    }
    return [f"redis://127.0.0.1:{port}/0" for port in sorted(ports)]


async def _queue_then_ask(cluster: RedisCluster, a: Node, b: Node, rooms: list[str]) -> None:
    """A queues 600 broadcasts over ``rooms`` (their client is on B), then awaits a request:
    every broadcast runs, on whichever master, before the request; all arrive, in order."""
    client = await Client().connect(b)
    try:
        for room in rooms:
            await b.sio.enter_room(client.sid(), room)
        b.adapter.custom_hook = lambda data: "seen"
        marker = f"order-{uuid.uuid4().hex}"
        async with monitored(*master_urls(cluster)) as commands:
            for i in range(600):
                await a.sio.emit("tick", f"queued-{i}", to=rooms[i % len(rooms)])
            assert await a.adapter.custom_request(marker) == [None, "seen"]
            await wait_until(lambda: bool(sends(commands, marker)), timeout=10)
        ticks = sends(commands, "queued-")
        assert len(ticks) == 600
        assert max(t for t, _ in ticks) < sends(commands, marker)[0][0]
        got = await client.wait_for("tick", 600, timeout=30)
        for first in range(len(rooms)):  # each room's broadcasts in order
            mine = [args[0] for args in got if int(args[0].split("-")[1]) % len(rooms) == first]
            assert mine == [f"queued-{i}" for i in range(first, 600, len(rooms))]
    finally:
        await client.aclose()


@pytest.mark.timeout(120)
async def test_sharded_queued_emits_on_every_shard_run_before_an_awaited_request(
    redis_cluster: RedisCluster, key, caplog
):
    """Queued SPUBLISHes on three shards all run before a request awaited after them."""
    a = await start_sharded(redis_cluster.url(0), key, queued_emits=True)
    b = await start_sharded(redis_cluster.url(1), key)
    try:
        rooms = [f"room-{i}" for i in range(12)]
        assert len({owner_of(redis_cluster, f"{key}#/#{room}#") for room in rooms}) == 3
        await _queue_then_ask(redis_cluster, a, b, rooms)
        assert a.adapter.stats["publish_batches"] * 10 <= a.adapter.stats["published"]
        assert unretrieved(caplog) == []
    finally:
        await a.aclose()
        await b.aclose()


@pytest.mark.timeout(120)
async def test_streams_queued_emits_run_before_an_awaited_request(
    redis_cluster: RedisCluster, key, caplog
):
    """Queued XADDs all run before a pub/sub request awaited after them."""
    a = await start_streams(redis_cluster.url(0), key, queued_emits=True)
    b = await start_streams(redis_cluster.url(1), key)
    try:
        await _queue_then_ask(redis_cluster, a, b, ["r"])
        assert a.adapter.stats["queued_publish_failures"] == 0
        assert unretrieved(caplog) == []
    finally:
        await a.aclose()
        await b.aclose()
