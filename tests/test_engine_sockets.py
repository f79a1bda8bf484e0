"""Acting on sockets wherever they live, on the in-memory bus: Node's sockets_join/leave,
disconnect_sockets and remote_join/leave/disconnect, python-socketio's room calls on a
remote sid, and the channels a server subscribes as namespaces and rooms come and go."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from socketio_redis_async import RequestTimeoutError
from tests.inproc import InProcClient
from tests.unit_cluster import (
    SHARED_WIRES,
    UnitCluster,
    UnitServer,
    is_sharded,
    received,
)

pytestmark = [pytest.mark.anyio, pytest.mark.unit]


# -- Node's selector operations ---------------------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_sockets_join_reaches_every_server(cluster: UnitCluster, wire: str):
    """sockets_join makes the matching sockets of every server join, and hear the room."""
    a, b = await cluster.start(2, wire)
    in_a, in_b, out_b = [await cluster.connect(s) for s in (a, b, b)]
    await a.sio.enter_room(in_a.sid(), "lobby")
    await b.sio.enter_room(in_b.sid(), "lobby")
    await a.mgr.sockets_join("news", to="lobby")
    assert "news" in a.rooms(in_a.sid())
    await cluster.settle()
    assert "news" in b.rooms(in_b.sid()) and "news" not in b.rooms(out_b.sid())
    await a.sio.emit("headline", 1, to="news")
    await cluster.flush(in_a, in_b, out_b)
    assert received(in_a, "headline") == received(in_b, "headline") == [[1]]
    assert received(out_b, "headline") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_sockets_leave_honours_except_rooms(cluster: UnitCluster, wire: str):
    """sockets_leave(room, except_rooms=...) makes every socket leave but the excepted."""
    a, b = await cluster.start(2, wire)
    leaving, staying = await cluster.connect(b), await cluster.connect(b)
    for client in (leaving, staying):
        await b.sio.enter_room(client.sid(), "news")
    await b.sio.enter_room(staying.sid(), "vip")
    await a.mgr.sockets_leave("news", except_rooms="vip")
    await cluster.settle()
    assert "news" not in b.rooms(leaving.sid()) and "news" in b.rooms(staying.sid())


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_local_socket_operations_publish_nothing(cluster: UnitCluster, wire: str):
    """Local sockets_join/leave and disconnect_sockets act here only and publish nothing."""
    a, b = await cluster.start(2, wire)
    local, remote = await cluster.connect(a), await cluster.connect(b)
    mark = cluster.mark()
    await a.mgr.sockets_join("here", local=True)
    await a.mgr.of("/").local.sockets_join("also")
    assert {"here", "also"} <= a.rooms(local.sid())
    await a.mgr.sockets_leave("here", local=True)
    await a.mgr.disconnect_sockets(local=True)
    await local.wait_disconnected()
    assert cluster.mark() == mark
    await cluster.settle()
    assert b.rooms(remote.sid()) == {remote.sid()} and remote.connected()


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_disconnect_sockets_without_close_keeps_the_connection(
    cluster: UnitCluster, wire: str
):
    """disconnect_sockets() leaves a remote member's other namespaces connected."""
    a, b = await cluster.start(2, wire)
    member = await cluster.connect(b, namespaces=["/", "/chat"])
    other = await cluster.connect(b)
    await b.sio.enter_room(member.sid(), "banned")
    await a.mgr.disconnect_sockets(to="banned")
    await member.wait_disconnected("/")
    assert member.connected("/chat") and other.connected()
    await cluster.until(lambda: member.sid("/chat") and len(b.sids()) == 1)


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_disconnect_sockets_with_close_closes_the_connection(cluster: UnitCluster, wire: str):
    """disconnect_sockets(close=True) closes a remote member's whole connection."""
    a, b = await cluster.start(2, wire)
    member = await cluster.connect(b, namespaces=["/", "/chat"])
    other = await cluster.connect(b)
    await b.sio.enter_room(member.sid(), "banned")
    await a.mgr.disconnect_sockets(True, to="banned")
    await member.wait_disconnected("/chat")
    assert not member.connected("/") and other.connected()
    await cluster.until(lambda: b.sids("/chat") == set() and b.sids() == {other.sid()})


# -- single-socket operations -----------------------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
@pytest.mark.parametrize("join", [True, False])
async def test_remote_join_and_leave_act_on_the_owner(cluster: UnitCluster, wire: str, join: bool):
    """remote_join/leave act on the server holding the socket, by its protocol's means."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b)
    sid = client.sid()
    if not join:
        await b.sio.enter_room(sid, "vip")
    mark = cluster.mark()
    if join:
        await a.mgr.remote_join(sid, "vip")
    else:
        await a.mgr.remote_leave(sid, "vip")
    if is_sharded(wire):
        assert cluster.types_since(mark, wire) == [7, 4 if join else 5]
        await cluster.settle()
    else:
        assert cluster.types_since(mark, wire) == [2 if join else 3]
    assert ("vip" in b.rooms(sid)) is join


@pytest.mark.parametrize("wire", SHARED_WIRES)
@pytest.mark.parametrize("close", [False, True])
async def test_remote_disconnect_disconnects_the_socket(
    cluster: UnitCluster, wire: str, close: bool
):
    """remote_disconnect disconnects a remote socket: its namespace, or all with close."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b, namespaces=["/", "/chat"])
    sid = client.sid()
    await a.mgr.remote_disconnect(sid, close)
    await client.wait_disconnected("/")
    await cluster.until(lambda: sid not in b.sids())
    assert client.connected("/chat") is not close


@pytest.mark.parametrize("wire", SHARED_WIRES)
@pytest.mark.parametrize("operation", ["remote_join", "remote_leave", "remote_disconnect"])
async def test_a_single_socket_operation_on_an_unknown_sid_fails(
    cluster: UnitCluster, wire: str, operation: str
):
    """remote_join/leave/disconnect of a sid no server holds raise RequestTimeoutError."""
    a, b = await cluster.start(2, wire, requests_timeout=0.2)
    await cluster.connect(b)
    calls = {
        "remote_join": lambda: a.mgr.remote_join("nobody-has-this-sid", "r"),
        "remote_leave": lambda: a.mgr.remote_leave("nobody-has-this-sid", "r"),
        "remote_disconnect": lambda: a.mgr.remote_disconnect("nobody-has-this-sid"),
    }
    with pytest.raises(RequestTimeoutError) as caught:
        await calls[operation]()
    if is_sharded(wire):
        assert "no server holds socket 'nobody-has-this-sid'" in caught.value.args[0]
    else:
        what = {"remote_join": "remoteJoin", "remote_leave": "remoteLeave"}.get(
            operation, "remoteDisconnect"
        )
        assert caught.value.args[0] == f"timeout reached while waiting for {what} response"
        assert caught.value.silent_servers == [b.mgr.uid]
    assert a.mgr.stats["pending_requests"] == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_single_socket_operations_on_a_local_sid_publish_nothing(
    cluster: UnitCluster, wire: str
):
    """remote_join/leave/disconnect of a local socket act here without a publish."""
    a, _ = await cluster.start(2, wire)
    client = await cluster.connect(a)
    sid = client.sid()
    mark = cluster.mark()
    await a.mgr.remote_join(sid, "r")
    assert "r" in a.rooms(sid)
    await a.mgr.remote_leave(sid, "r")
    assert "r" not in a.rooms(sid)
    await a.mgr.remote_disconnect(sid)
    await client.wait_disconnected()
    assert cluster.mark() == mark


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_remote_socket_methods_act_where_it_lives(cluster: UnitCluster, wire: str):
    """A fetched RemoteSocket emits, joins, leaves and disconnects where it lives."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b)
    await b.sio.enter_room(client.sid(), "old")
    (socket,) = await a.mgr.fetch_sockets()
    await socket.emit("hello", 1, 2)
    await socket.join("new")
    await socket.leave("old")
    await cluster.flush(client)
    assert received(client, "hello") == [[1, 2]]
    assert b.rooms(client.sid()) == {client.sid(), "new"}
    await socket.disconnect()
    await client.wait_disconnected()


# -- python-socketio's calls on a remote sid --------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_sio_enter_room_of_a_remote_sid(cluster: UnitCluster, wire: str):
    """sio.enter_room of a remote sid makes it a member there, reached by the room."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b)
    await a.sio.enter_room(client.sid(), "joined")
    await cluster.settle()
    assert "joined" in b.rooms(client.sid())
    await a.sio.emit("room-ev", to="joined")
    await client.wait_until(lambda: received(client, "room-ev") == [[]])


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_sio_leave_room_of_a_remote_sid(cluster: UnitCluster, wire: str):
    """sio.leave_room of a remote sid removes it there, and only it."""
    a, b = await cluster.start(2, wire)
    leaving, staying = await cluster.connect(b), await cluster.connect(b)
    for client in (leaving, staying):
        await b.sio.enter_room(client.sid(), "gone")
    await a.sio.leave_room(leaving.sid(), "gone")
    await cluster.settle()
    assert "gone" not in b.rooms(leaving.sid()) and "gone" in b.rooms(staying.sid())


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_sio_close_room_empties_it_everywhere(cluster: UnitCluster, wire: str):
    """sio.close_room makes the members of every server leave the room."""
    a, b = await cluster.start(2, wire)
    ca, cb = await cluster.connect(a), await cluster.connect(b)
    await a.sio.enter_room(ca.sid(), "closing")
    await b.sio.enter_room(cb.sid(), "closing")
    await a.sio.close_room("closing")
    assert "closing" not in a.rooms(ca.sid())
    await cluster.settle()
    assert "closing" not in b.rooms(cb.sid())


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_sio_disconnect_of_a_remote_sid(cluster: UnitCluster, wire: str):
    """sio.disconnect of a remote sid disconnects that client only."""
    a, b = await cluster.start(2, wire)
    client, other = await cluster.connect(b), await cluster.connect(b)
    sid = client.sid()
    await a.sio.disconnect(sid)
    await client.wait_disconnected()
    await cluster.until(lambda: b.sids() == {other.sid()})
    assert other.connected()


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_socket_never_leaves_its_own_sid_room(cluster: UnitCluster, wire: str):
    """No call from any server makes a socket leave its own sid room."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b)
    sid = client.sid()
    await b.sio.enter_room(sid, "lobby")
    await a.mgr.sockets_leave([sid, "lobby"])
    await a.sio.close_room(sid)
    await a.sio.leave_room(sid, sid)
    await b.mgr.remote_leave(sid, sid)
    await cluster.settle()
    assert b.rooms(sid) == {sid}
    await a.sio.emit("still", to=sid)
    await client.wait_until(lambda: received(client, "still") == [[]])


# -- namespaces and room channels -------------------------------------------------------


async def _numsub(server: UnitServer, nsp: str) -> int:
    return await server.transport.count_subscribers(server.channels(nsp).request)


def _serves(server: UnitServer, nsp: str) -> bool:
    """Whether ``server`` has ``nsp`` planned, routed and subscribed."""
    channels = server.channels(nsp)
    planned = nsp in server.engine.plan
    routed = server.engine.plan.route(channels.request.encode()) is not None
    subscribed = server.subscribed(channels.request)
    assert planned == routed == subscribed, (planned, routed, subscribed)
    return planned


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_namespace_is_released_with_its_last_socket(cluster: UnitCluster, wire: str):
    """A namespace's last socket leaving unsubscribes it: NUMSUB 0, no route left."""
    a, b = await cluster.start(2, wire)
    first = await cluster.connect(b, namespaces=["/", "/dyn"])
    second = await cluster.connect(b, namespaces=["/", "/dyn"])
    assert _serves(b, "/dyn") and await _numsub(b, "/dyn") == 1
    await first.disconnect("/dyn")
    await cluster.until(lambda: len(b.sids("/dyn")) == 1)
    assert _serves(b, "/dyn")
    await second.disconnect("/dyn")
    await cluster.until(lambda: not b.sids("/dyn"))
    assert not _serves(b, "/dyn") and await _numsub(b, "/dyn") == 0
    assert not any("/dyn" in c for c in b.transport.wanted | b.transport.patterns)
    assert _serves(b, "/") and await a.mgr.server_count(namespace="/dyn") == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_namespace_with_a_handler_is_kept(cluster: UnitCluster, wire: str):
    """A namespace with an ``on()`` handler stays served, and heard, without sockets."""
    a, b = await cluster.start(2, wire)
    seen: list[Any] = []
    b.mgr.on("ping", seen.append, namespace="/dyn")
    client = await cluster.connect(b, namespaces=["/", "/dyn"])
    await client.disconnect("/dyn")
    await cluster.until(lambda: not b.sids("/dyn"))
    assert _serves(b, "/dyn") and await _numsub(b, "/dyn") == 1
    await a.mgr.server_side_emit("ping", 1, namespace="/dyn")
    await cluster.settle()
    assert seen == [1]


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_request_in_flight_holds_its_namespace(cluster: UnitCluster, wire: str):
    """A request in flight keeps its namespace served past its last socket, until it ends."""
    a, b = await cluster.start(2, wire)
    release = anyio.Event()

    async def slow(x: int) -> int:
        await release.wait()
        return x

    b.mgr.on("slow", slow, namespace="/dyn")
    client = await cluster.connect(a, namespaces=["/", "/dyn"])
    answers: list[Any] = []

    async def ask() -> None:
        answers.extend(await a.mgr.server_side_emit_with_ack("slow", 3, namespace="/dyn"))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ask)
        await cluster.until(lambda: a.mgr.stats["pending_requests"] == 1)
        await client.disconnect("/dyn")
        await cluster.until(lambda: not a.sids("/dyn"))
        assert _serves(a, "/dyn") and await _numsub(a, "/dyn") == 2
        release.set()
    assert answers == [3]
    assert not _serves(a, "/dyn") and await _numsub(a, "/dyn") == 1


ROOM_CHANNELS = [
    # wire, a named room has a channel, a sid room has a channel
    ("classic", True, True),
    ("classic-pattern", False, False),
    ("sharded", True, False),
    ("sharded-static", False, False),
    ("sharded-private", True, True),
]


@pytest.mark.parametrize(("wire", "named", "sid_room"), ROOM_CHANNELS)
async def test_a_room_channel_lives_from_first_to_last_member(
    cluster: UnitCluster, wire: str, named: bool, sid_room: bool
):
    """A room's channel is subscribed by its first member and dropped with its last."""
    a, b = await cluster.start(2, wire)
    first, second = await cluster.connect(b), await cluster.connect(b)
    channel = b.channels().room("lobby")
    assert b.subscribed(b.channels().room(first.sid())) is sid_room
    assert not b.subscribed(channel)
    await b.sio.enter_room(first.sid(), "lobby")
    assert b.subscribed(channel) is named
    await b.sio.enter_room(second.sid(), "lobby")
    await b.sio.leave_room(first.sid(), "lobby")
    assert b.subscribed(channel) is named
    await a.sio.emit("to-lobby", 1, to="lobby")
    await cluster.flush(first, second)
    assert received(second, "to-lobby") == [[1]] and received(first, "to-lobby") == []
    await b.sio.leave_room(second.sid(), "lobby")
    assert not b.subscribed(channel)


@pytest.mark.parametrize("wire", ["classic", "sharded-private"])
async def test_a_disconnect_drops_the_sockets_room_channels(cluster: UnitCluster, wire: str):
    """A disconnect drops the channels of the rooms the socket was the last member of."""
    _, b = await cluster.start(2, wire)
    client: InProcClient = await cluster.connect(b)
    sid = client.sid()
    await b.sio.enter_room(sid, "solo")
    assert b.subscribed(b.channels().room("solo")) and b.subscribed(b.channels().room(sid))
    await client.disconnect()
    await cluster.until(lambda: not b.sids())
    assert not b.subscribed(b.channels().room("solo"))
    assert not b.subscribed(b.channels().room(sid))
