"""Connection-state recovery across servers, Python and Node both ways.

A real Node ``socket.io-client`` connects through ``tests/proxy.py`` to one server, joins
a room, gets data, receives a packet; its connection is cut and the proxy re-routed to
another server, while broadcasts go on (to all, to its room, to its sid, and some it must
not get). It must come back on the other server with the same sid, rooms and data, and
every packet it missed, once, in order; whichever server (Python or Node's streams adapter
0.3.1) stored the session and whichever restores it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
import redis.asyncio

from socketio_redis_async import AsyncEmitter
from socketio_redis_async._recovery.sessions import decode_session
from tests.helpers import start_server_process, stop_process
from tests.node_harness import CsrClient, NodeServer
from tests.proxy import Proxy
from tests.recovery import start_recovering

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@dataclass
class Side:
    """One server of the test, Python or Node, seen the same way."""

    port: int
    sids: Callable[[], Awaitable[set[str]]]
    join: Callable[[str, str], Awaitable[None]]
    set_data: Callable[[str, Any], Awaitable[None]]
    emit: Callable[..., Awaitable[None]]
    close: Callable[[], Awaitable[None]]


async def python_side(url: str, key: str) -> Side:
    node = await start_recovering(url, key)

    async def sids() -> set[str]:
        return node.sids()

    async def join(sid: str, room: str) -> None:
        await node.sio.enter_room(sid, room)

    async def set_data(sid: str, data: Any) -> None:
        node.adapter.set_socket_data(sid, data)

    async def emit(event: str, arg: Any, to: str | None = None, skip: str | None = None) -> None:
        await node.sio.emit(event, arg, to=to, skip_sid=skip)

    return Side(node.port, sids, join, set_data, emit, node.aclose)


async def node_side(url: str, key: str) -> Side:
    server = await NodeServer.start(
        url, key, streams=("--stream-name", key, "--read-count", "1", "--csr", "5000")
    )

    async def sids() -> set[str]:
        return {s["id"] for s in await server.cmd("localSockets")}

    async def join(sid: str, room: str) -> None:
        await server.cmd("join", sid=sid, room=room)

    async def set_data(sid: str, data: Any) -> None:
        await server.cmd("setData", sid=sid, data=data)

    async def emit(event: str, arg: Any, to: str | None = None, skip: str | None = None) -> None:
        targets: dict[str, Any] = {"to": [to]} if to else {}
        if skip:
            targets["except"] = [skip]
        await server.cmd("emit", event=event, args=[arg], **targets)

    return Side(server.port, sids, join, set_data, emit, server.aclose)


SIDES = {"py": python_side, "node": node_side}


@pytest.fixture
async def pair(request, redis_server, key) -> AsyncIterator[tuple[Side, Side]]:
    """(the server the client starts on, the one it comes back to)."""
    first, second = request.param
    a = await SIDES[first](redis_server.url, key)
    b = await SIDES[second](redis_server.url, key)
    yield a, b
    await a.close()
    await b.close()


async def wait_gone(side: Side, sid: str) -> None:
    """Until ``side`` no longer holds ``sid`` (polled: Node is another process)."""
    with anyio.fail_after(10):
        while sid in await side.sids():
            await anyio.sleep(0.02)


@pytest.mark.parametrize(
    "pair", [("py", "py"), ("node", "py"), ("py", "node")], indirect=True, ids="-to-".join
)
async def test_a_client_recovers_on_another_server(pair, redis_server, key):
    """Same sid, rooms and data, and the missed packets once, in order, on the other server."""
    a, b = pair
    async with Proxy(a.port) as proxy:
        client = await CsrClient.connect(proxy.url)
        try:
            sid = client.connects[0]["sid"]
            await a.join(sid, "room1")
            await a.set_data(sid, {"user": "u1"})
            await a.emit("e", 1)
            await client._wait_matching(1, 10, type="event", event="e")
            proxy.refusing = True
            proxy.cut()
            await client._wait_matching(1, 10, type="disconnect")
            await wait_gone(a, sid)
            proxy.route(b.port)
            emitter = AsyncEmitter(redis_server.url, streams=True, stream_name=key)
            try:
                await b.emit("e", 2)
                await emitter.to("room1").emit("e", 3)
                await a.emit("e", 4, to=sid)
                await b.emit("x", 0, to="room2")
                await a.emit("x", 1, skip="room1")
            finally:
                await emitter.aclose()
            proxy.refusing = False
            again = await client.wait_connects(2)
            assert again["sid"] == sid and again["recovered"] is True
            view = await client.call("whoami")
            assert (view["sid"], view["recovered"], view["data"]) == (sid, True, {"user": "u1"})
            assert view["rooms"] == sorted([sid, "room1"])
            await b.emit("e", 5)
            await client._wait_matching(5, 10, type="event", event="e")
            got = client.received("e")
            assert [args[0] for args in got] == [1, 2, 3, 4, 5]
            assert len({args[-1] for args in got}) == 5
            assert client.received("x") == []
        finally:
            await client.aclose()


async def stored_rooms(client: Any, sid: str) -> list[Any]:
    """The rooms in the stored session of ``sid``, sorted ([] if Redis holds none)."""
    async for name in client.scan_iter(match="sio:session:*"):
        raw = await client.get(name)
        if raw is not None and (session := decode_session(raw)).sid == sid:
            return sorted(session.rooms, key=str)
    return []


@pytest.mark.parametrize("target", ["py", "node"])
async def test_a_client_recovers_after_its_server_was_killed(target, redis_server, key):
    """The server holding the socket is SIGKILLed (no disconnect code runs): the client
    comes back on a Python or Node server with its sid and rooms, and what it missed."""
    dying = await start_server_process(redis_server.url, key, streams=True, csr=5)
    other = await SIDES[target](redis_server.url, key)
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with Proxy(int(dying.url.rsplit(":", 1)[1])) as proxy:
            csr = await CsrClient.connect(proxy.url)
            try:
                sid = csr.connects[0]["sid"]
                assert await csr.call("join", "room1") == "joined"
                await other.emit("e", 1)
                await csr._wait_matching(1, 10, type="event", event="e")
                with anyio.fail_after(10):  # the join is stored: nothing is left to write
                    while await stored_rooms(client, sid) != sorted([sid, "room1"]):
                        await anyio.sleep(0.02)
                proxy.refusing = True
                dying.proc.kill()
                await dying.proc.wait()
                proxy.cut()
                await other.emit("e", 2, to="room1")
                await other.emit("x", 0, to="room2")
                proxy.route(other.port)
                proxy.refusing = False
                again = await csr.wait_connects(2)
                assert again["sid"] == sid and again["recovered"] is True
                assert (await csr.call("whoami"))["rooms"] == sorted([sid, "room1"])
                await other.emit("e", 3)
                await csr._wait_matching(3, 10, type="event", event="e")
                assert [args[0] for args in csr.received("e")] == [1, 2, 3]
                assert csr.received("x") == []
            finally:
                await csr.aclose()
    finally:
        await client.aclose()
        await other.close()
        await stop_process(dying.proc, grace=0)
