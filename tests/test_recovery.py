"""Connection-state recovery on Python streams servers, with real Node socket.io-clients.

Each client reaches its server through ``tests/proxy.py``: cutting the proxy's connections
is a lost network (the client reconnects by itself, with its pid and last offset), and
holding new connections keeps it away while the cluster goes on broadcasting.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio

from socketio_redis_async import AsyncEmitter
from tests.helpers import Node, wait_until
from tests.node_harness import CsrClient
from tests.proxy import Proxy
from tests.recovery import start_recovering

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture
async def py(redis_server, key) -> AsyncIterator[Node]:
    node = await start_recovering(redis_server.url, key)
    yield node
    await node.aclose()


async def offline(proxy: Proxy, client: CsrClient, server: Node, sid: str) -> None:
    """Cut the client's connection and keep it away until the server has dropped it."""
    proxy.refusing = True
    disconnects = len(client.matching(type="disconnect"))
    proxy.cut()
    await client._wait_matching(disconnects + 1, 10, type="disconnect")
    await wait_until(lambda: sid not in server.sids())


@contextlib.asynccontextmanager
async def dropped(py: Node) -> AsyncIterator[tuple[Proxy, CsrClient, str]]:
    """A client of ``py`` (through a proxy) that got one packet, then went offline."""
    async with Proxy(py.port) as proxy:
        client = await CsrClient.connect(proxy.url)
        try:
            sid = client.connects[0]["sid"]
            await py.sio.emit("e", 1)
            await client._wait_matching(1, 10, type="event", event="e")
            await offline(proxy, client, py, sid)
            yield proxy, client, sid
        finally:
            await client.aclose()


def offsets(received: list[list[object]]) -> list[str]:
    """The offsets (last arguments) of received packets."""
    return [str(args[-1]) for args in received]


async def test_a_dropped_client_gets_back_its_sid_rooms_data_and_missed_packets(
    py, redis_server, key
):
    """Same server: the sid, rooms and data come back, and the missed broadcasts to all,
    to its room and to its sid arrive once, in order, before new ones; others do not."""
    async with Proxy(py.port) as proxy:
        client = await CsrClient.connect(proxy.url)
        try:
            first = client.connects[0]
            sid = first["sid"]
            assert first["recovered"] is False
            await py.sio.enter_room(sid, "room1")
            py.adapter.set_socket_data(sid, {"user": "u1"})
            await py.sio.emit("e", 1)
            await client._wait_matching(1, 10, type="event", event="e")
            await offline(proxy, client, py, sid)
            emitter = AsyncEmitter(redis_server.url, streams=True, stream_name=key)
            try:
                await py.sio.emit("e", 2)
                await emitter.to("room1").emit("e", 3)
                await py.sio.emit("e", 4, to=sid)
                await py.sio.emit("x", 0, to="room2")
                await py.sio.emit("x", 1, skip_sid="room1")
                await emitter.except_("room1").emit("x", 2)
            finally:
                await emitter.aclose()
            proxy.refusing = False
            again = await client.wait_connects(2)
            assert again == {"type": "connect", "sid": sid, "recovered": True}
            assert await client.call("whoami") == {
                "sid": sid,
                "recovered": True,
                "rooms": sorted([sid, "room1"]),
                "data": {"user": "u1"},
            }
            await py.sio.emit("e", 5)
            await client._wait_matching(5, 10, type="event", event="e")
            got = client.received("e")
            assert [args[0] for args in got] == [1, 2, 3, 4, 5]
            assert len(set(offsets(got))) == 5
            assert client.received("x") == []
        finally:
            await client.aclose()


async def test_a_new_client_is_not_recovered_and_has_a_pid(py):
    """A first connection is a new session; leaving the namespace on purpose ends it."""
    async with Proxy(py.port) as proxy:
        client = await CsrClient.connect(proxy.url)
        try:
            sid = client.connects[0]["sid"]
            assert await client.call("whoami") == {
                "sid": sid,
                "recovered": False,
                "rooms": [sid],
                "data": None,
            }
            client.command("disconnect")
            await wait_until(lambda: sid not in py.sids())
            client.command("connect")
            again = await client.wait_connects(2)
            assert again["sid"] != sid and again["recovered"] is False
            assert py.adapter.stats["recovery_failures"] == 1
        finally:
            await client.aclose()


async def test_a_client_back_before_its_old_connection_timed_out_is_recovered(py):
    """The server still holds the old connection when the client comes back with its pid:
    the old socket is closed first, and the client recovers once, with one sid."""
    async with Proxy(py.port) as proxy:
        client = await CsrClient.connect(proxy.url)
        try:
            sid = client.connects[0]["sid"]
            await py.sio.emit("e", 1)
            await client._wait_matching(1, 10, type="event", event="e")
            proxy.refusing = True
            proxy.cut(client_side_only=True)
            await client._wait_matching(1, 10, type="disconnect")
            await py.sio.emit("e", 2)
            assert sid in py.sids()  # the server has not noticed
            proxy.refusing = False
            again = await client.wait_connects(2)
            assert again == {"type": "connect", "sid": sid, "recovered": True}
            assert py.sids() == {sid}
            await py.sio.emit("e", 3)
            await client._wait_matching(3, 10, type="event", event="e")
            assert [args[0] for args in client.received("e")] == [1, 2, 3]
        finally:
            await client.aclose()


async def test_a_client_back_after_the_window_gets_a_new_session(redis_server, key):
    """Past ``max_disconnection_duration`` the session is gone: a new sid, not recovered,
    and the failure is counted."""
    prefix = f"{key}:session:"
    py = await start_recovering(redis_server.url, key, window=0.5, session_key_prefix=prefix)
    client_redis = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with dropped(py) as (proxy, client, sid):
            with anyio.fail_after(10):  # the window passes: Redis expires the session
                while await client_redis.keys(prefix + "*"):
                    await anyio.sleep(0.05)
            proxy.refusing = False
            again = await client.wait_connects(2)
            assert again["sid"] != sid and again["recovered"] is False
            assert py.adapter._recovery.failures == {"no_session": 1}
    finally:
        await client_redis.aclose()
        await py.aclose()


async def test_a_client_whose_offset_was_trimmed_gets_a_new_session(redis_server, key):
    """Entries trimmed past the client's offset cannot be replayed: a new session."""
    py = await start_recovering(redis_server.url, key, max_len=10)
    try:
        async with dropped(py) as (proxy, client, sid):
            for n in range(300):  # MAXLEN ~ 10 trims whole nodes of 100 entries
                await py.sio.emit("e", n)
            proxy.refusing = False
            again = await client.wait_connects(2)
            assert again["sid"] != sid and again["recovered"] is False
            assert py.adapter._recovery.failures == {"offset_not_found": 1}
    finally:
        await py.aclose()


async def test_a_recovered_socket_the_connect_handler_refuses_loses_its_session(redis_server, key):
    """The connect handler still runs on recovery and may refuse: the client gets the
    refusal, the session is deleted, and its next attempt is a new session."""
    prefix = f"{key}:session:"
    py = await start_recovering(redis_server.url, key, session_key_prefix=prefix)
    refusing: list[bool] = []
    seen: list[bool] = []

    @py.sio.event
    async def connect(sid: str, environ: object, auth: object) -> bool:
        seen.append(py.adapter.recovered(sid))
        return not refusing

    client_redis = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with dropped(py) as (proxy, client, sid):
            refusing.append(True)
            proxy.refusing = False
            await client._wait_matching(1, 10, type="connect_error")
            assert seen == [False, True]  # the handler saw the recovery, and refused it
            with anyio.fail_after(5):
                while await client_redis.keys(prefix + "*"):
                    await anyio.sleep(0.02)
            refusing.clear()
            client.command("connect")
            again = await client.wait_connects(2)
            assert again["sid"] != sid and again["recovered"] is False
            assert py.adapter._recovery.failures == {"no_session": 1}
    finally:
        await client_redis.aclose()
        await py.aclose()
