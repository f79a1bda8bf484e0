"""Slow consumers: a client that stops reading is cut loose, healthy ones miss nothing.

The slow consumer is a raw TCP client with a 4 KiB receive buffer: it completes the
websocket, Engine.IO and Socket.IO handshakes, then never calls recv again, so the
kernel buffers fill and python-engineio's queue for it grows with every packet. The
servers' ping interval is set beyond the test's length, which is what a client that
still answers pings looks like to the server.
"""

from __future__ import annotations

import asyncio
import os

import anyio
import pytest

from socketio_redis_async._local.backlog import CHECK_EVERY, VOLATILE_BACKLOG
from tests.helpers import PAYLOAD, QUIET_PINGS, SlowConsumer, queue_of, wait_until

pytestmark = pytest.mark.anyio


def rss() -> int:
    """This process's resident memory in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_slow_consumer_is_disconnected_and_healthy_clients_get_everything(
    make_node, make_client, reliability
):
    """A client that stops reading is disconnected at max_socket_backlog; others get all."""
    limit, count = 200, 2000
    holder = await make_node(max_socket_backlog=limit, **QUIET_PINGS)
    source = await make_node(max_socket_backlog=limit, **QUIET_PINGS)
    reasons: list[tuple[str, str]] = []

    @holder.sio.on("disconnect")
    async def on_disconnect(sid: str, reason: str) -> None:
        reasons.append((sid, reason))

    slow = await SlowConsumer.connect(holder.port)
    healthy = [await make_client(holder, name=f"h{i}") for i in range(2)]
    healthy.append(await make_client(source, name="remote"))
    slow_sid = holder.sio.manager.sid_from_eio_sid(slow.eio_sid, "/")
    rss_before = rss()
    peak = 0
    rss_peak = rss_before

    async def watch() -> None:
        nonlocal peak, rss_peak
        while True:
            sock = holder.sio.eio.sockets.get(slow.eio_sid)
            peak = max(peak, sock.queue.qsize() if sock is not None else 0)
            rss_peak = max(rss_peak, rss())
            await asyncio.sleep(0.002)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            # A steady stream, half emitted on the holder, half arriving from Redis.
            for i in range(count):
                sender = holder if i % 2 else source
                await sender.sio.emit("m", [i, PAYLOAD])
                await asyncio.sleep(0.001)
            tg.cancel_scope.cancel()
        for client in healthy:
            got = await client.wait_for("m", count, timeout=60)
            assert sorted(args[0][0] for args in got) == list(range(count))
        await wait_until(lambda: slow.eio_sid not in holder.sio.eio.sockets, timeout=10)
        assert slow_sid not in holder.sids()
        assert (slow_sid, "server disconnect") in reasons
        assert holder.adapter.stats["slow_consumers_disconnected"] == 1
        assert source.adapter.stats["slow_consumers_disconnected"] == 0
        assert peak <= limit + CHECK_EVERY  # checked every CHECK_EVERY deliveries
        with anyio.fail_after(10):  # aiohttp: the TCP connection itself is aborted
            assert await slow.closed_by_server()
    finally:
        slow.close()
    reliability.record(
        "slow_consumer_peak_queue",
        peak,
        "packets",
        f"peak Engine.IO queue of a non-reading client ({count} x 4 KiB broadcasts)",
        f"<= max_socket_backlog + CHECK_EVERY ({limit} + {CHECK_EVERY})",
    )
    reliability.record(
        "slow_consumer_rss_growth",
        (rss_peak - rss_before) / 2**20,
        "MiB",
        "peak RSS growth of the process while the slow consumer was being fed",
    )


async def test_volatile_skips_backed_up_socket(make_node, make_client):
    """Volatile emits, local and from Redis, skip a backed-up socket; others get them."""
    holder = await make_node(**QUIET_PINGS)
    source = await make_node(**QUIET_PINGS)
    slow = await SlowConsumer.connect(holder.port)
    healthy = await make_client(holder, name="healthy")
    try:
        queue = queue_of(holder, slow.eio_sid)
        with anyio.fail_after(30):
            sent = 0
            while queue.qsize() < 2 * VOLATILE_BACKLOG:
                await holder.sio.emit("fill", PAYLOAD)
                sent += 1
                await asyncio.sleep(0.001)
        waiting = queue.qsize()
        await holder.adapter.of("/").volatile.emit("v-local")
        await source.adapter.of("/").volatile.emit("v-remote")
        await source.sio.emit("after")
        await healthy.wait_for("v-local")
        await healthy.wait_for("v-remote")
        await healthy.wait_for("after")
        # Only the non-volatile "after" joined the backed-up queue.
        assert queue.qsize() == waiting + 1
        assert holder.adapter.stats["volatile_skipped"] == 2
        assert len(healthy.received("fill")) == sent
    finally:
        slow.close()


async def test_a_burst_from_one_task_is_not_a_slow_consumer(make_node, make_client):
    """Emits in a loop that never yields exceed the limit briefly without a disconnect."""
    holder = await make_node(max_socket_backlog=50)
    client = await make_client(holder)
    for i in range(500):
        await holder.sio.emit("b", i, to=client.sid())
    got = await client.wait_for("b", 500, timeout=20)
    assert [args[0] for args in got] == list(range(500))
    assert holder.adapter.stats["slow_consumers_disconnected"] == 0
    assert not client.disconnected.is_set()


@pytest.mark.unit
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_max_socket_backlog_is_validated(bad):
    """max_socket_backlog takes a positive int or None, and says so."""
    from socketio_redis_async import AsyncRedisAdapter

    with pytest.raises((TypeError, ValueError), match="max_socket_backlog"):
        AsyncRedisAdapter(max_socket_backlog=bad)


async def test_close_true_on_a_slow_consumer_returns(make_node):
    """disconnect_sockets(close=True) on a client that stopped reading returns in bound."""
    holder = await make_node(max_socket_backlog=None, **QUIET_PINGS)
    slow = await SlowConsumer.connect(holder.port)
    try:
        queue = queue_of(holder, slow.eio_sid)
        with anyio.fail_after(30):
            while queue.qsize() < 2:
                await holder.sio.emit("fill", PAYLOAD)
                await asyncio.sleep(0.001)
        slow_sid = holder.sio.manager.sid_from_eio_sid(slow.eio_sid, "/")
        with anyio.fail_after(holder.adapter.requests_timeout + 5):
            await holder.adapter.disconnect_sockets(close=True, to=slow_sid)
        assert slow_sid not in holder.sids()
    finally:
        slow.close()
