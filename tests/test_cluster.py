"""Cluster-wide queries and operations between several real Python servers."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from socketio_redis_async import RequestTimeoutError
from tests.helpers import Client, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
async def three(make_node, make_client):
    """Three servers a, b, c with one client each; client of b is in room 'shared'."""
    a, b, c = await make_node(), await make_node(), await make_node()
    clients = [await make_client(n, name=name) for n, name in ((a, "ca"), (b, "cb"), (c, "cc"))]
    await b.sio.enter_room(clients[1].sid(), "shared")
    await a.sio.enter_room(clients[0].sid(), "shared")
    return (a, b, c), clients


def assert_no_pending(*nodes):
    for node in nodes:
        assert node.adapter.stats["pending_requests"] == 0
        assert node.adapter.stats["pending_acks"] == 0


async def spy(redis_server, key):
    """A subscriber that looks like a live server (request + response channels), never answers."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{key}-request#/#", f"{key}-response#/#silent1#")
    return client, pubsub


async def test_server_count(three):
    """server_count() is the number of servers on the namespace."""
    (a, _, _), _ = three
    assert await a.adapter.server_count() == 3
    assert await a.adapter.server_count(namespace="/custom") == 3


async def test_all_rooms_across_nodes(three):
    """all_rooms() returns every room of every server, sid rooms and the requester's included."""
    (a, b, c), clients = three
    await c.sio.enter_room(clients[2].sid(), 7)
    expected = {cl.sid() for cl in clients} | {"shared", 7}
    assert await a.adapter.all_rooms() == expected
    assert await c.adapter.all_rooms() == expected
    assert_no_pending(a, b, c)


async def test_single_server_asks_nobody(make_node, make_client):
    """With one server, queries answer locally and publish no request."""
    a = await make_node()
    client = await make_client(a)
    before = a.adapter.stats["published"]
    assert await a.adapter.all_rooms() == {client.sid()}
    assert [s.id for s in await a.adapter.fetch_sockets()] == [client.sid()]
    assert await a.adapter.server_side_emit_with_ack("x") == []
    assert a.adapter.stats["published"] == before


async def test_clients_and_client_rooms(three):
    """clients() lists sids cluster-wide; client_rooms() finds a socket's rooms anywhere."""
    (a, _, _), clients = three
    assert sorted(await a.adapter.clients()) == sorted(cl.sid() for cl in clients)
    assert sorted(await a.adapter.clients("shared")) == sorted([clients[0].sid(), clients[1].sid()])
    assert await a.adapter.client_rooms(clients[1].sid()) == {clients[1].sid(), "shared"}
    assert await a.adapter.client_rooms(clients[0].sid()) == {clients[0].sid(), "shared"}
    assert await a.adapter.client_rooms("no-such-sid") is None


async def test_remote_join_leave_disconnect(three):
    """remote_join/leave/disconnect act on the owner; an unknown sid times out with Node's text."""
    (a, b, c), clients = three
    sid = clients[2].sid()
    await a.adapter.remote_join(sid, "r")
    assert "r" in c.sio.rooms(sid)
    await a.adapter.remote_leave(sid, "r")
    assert "r" not in c.sio.rooms(sid)
    with pytest.raises(
        RequestTimeoutError, match="^timeout reached while waiting for remoteJoin response"
    ):
        await a.adapter.remote_join("nobody", "r")
    await a.adapter.remote_disconnect(sid)
    await clients[2].wait_disconnected()
    assert_no_pending(a, b, c)


async def test_custom_request(three):
    """custom_request() returns every server's hook answer, the requester's first."""
    (a, b, c), _ = three
    a.adapter.custom_hook = lambda data: ("a", data)
    b.adapter.custom_hook = lambda data: ("b", data)

    async def from_c(data):
        return ["c", data]

    c.adapter.custom_hook = from_c
    answers = await a.adapter.custom_request({"q": 1})
    assert answers[0] == ("a", {"q": 1})  # the local answer is returned as is
    assert sorted(map(tuple, answers[1:])) == [("b", {"q": 1}), ("c", {"q": 1})]


async def test_fetch_sockets_details_and_privacy(make_node, make_client, redis_server, key):
    """fetch_sockets reports id, rooms, data and a Node-like handshake without credentials."""
    a, b = await make_node(), await make_node()
    shared = await make_node(share_sensitive_headers=True)
    client = Client("cb")
    await client.sio.connect(
        b.url + "?token=abc&lang=en",
        transports=["websocket"],
        wait_timeout=5,
        headers={"Cookie": "s=1", "Authorization": "Bearer x", "X-Custom": "yes"},
    )
    other = Client("cs")
    await other.sio.connect(
        shared.url, transports=["websocket"], wait_timeout=5, headers={"Cookie": "s=2"}
    )
    try:
        b.adapter.set_socket_data(client.sid(), {"user": "ann"})
        found = {s.id: s for s in await a.adapter.fetch_sockets()}
        sock = found[client.sid()]
        assert sock.rooms == {client.sid()} and sock.data == {"user": "ann"}
        hs = sock.handshake
        assert hs["headers"]["x-custom"] == "yes"
        assert "cookie" not in hs["headers"] and "authorization" not in hs["headers"]
        assert hs["query"]["lang"] == "en" and "lang=en" in hs["url"]
        assert "token" not in hs["query"] and "abc" not in hs["url"]
        assert set(hs) == {
            "headers",
            "time",
            "address",
            "xdomain",
            "secure",
            "issued",
            "url",
            "query",
            "auth",
        }
        assert found[other.sid()].handshake["headers"]["cookie"] == "s=2"
        with pytest.raises(KeyError, match="not connected to this server"):
            a.adapter.set_socket_data(client.sid(), 1)
    finally:
        await client.aclose()
        await other.aclose()


async def test_fetch_sockets_filters_and_remote_socket_methods(three):
    """fetch_sockets honours rooms/except; RemoteSocket emit/join/leave/disconnect work remotely."""
    (a, b, _), clients = three
    found = await a.adapter.fetch_sockets("shared", except_rooms=clients[0].sid())
    assert [s.id for s in found] == [clients[1].sid()]
    remote = found[0]
    await remote.emit("hi", 1)
    assert await clients[1].wait_for("hi") == [[1]]
    await remote.join("extra")
    await wait_until(lambda: "extra" in b.sio.rooms(remote.id))
    await remote.leave("extra")
    await wait_until(lambda: "extra" not in b.sio.rooms(remote.id))
    await remote.disconnect()
    await clients[1].wait_disconnected()


async def test_sockets_join_leave_and_disconnect_sockets(three):
    """sockets_join/leave and disconnect_sockets select by rooms and except, on every server."""
    (a, b, c), clients = three
    await a.adapter.sockets_join("everyone")
    for node, cl in zip((a, b, c), clients, strict=True):
        sid = cl.sid()
        await wait_until(lambda: "everyone" in node.sio.rooms(sid))  # noqa: B023
    await a.adapter.sockets_leave("everyone", to="shared", except_rooms=clients[0].sid())
    await wait_until(lambda: "everyone" not in b.sio.rooms(clients[1].sid()))
    assert "everyone" in a.sio.rooms(clients[0].sid())
    await a.adapter.disconnect_sockets(close=True, to="everyone")
    await clients[0].wait_disconnected()
    await clients[2].wait_disconnected()
    assert not clients[1].disconnected.is_set()


async def test_server_side_emit_with_and_without_ack(three):
    """server_side_emit reaches the other servers' handlers only; with ack, each answers once."""
    (a, b, c), _ = three
    seen: list[tuple[str, tuple[object, ...]]] = []
    for name, node in (("a", a), ("b", b), ("c", c)):

        @node.adapter.on("ping")
        async def handler(*args, name=name):
            seen.append((name, args))
            return f"pong-{name}"

    await a.adapter.server_side_emit("ping", 1, {"x": b"\x01"})
    await wait_until(lambda: len(seen) == 2)
    assert sorted(seen) == [
        ("b", (1, {"x": {"type": "Buffer", "data": [1]}})),
        ("c", (1, {"x": {"type": "Buffer", "data": [1]}})),
    ]
    assert sorted(await a.adapter.server_side_emit_with_ack("ping")) == ["pong-b", "pong-c"]
    with pytest.raises(ValueError, match="reserved"):
        await a.adapter.server_side_emit("connect")
    assert_no_pending(a, b, c)


async def test_server_side_emit_timeout_names_the_silent_server(three):
    """A server without handler: Node's timeout text, the partial answers and the silent uid."""
    (a, b, c), _ = three
    b.adapter.on("q", lambda: "from-b")
    with pytest.raises(RequestTimeoutError) as info:
        await a.adapter.server_side_emit_with_ack("q", timeout=0.5)
    err = info.value
    assert err.args[0] == "timeout reached: only 1 responses received out of 2"
    assert err.responses == ["from-b"]
    assert err.silent_servers == [c.adapter.uid]
    assert c.adapter.uid in str(err)
    assert_no_pending(a, b, c)


async def test_all_rooms_timeout_with_a_spy(three, redis_server, key):
    """A subscriber that never answers makes all_rooms time out and is named as silent."""
    (a, b, c), _ = three
    client, pubsub = await spy(redis_server, key)
    try:
        with pytest.raises(
            RequestTimeoutError, match="^timeout reached while waiting for allRooms response"
        ) as info:
            await a.adapter.all_rooms()
        assert len(info.value.responses) == 2
        assert info.value.silent_servers == ["silent1"]
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert_no_pending(a, b, c)


async def test_emit_with_ack_across_nodes(three):
    """emit_with_ack returns every client's ack cluster-wide, or times out with the partial acks."""
    (a, b, c), clients = three
    for cl in clients:
        cl.ack_value = lambda event, args, name=cl.name: [name, *args]
    acks = await a.adapter.emit_with_ack("q", (1, b"\x02"))
    assert sorted(acks) == [["ca", 1, b"\x02"], ["cb", 1, b"\x02"], ["cc", 1, b"\x02"]]
    assert await a.adapter.emit_with_ack("q", to="nobody") == []
    assert sorted(await a.adapter.emit_with_ack("q", to="shared")) == [["ca"], ["cb"]]
    clients[2].never_ack.add("slow")
    with pytest.raises(RequestTimeoutError, match="operation has timed out") as info:
        await a.adapter.emit_with_ack("slow", timeout=0.5)
    assert sorted(info.value.responses) == [["ca"], ["cb"]]
    assert_no_pending(a, b, c)


async def test_overlapping_requests_from_three_nodes(three):
    """200 concurrent all_rooms()/fetch_sockets() calls from 3 servers all resolve correctly."""
    nodes, clients = three
    rooms = {cl.sid() for cl in clients} | {"shared"}
    sids = sorted(cl.sid() for cl in clients)

    async def one(i):
        node = nodes[i % 3]
        if i % 2:
            assert await node.adapter.all_rooms() == rooms
        else:
            assert sorted(s.id for s in await node.adapter.fetch_sockets()) == sids

    with anyio.fail_after(30):
        await asyncio.gather(*(one(i) for i in range(200)))
    assert_no_pending(*nodes)


async def test_handlers_may_query_the_cluster(three):
    """A server-side handler that itself asks the cluster does not block the listener."""
    (a, b, c), _ = three

    for node in (b, c):

        async def rooms_count(node=node) -> int:
            return len(await node.adapter.all_rooms())

        node.adapter.on("count-rooms", rooms_count)
    with anyio.fail_after(5):
        assert await a.adapter.server_side_emit_with_ack("count-rooms") == [4, 4]
