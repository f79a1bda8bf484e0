"""Redis Sentinel: redis+sentinel:// URLs, and a master killed while broadcasting."""

from __future__ import annotations

import asyncio
import json

import anyio
import pytest
import redis.asyncio

from socketio_redis_async import AsyncEmitter, Emitter, RedisAdapterError
from tests.helpers import Node, run_cli, wait_numsub
from tests.sentinel import SentinelTopology

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sentinel():
    with SentinelTopology() as topology:
        await topology.wait_ready()
        yield topology


async def test_a_cluster_on_a_sentinel_url(sentinel, key, make_client):
    """Servers and both emitters on redis+sentinel:// broadcast, count and fetch as usual."""
    a, b = await Node.start(sentinel.url, key), await Node.start(sentinel.url, key)
    try:
        client = await make_client(b)
        await b.sio.enter_room(client.sid(), "room")
        await a.sio.emit("hello", 1, to="room")
        assert await client.wait_for("hello") == [[1]]
        assert await a.adapter.server_count() == 2
        assert [s.id for s in await a.adapter.fetch_sockets("room")] == [client.sid()]
        async with AsyncEmitter(sentinel.url, key=key) as emitter:
            await emitter.to("room").emit("from-async-emitter")
        assert await client.wait_for("from-async-emitter") == [[]]
        with Emitter(sentinel.url, key=key) as sync_emitter:
            await anyio.to_thread.run_sync(sync_emitter.to("room").emit, "from-emitter")
        assert await client.wait_for("from-emitter") == [[]]
        code, out, _ = await run_cli("servers", "--json", "--url", sentinel.url, "--key", key)
        assert code == 0
        assert json.loads(out)["count"] == 2
    finally:
        await a.aclose()
        await b.aclose()


async def test_failover_follows_the_new_master(sentinel, key, make_client, reliability):
    """kill -9 of the master mid-broadcast: both servers follow the promoted replica and
    delivery resumes; the gap and the messages lost are measured."""
    a, b = await Node.start(sentinel.url, key), await Node.start(sentinel.url, key)
    try:
        client = await make_client(b)
        await b.sio.enter_room(client.sid(), "room")
        sent: list[int] = []
        failed = 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        killed_at = 0.0

        async def emit_steadily() -> None:
            nonlocal failed
            i = 0
            while not stop.is_set():
                try:
                    await a.sio.emit("tick", i, to="room")
                    sent.append(i)
                except RedisAdapterError:
                    failed += 1
                i += 1
                await asyncio.sleep(0.02)  # a steady rate of about 50 messages per second

        async with anyio.create_task_group() as tg:
            tg.start_soon(emit_steadily)
            await client.wait_for("tick", count=20)
            old_port = sentinel.master.port
            killed_at = loop.time()
            sentinel.master.kill()
            with anyio.fail_after(45):
                while await sentinel.master_port() == old_port:
                    await anyio.sleep(0.1)
            new_port = await sentinel.master_port()
            assert new_port == sentinel.replica.port
            before = len(client.received("tick"))
            await client.wait_for("tick", count=before + 1, timeout=30)
            resumed_at = loop.time()
            stop.set()
        # A last message proves nothing is still in flight before counting.
        await a.sio.emit("last", to="room")
        await client.wait_for("last", timeout=10)
        received = {args[0] for args in client.received("tick")}
        lost = [i for i in sent if i not in received]

        # Both servers re-subscribed on the promoted replica.
        promoted = redis.asyncio.Redis(port=new_port)
        channel = f"{key}-request#/#"
        await wait_numsub(promoted, channel, 2)
        await promoted.aclose()

        gap = resumed_at - killed_at
        reliability.record(
            "sentinel_gap",
            gap,
            "s",
            "Sentinel failover (master kill -9, down-after 1 s): kill to first delivery",
            "delivery resumes (test waits at most 45 s + 30 s)",
        )
        reliability.record(
            "sentinel_lost",
            len(lost),
            "messages",
            "Sentinel failover: emits reported as sent (at ~50/s) that never arrived",
            "measured, not bounded: pub/sub is at-most-once",
        )
        reliability.record(
            "sentinel_failed",
            failed,
            "emits",
            "Sentinel failover: emits that raised PublishError during the failover",
            "every failed emit raises; none is silently dropped",
        )
    finally:
        await a.aclose()
        await b.aclose()
