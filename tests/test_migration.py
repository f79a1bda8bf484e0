"""A mixed fleet: python-socketio AsyncRedisManager servers next to bridged adapters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import redis.asyncio
import socketio
from aiohttp import web

from socketio_redis_async import AsyncRedisAdapter
from socketio_redis_async._cluster.bridge import decode
from socketio_redis_async._errors import MalformedMessage
from tests.helpers import NAMESPACES, Client, Node, disconnect_all, serve, wait_until

pytestmark = pytest.mark.anyio


class OldNode:
    """A python-socketio AsyncServer with AsyncRedisManager, served by aiohttp."""

    def __init__(self, sio: socketio.AsyncServer, runner: web.AppRunner, port: int) -> None:
        self.sio = sio
        self.runner = runner
        self.url = f"http://127.0.0.1:{port}"

    @property
    def manager(self) -> Any:
        return self.sio.manager

    @classmethod
    async def start(cls, redis_url: str, channel: str) -> OldNode:
        manager = socketio.AsyncRedisManager(redis_url, channel=channel)
        sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=manager,
            namespaces=NAMESPACES,
            transports=["websocket"],
        )
        runner, port = await serve(sio)
        # Start listening now, not on the first connection (python-socketio's lazy start).
        sio.manager_initialized = True
        manager.initialize()
        return cls(sio, runner, port)

    def in_room(self, sid: str, room: str, namespace: str = "/") -> bool:
        return sid in self.manager.rooms.get(namespace, {}).get(room, {})

    async def aclose(self) -> None:
        await disconnect_all(self.sio)
        self.manager.thread.cancel()
        with contextlib.suppress(asyncio.CancelledError), anyio.fail_after(5):
            await self.manager.thread
        if self.manager.redis is not None:
            await self.manager.redis.aclose()
        await self.runner.cleanup()


class Fleet:
    """Old and new servers on one Redis channel pair, plus their clients."""

    def __init__(self, url: str, key: str, redis_client: redis.asyncio.Redis) -> None:
        self.url, self.key, self.redis = url, key, redis_client
        self.channel = f"sio-{uuid.uuid4().hex[:10]}"
        self.servers: list[Any] = []
        self.clients: list[Client] = []

    async def listeners(self) -> int:
        counts = await self.redis.pubsub_numsub(self.channel)
        return int(counts[0][1])

    async def _subscribed(self, expected: int) -> None:
        with anyio.fail_after(5):
            while await self.listeners() < expected:
                await asyncio.sleep(0.01)

    async def old(self) -> OldNode:
        before = await self.listeners()
        node = await OldNode.start(self.url, self.channel)
        self.servers.append(node)
        await self._subscribed(before + 1)
        return node

    async def new(self, **options: Any) -> Node:
        before = await self.listeners()
        node = await Node.start(self.url, self.key, bridge_channel=self.channel, **options)
        self.servers.append(node)
        await self._subscribed(before + 1)
        return node

    async def client(self, node: Any, namespaces: list[str] | None = None) -> Client:
        client = Client()
        self.clients.append(client)
        return await client.connect(node, namespaces)

    async def remove(self, node: Any) -> None:
        self.servers.remove(node)
        await node.aclose()

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        # Let the servers see those connections end; closing a server first waits for them.
        with anyio.move_on_after(5):
            while any(node.sio.eio.sockets for node in self.servers):
                await asyncio.sleep(0.01)
        for node in self.servers:
            await node.aclose()


@pytest.fixture
async def fleet(
    redis_server: Any, key: str, redis_client: redis.asyncio.Redis
) -> AsyncIterator[Fleet]:
    fleet = Fleet(redis_server.url, key, redis_client)
    try:
        yield fleet
    finally:
        await fleet.aclose()


async def settle_all(senders: list[Any], clients: list[Client]) -> None:
    """Each sender emits a marker to everyone; once all arrived, earlier emits have too."""
    for sender in senders:
        counts = [len(c.received("marker")) for c in clients]
        await sender.sio.emit("marker")
        for client, count in zip(clients, counts, strict=True):
            await client.wait_for("marker", count + 1)


async def test_broadcasts_and_room_emits_reach_every_client_once(fleet: Fleet) -> None:
    """Broadcasts and room emits from an old and a new server reach each client exactly once."""
    old, n1, n2 = await fleet.old(), await fleet.new(), await fleet.new()
    c_old, c1, c2 = [await fleet.client(n) for n in (old, n1, n2)]
    outsider = await fleet.client(n2)
    everyone = [c_old, c1, c2, outsider]
    await old.sio.emit("all", "from-old")
    await n1.sio.emit("all", "from-new")
    for node, client in ((old, c_old), (n1, c1), (n2, c2)):
        await node.sio.enter_room(client.sid(), "room")
    await old.sio.emit("roomed", "old", to="room")
    await n2.sio.emit("roomed", "new", to="room")
    await settle_all([old, n1, n2], everyone)
    for client in everyone:
        assert sorted(a[0] for a in client.received("all")) == ["from-new", "from-old"]
    for client in (c_old, c1, c2):
        assert sorted(a[0] for a in client.received("roomed")) == ["new", "old"]
    assert outsider.received("roomed") == []


async def test_emit_to_a_sid_on_the_other_kind_of_server(fleet: Fleet) -> None:
    """Old and new servers emit to a single socket on the other kind, in any namespace."""
    old, new = await fleet.old(), await fleet.new()
    c_old = await fleet.client(old, ["/", "/custom"])
    c_new = await fleet.client(new, ["/", "/custom"])
    await old.sio.emit("dm", "to-new", to=c_new.sid("/custom"), namespace="/custom")
    await new.sio.emit("dm", "to-old", to=c_old.sid("/custom"), namespace="/custom")
    assert await c_new.wait_for("dm", namespace="/custom") == [["to-new"]]
    assert await c_old.wait_for("dm", namespace="/custom") == [["to-old"]]
    await settle_all([old, new], [c_old, c_new])
    assert c_old.received("dm") == c_new.received("dm") == []  # not in "/"


async def test_skip_sid_across_kinds(fleet: Fleet) -> None:
    """A broadcast that skips a sid skips it on the other kind of server too."""
    old, new = await fleet.old(), await fleet.new()
    c_old, c_new = await fleet.client(old), await fleet.client(new)
    other_old, other_new = await fleet.client(old), await fleet.client(new)
    await new.sio.emit("skip", 1, skip_sid=c_old.sid())
    await old.sio.emit("skip", 2, skip_sid=c_new.sid())
    everyone = [c_old, c_new, other_old, other_new]
    await settle_all([old, new], everyone)
    assert (c_old.received("skip"), c_new.received("skip")) == ([[2]], [[1]])
    # Two servers emitted: each client may see them in either order, each exactly once.
    assert sorted(other_old.received("skip")) == sorted(other_new.received("skip")) == [[1], [2]]


async def test_binary_data_both_ways(fleet: Fleet) -> None:
    """Bytes nested in arguments survive python-socketio's base64 format both ways."""
    old, new = await fleet.old(), await fleet.new()
    c_old, c_new = await fleet.client(old), await fleet.client(new)
    await old.sio.emit("bin", ({"b": b"\x00\x01"}, [b"\xff", "t"]))
    await new.sio.emit("bin", ({"b": b"\x02"}, 3))
    expected = [[{"b": b"\x00\x01"}, [b"\xff", "t"]], [{"b": b"\x02"}, 3]]
    for client in (c_old, c_new):
        got = await client.wait_for("bin", 2)
        assert sorted(got, key=repr) == sorted(expected, key=repr)


async def test_remote_room_changes_and_close_room_both_ways(fleet: Fleet) -> None:
    """enter_room/leave_room of a remote sid and close_room apply across both kinds."""
    old, new = await fleet.old(), await fleet.new()
    c_old, c_new = await fleet.client(old), await fleet.client(new)
    await new.sio.enter_room(c_old.sid(), "vip")
    await wait_until(lambda: old.in_room(c_old.sid(), "vip"))
    await old.sio.enter_room(c_new.sid(), "vip")
    await wait_until(lambda: c_new.sid() in new.adapter.rooms["/"].get("vip", {}))
    await new.sio.leave_room(c_old.sid(), "vip")
    await wait_until(lambda: not old.in_room(c_old.sid(), "vip"))
    await old.sio.leave_room(c_new.sid(), "vip")
    await wait_until(lambda: c_new.sid() not in new.adapter.rooms["/"].get("vip", {}))
    for room, closer in (("c1", new), ("c2", old)):
        await old.sio.enter_room(c_old.sid(), room)
        await new.sio.enter_room(c_new.sid(), room)
        await closer.sio.close_room(room)
        await wait_until(lambda r=room: not old.in_room(c_old.sid(), r))  # type: ignore[misc]
        await wait_until(
            lambda r=room: c_new.sid() not in new.adapter.rooms["/"].get(r, {})  # type: ignore[misc]
        )


async def test_disconnect_a_remote_sid_both_ways(fleet: Fleet) -> None:
    """A server disconnects a socket held by the other kind of server."""
    old, new = await fleet.old(), await fleet.new()
    c_old, c_new = await fleet.client(old), await fleet.client(new)
    await new.sio.disconnect(c_old.sid())
    await old.sio.disconnect(c_new.sid())
    await c_old.wait_disconnected()
    await c_new.wait_disconnected()


async def test_callbacks_across_kinds(fleet: Fleet) -> None:
    """An old server's call() to a socket on a new server gets its ack, and vice versa."""
    old, new = await fleet.old(), await fleet.new()
    c_old, c_new = await fleet.client(old), await fleet.client(new)
    for client in (c_old, c_new):
        client.ack_value = lambda event, args, c=client: [c.name, *args]  # type: ignore[misc]
        client.name = "old" if client is c_old else "new"
    with anyio.fail_after(10):
        assert await old.sio.call("ask", "q1", to=c_new.sid(), timeout=5) == ["new", "q1"]
        assert await new.sio.call("ask", "q2", to=c_old.sid(), timeout=5) == ["old", "q2"]


async def test_write_only_manager_reaches_bridged_servers(fleet: Fleet) -> None:
    """An emit from a write-only AsyncRedisManager (a worker process) reaches bridged servers."""
    new = await fleet.new()
    client = await fleet.client(new)
    writer = socketio.AsyncRedisManager(fleet.url, channel=fleet.channel, write_only=True)
    try:
        await writer.emit("job", {"done": True}, room=client.sid())
        assert await client.wait_for("job") == [[{"done": True}]]
    finally:
        if writer.redis is not None:
            await writer.redis.aclose()


async def test_malformed_bridge_messages_are_dropped_and_counted(fleet: Fleet) -> None:
    """Garbage on the bridge channel is counted as dropped; the bridge keeps working."""
    old, new = await fleet.old(), await fleet.new()
    c_new = await fleet.client(new)
    bad = [
        b"not json",
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.",  # pickle (python-socketio < 5.14)
        b"[1]",
        json.dumps({"method": "nope", "host_id": "x"}).encode(),
        json.dumps({"method": "emit", "host_id": "x", "event": 3, "data": []}).encode(),
        json.dumps(
            {
                "method": "emit",
                "host_id": "x",
                "event": "e",
                "binary": True,
                "data": [[{"_placeholder": True, "num": 5}], "AA=="],
            }
        ).encode(),
        b'{"method":"emit","host_id":"x","event":"e","data":' + b"[" * 500 + b"]" * 500 + b"}",
        json.dumps({"method": "enter_room", "host_id": "x", "sid": 1, "room": "r"}).encode(),
    ]
    for payload in bad:
        await fleet.redis.publish(fleet.channel, payload)
    await old.sio.emit("after", 1)
    assert await c_new.wait_for("after") == [[1]]
    assert new.adapter.stats["dropped_messages"] == len(bad)


@pytest.mark.unit
def test_decode_pure() -> None:
    """decode() rebuilds binary args, drops bridged messages and rejects bad callbacks."""
    msg = decode(
        json.dumps(
            {
                "method": "emit",
                "host_id": "h",
                "event": "e",
                "binary": True,
                "data": [[{"_placeholder": True, "num": 0}, 2], "AQI="],
                "room": ["a", "b"],
                "skip_sid": "s",
            }
        ).encode()
    )
    assert msg is not None
    assert msg["args"] == ["e", b"\x01\x02", 2]
    assert (msg["rooms"], msg["skip"], msg["namespace"]) == (["a", "b"], ["s"], "/")
    marked = {"method": "emit", "host_id": "h", "socketio_redis_async": "u"}
    assert decode(json.dumps(marked).encode()) is None
    with pytest.raises(MalformedMessage):
        decode(
            json.dumps(
                {"method": "emit", "host_id": "h", "event": "e", "data": [], "callback": [1]}
            ).encode()
        )


@pytest.mark.unit
def test_bridge_channel_is_validated() -> None:
    """A bridge_channel that is not a plain channel name is refused with a hint."""
    for bad in ("", "a*", 3):
        with pytest.raises(ValueError, match="AsyncRedisManager"):
            AsyncRedisAdapter(bridge_channel=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="own channels"):
        AsyncRedisAdapter(key="k", bridge_channel="k#/#")
    with pytest.raises(TypeError, match="redis_options"):
        AsyncRedisAdapter(redis_options=[("a", 1)])  # type: ignore[arg-type]


async def test_redis_options_reach_the_clients(redis_server: Any) -> None:
    """redis_options are passed to the Redis clients the adapter creates."""
    adapter = AsyncRedisAdapter(redis_server.url, redis_options={"client_name": "opt-test"})
    try:
        assert adapter.pub_client.connection_pool.connection_kwargs["client_name"] == "opt-test"
        assert await adapter.pub_client.client_getname() in ("opt-test", b"opt-test")
    finally:
        await adapter.aclose()


async def test_rollover_loses_no_broadcast(fleet: Fleet) -> None:
    """Two old servers are replaced by two bridged ones under a steady broadcast stream:
    every client gets every broadcast sent while it was connected, exactly once."""
    o1, o2 = await fleet.old(), await fleet.old()
    co1, co2 = await fleet.client(o1), await fleet.client(o2)
    senders: list[Any] = [o1, o2]
    sent = 0
    lock = asyncio.Lock()
    stop = asyncio.Event()

    async def stream() -> None:
        nonlocal sent
        while not stop.is_set():
            async with lock:
                await senders[sent % len(senders)].sio.emit("tick", sent)
                sent += 1
            await asyncio.sleep(0.005)  # pacing of the stream, not a wait for a condition

    def ticks(client: Client) -> list[int]:
        return [args[0] for args in client.received("tick")]

    # Ticks come from several servers, so a client may see two of them in either order:
    # what counts is that each arrives, and only once.
    async def got_all(clients: list[Client], first: int, last: int) -> None:
        want = set(range(first, last))
        for client in clients:
            await wait_until(lambda c=client: want <= set(ticks(c)), timeout=10)  # type: ignore[misc]

    async def retire(node: OldNode, client: Client) -> None:
        async with lock:
            senders.remove(node)
            last = sent
        await got_all([client], 0, last)  # everything sent so far reached it
        # Ticks sent after ``last`` by the other servers may reach it too (its server is
        # still up): those are not lost, but none may come twice.
        received = ticks(client)
        assert sorted(t for t in received if t < last) == list(range(last)), "lost or duplicated"
        assert len(received) == len(set(received)), "duplicated"
        await fleet.remove(node)

    async with anyio.create_task_group() as tg:
        tg.start_soon(stream)
        await wait_until(lambda: sent >= 20)
        n1, n2 = await fleet.new(), await fleet.new()
        cn1, cn2 = await fleet.client(n1), await fleet.client(n2)
        first = sent
        async with lock:
            senders.extend([n1, n2])
        await wait_until(lambda: sent >= first + 40)
        await retire(o1, co1)
        await wait_until(lambda: sent >= first + 80)
        await retire(o2, co2)
        await wait_until(lambda: sent >= first + 120)
        stop.set()
    await got_all([cn1, cn2], first, sent)
    for client in (cn1, cn2):
        received = ticks(client)
        assert len(received) == len(set(received)), "duplicates"
        assert set(range(first, sent)) <= set(received)
