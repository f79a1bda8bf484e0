"""Frames written straight to idle aiohttp websockets: used where it is safe, in order,
and the plain engine.io path everywhere else (polling, ASGI, logging, other versions)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os

import pytest
import socketio

from socketio_redis_async._local import direct_writes
from socketio_redis_async._local.direct_writes import DirectWrites, verified_engineio
from tests.helpers import QUIET_PINGS, SlowConsumer, _read_frame, wait_until

pytestmark = pytest.mark.anyio
# The embedded Redis 6.2 (tests-embedded-redis) has no sharded pub/sub: no sharded case there.
KINDS = (
    ("classic",)
    if os.environ.get("SOCKETIO_REDIS_SERVER") == "embedded"
    else ("classic", "sharded")
)


@pytest.fixture
def no_burst_gap(monkeypatch):
    """Every packet may go direct, however close to the last: the paths are what is tested."""
    monkeypatch.setattr(direct_writes, "BURST_GAP", 0.0)


async def test_idle_websockets_get_broadcasts_directly_in_order(
    make_node, make_client, no_burst_gap
):
    """Local and cross-server broadcasts to websocket clients skip engine.io's queue, and
    each client gets every event once, in the order each server sent them."""
    a, b = await make_node(), await make_node()
    clients = [await make_client(b, name=f"c{i}") for i in range(3)]
    for i in range(100):
        await (a if i % 2 else b).sio.emit("n", i)
    for client in clients:
        got = [args[0] for args in await client.wait_for("n", 100)]
        assert sorted(got) == list(range(100))
        assert [i for i in got if i % 2] == list(range(1, 100, 2))  # a's, over Redis
        assert [i for i in got if not i % 2] == list(range(0, 100, 2))  # b's own
    assert b.adapter.stats["direct_writes"] >= 150


async def test_order_holds_when_packets_switch_paths(make_node, make_client, no_burst_gap):
    """An emit with an ack (always queued) between two plain emits: the first plain one
    goes direct, the second queues behind the ack; the client gets all in order."""
    node = await make_node()
    client = await make_client(node)
    client.ack_value = lambda event, args: args[0]
    acked: list[int] = []
    sid = client.sid()
    for i in range(0, 150, 3):
        await node.sio.emit("n", i, to=sid)
        await node.sio.emit("n", i + 1, to=sid, callback=acked.append)
        await node.sio.emit("n", i + 2, to=sid)
        await client.wait_for("n", i + 3)  # the writer is idle again
    assert client.received("n") == [[i] for i in range(150)]
    await wait_until(lambda: sorted(acked) == list(range(1, 150, 3)))
    assert node.adapter.stats["direct_writes"] == 50


async def test_a_reader_that_stalls_gets_everything_in_order_once_it_reads(make_node, no_burst_gap):
    """A client that stops reading fills its transport; its packets then queue behind the
    unfinished direct write, and once it reads again every frame arrives, in order."""
    node = await make_node(**QUIET_PINGS)
    slow = await SlowConsumer.connect(node.port)
    sock = node.sio.eio.sockets[slow.eio_sid]
    blob, count, peak = "y" * 8192, 400, 0
    try:
        for i in range(count):
            await node.sio.emit("n", [i, blob])
            peak = max(peak, sock.queue.qsize())
        assert peak > 0, "the stalled socket's packets never queued up"
        assert node.adapter.stats["direct_writes"] > 0
        got: list[int] = []
        while len(got) < count:
            frame = await asyncio.wait_for(_read_frame(slow.reader), 10)
            if frame.startswith("42"):
                got.append(json.loads(frame[2:])[1][0])
        assert got == list(range(count))
    finally:
        slow.close()
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(slow.writer.wait_closed(), 5)


async def test_a_connection_in_a_burst_takes_engineio_writer(make_node, make_client, monkeypatch):
    """Packets closer together than BURST_GAP go through engine.io's queue, whose writer
    sends what piled up back to back; only the first of the burst goes direct."""
    monkeypatch.setattr(direct_writes, "BURST_GAP", 3600.0)
    node = await make_node()
    client = await make_client(node)
    for i in range(30):
        await node.sio.emit("n", i)
        await client.wait_for("n", i + 1)  # the writer is idle again: only the gap decides
    assert client.received("n") == [[i] for i in range(30)]
    assert node.adapter.stats["direct_writes"] == 1


async def test_closed_connections_leave_nothing_behind(make_node, make_client, no_burst_gap):
    """Once a client is gone (and engine.io, whose ping and service tasks hold a socket up
    to a ping interval longer, lets go of it), the hook holds nothing of it."""
    node = await make_node(server_options={"ping_interval": 1, "ping_timeout": 1})
    direct = node.adapter._engine.delivery.direct
    for round_ in range(3):
        client = await make_client(node, name=f"c{round_}")
        await node.sio.emit("n", round_)
        await client.wait_for("n")
        await client.aclose()
        await wait_until(lambda: not node.sids() and not node.sio.eio.sockets)
    assert node.adapter.stats["direct_writes"] == 3

    def released() -> bool:  # engine.io's service task keeps its last-checked socket
        gc.collect()
        return len(direct._drivers) <= 1

    await wait_until(released, timeout=15)


async def test_polling_clients_take_the_plain_path(make_node):
    """A long-polling client gets every broadcast through engine.io's queue."""
    # A short ping interval: the client's disconnect waits for its pending long-poll.
    polling = {"transports": ["polling"], "ping_interval": 1, "ping_timeout": 1}
    node = await make_node(server_options=polling)
    got: list[int] = []
    client = socketio.AsyncClient(reconnection=False)
    client.on("n", got.append)
    await client.connect(node.url, transports=["polling"], wait_timeout=5)
    try:
        for i in range(20):
            await node.sio.emit("n", i)
        await wait_until(lambda: got == list(range(20)))
        assert node.adapter.stats["direct_writes"] == 0
    finally:
        await client.disconnect()


async def test_engineio_logging_keeps_the_plain_path(make_node, make_client, caplog):
    """With engine.io's packet log on, every packet goes through the queue and is logged."""
    node = await make_node(server_options={"engineio_logger": True})
    caplog.set_level(logging.INFO, logger="engineio.server")
    client = await make_client(node)
    for i in range(5):
        await node.sio.emit("n", i)
    assert await client.wait_for("n", 5) == [[i] for i in range(5)]
    assert node.adapter.stats["direct_writes"] == 0
    assert sum("Sending packet MESSAGE" in r.getMessage() for r in caplog.records) >= 5


async def test_an_unverified_engineio_falls_back_to_the_plain_path(
    make_node, make_client, monkeypatch
):
    """On a python-engineio the hook was not verified on, nothing is hooked and every
    broadcast still arrives."""
    monkeypatch.setattr(direct_writes, "version", lambda name: "4.99.0")
    node = await make_node()
    assert not node.adapter._engine.delivery.direct.enabled
    client = await make_client(node)
    for i in range(20):
        await node.sio.emit("n", i)
    assert await client.wait_for("n", 20) == [[i] for i in range(20)]
    assert node.adapter.stats["direct_writes"] == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_direct_writes_false_keeps_every_packet_on_the_plain_path(
    kind, make_node, make_sharded, make_client
):
    """direct_writes=False (classic and sharded adapters) hooks nothing; all arrives."""
    node = await (make_node if kind == "classic" else make_sharded)(direct_writes=False)
    assert not node.adapter._engine.delivery.direct.enabled
    client = await make_client(node)
    for i in range(20):
        await node.sio.emit("n", i)
    assert await client.wait_for("n", 20) == [[i] for i in range(20)]
    assert node.adapter.stats["direct_writes"] == 0


@pytest.mark.unit
def test_direct_writes_must_be_a_bool():
    """A direct_writes that is not a bool is refused, saying so."""
    from socketio_redis_async import AsyncRedisAdapter

    with pytest.raises(TypeError, match="direct_writes"):
        AsyncRedisAdapter(direct_writes="no")  # type: ignore[arg-type]


@pytest.mark.unit
def test_asgi_servers_are_left_alone():
    """An ASGI server's websocket factory is not hooked: the plain path serves it."""
    sio = socketio.AsyncServer(async_mode="asgi")
    before = sio.eio._async
    assert not DirectWrites(logging.getLogger("t")).install(sio)
    assert sio.eio._async is before


@pytest.mark.unit
@pytest.mark.parametrize(
    ("installed", "ok"),
    [("4.12.0", True), ("4.15.9", True), ("4.11.3", False), ("4.16.0", False), ("5", False)],
)
def test_only_verified_engineio_releases_are_hooked(installed, ok):
    """The version gate accepts 4.12.x to 4.15.x and nothing else."""
    assert verified_engineio(installed) is ok
