"""Namespaces and rooms that come and go leave no channel, map entry or memory behind."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import psutil
import pytest

from tests.helpers import Client, Node, plan_sizes, wait_until

pytestmark = pytest.mark.anyio

NAMESPACES = 10_000
ROOMS = 100_000
BATCH = 500
RSS_BOUND_MB = 16


def footprint(node: Node) -> dict[str, int]:
    """Sizes of every map that grows with namespaces, rooms or sockets."""
    adapter = node.adapter
    engine = adapter._engine
    return {
        **plan_sizes(engine.plan),
        "wanted_channels": len(engine.transport.subscriber.channels),
        "wanted_patterns": len(engine.transport.subscriber.patterns),
        "rooms": len(adapter.rooms),
        "socket_info": len(engine.local.info),
        "callbacks": len(adapter.callbacks),
        "pending_connect": len(adapter.pending_connect),
        "pending_disconnect": len(adapter.pending_disconnect),
        "tasks": len(engine._tasks),
    }


async def channels(redis_client: Any, key: str) -> set[bytes]:
    """Every channel under ``key`` that some client subscribes, as Redis sees it."""
    return set(await redis_client.pubsub_channels(f"{key}*"))


async def churn(node: Node, start: int) -> int:
    """Open NAMESPACES dynamic namespaces with one socket each, then close them all;
    return how many channels Redis had subscribed at the peak."""
    manager = node.adapter
    names = [f"/dyn{i}" for i in range(start, start + NAMESPACES)]
    sids: list[str] = []
    for first in range(0, NAMESPACES, BATCH):
        batch = names[first : first + BATCH]
        got = await asyncio.gather(*(manager.pre_connect(f"e{n}", n) for n in batch))
        for sid, nsp in zip(got, batch, strict=True):
            assert sid is not None
            await manager.connect(sid, nsp)
            sids.append(sid)
    assert len(manager._engine.plan) >= NAMESPACES
    peak = len(manager._engine.transport.subscriber.channels)
    for sid, nsp in zip(sids, names, strict=True):
        await manager.disconnect(sid, nsp, ignore_queue=True)
    return peak


def rss_mb() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


async def test_dynamic_namespaces_are_released(
    make_node, make_client, redis_client, key, reliability
):
    """10,000 dynamic namespaces coming and going, plus real clients and cluster requests on
    namespaces this server does not serve, leave PUBSUB CHANNELS, the maps and RSS at baseline."""
    a = await make_node(namespaces="*")
    b = await make_node(namespaces="*")
    base_channels = await channels(redis_client, key)
    base_maps = footprint(a)

    async def at_baseline() -> None:
        assert footprint(a) == base_maps
        await wait_for_baseline(lambda: channels(redis_client, key), base_channels)

    # Real clients on dynamic namespaces: served while connected, released after.
    clients = [await make_client(a, [f"/real{i}"]) for i in range(3)]
    await b.sio.emit("hello", 1, namespace="/real1")
    assert await clients[1].wait_for("hello", namespace="/real1") == [[1]]
    assert await b.adapter.server_count(namespace="/real1") == 1  # only a serves it
    for client in clients:
        await client.aclose()
    await wait_until(lambda: footprint(a) == base_maps, what="maps back at baseline")
    await at_baseline()

    # Cluster requests on a namespace only b serves: answered, and a does not keep it.
    other = await make_client(b, ["/elsewhere"])
    assert [s.id for s in await a.adapter.fetch_sockets(namespace="/elsewhere")] == [
        other.sid("/elsewhere")
    ]
    assert await a.adapter.clients(namespace="/elsewhere") == [other.sid("/elsewhere")]
    assert await a.adapter.server_count(namespace="/elsewhere") == 1
    assert await a.adapter.emit_with_ack("q", namespace="/elsewhere") == [None]
    await other.aclose()
    await at_baseline()

    peak = await churn(a, 0)  # warm-up: allocator arenas, dict sizes
    await at_baseline()
    before = rss_mb()
    peak = await churn(a, NAMESPACES)
    await at_baseline()
    growth = rss_mb() - before
    reliability.record(
        "namespaces.peak_channels",
        peak,
        "channels",
        f"channels subscribed by one server holding {NAMESPACES:,} dynamic namespaces",
    )
    reliability.record(
        "namespaces.rss_growth",
        round(growth, 1),
        "MB",
        f"RSS growth after {NAMESPACES:,} dynamic namespaces came and went (after a warm-up)",
        f"< {RSS_BOUND_MB} MB; channels and maps exactly at baseline",
    )
    assert growth < RSS_BOUND_MB
    # The server still works across the cluster after the churn.
    late = await make_client(a, ["/late"])
    await b.sio.emit("after", namespace="/late")
    assert await late.wait_for("after", namespace="/late") == [[]]


async def wait_for_baseline(read: Any, expected: Any, timeout: float = 10) -> None:
    """Poll the coroutine function ``read`` until it returns ``expected``."""
    got: Any = None

    async def check() -> bool:
        nonlocal got
        got = await read()
        return bool(got == expected)

    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            extra, missing = got - expected, expected - got
            raise AssertionError(f"not at baseline: {len(extra)} extra, {len(missing)} missing")
        await asyncio.sleep(0.02)


async def test_rooms_are_released(make_node, make_client, redis_client, key, reliability):
    """100,000 rooms joined and left by a real socket leave PUBSUB CHANNELS and the maps at
    baseline, and the rooms work across servers while they exist."""
    # sockets_join returns once Redis confirmed the room channels, or after requests_timeout:
    # the tests' 2 s is no bound for 100,000 SUBSCRIBEs on a loaded machine, and speed is
    # not what this test is about.
    a, b = await make_node(requests_timeout=60), await make_node(requests_timeout=60)
    client: Client = await make_client(a)
    sid = client.sid()
    base_channels = await channels(redis_client, key)
    base_maps = footprint(a)
    rooms = [f"r{i}" for i in range(ROOMS)]
    await a.adapter.sockets_join(rooms, to=sid)
    held = await channels(redis_client, key)
    assert len(held) == len(base_channels) + ROOMS
    await b.sio.emit("to-room", to=f"r{ROOMS - 1}")
    assert await client.wait_for("to-room") == [[]]
    await a.adapter.sockets_leave(rooms, to=sid)
    assert footprint(a) == base_maps
    await wait_for_baseline(lambda: channels(redis_client, key), base_channels)
    reliability.record(
        "rooms.peak_channels",
        len(held),
        "channels",
        f"channels Redis held for one server whose socket joined {ROOMS:,} rooms",
        "back to baseline once the rooms are left",
    )
