"""Broadcasts and acks across servers on the in-memory bus, with real python-socketio
servers and real in-process clients: rooms, except rooms, flags, local-only emits, what
is published and what is not, and malformed messages, over every wire format."""

from __future__ import annotations

from typing import Any

import pytest

from socketio_redis_async import RequestTimeoutError
from socketio_redis_async._local import delivery as delivery_module
from socketio_redis_async._local.backlog import backlog as real_backlog
from socketio_redis_async._protocol import codec
from tests.unit_cluster import (
    ALL_WIRES,
    SHARED_WIRES,
    SILENT_UID,
    UnitCluster,
    received,
)

pytestmark = [pytest.mark.anyio, pytest.mark.unit]


# -- broadcasts ---------------------------------------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_broadcast_to_all_reaches_every_server_once(cluster: UnitCluster, wire: str):
    """An emit without a room reaches the clients of every server exactly once."""
    servers = await cluster.start(3, wire)
    clients = [await cluster.connect(s) for s in servers]
    await servers[0].sio.emit("hello", {"x": [1, "two"]})
    await cluster.flush(*clients)
    for client in clients:
        assert received(client, "hello") == [[{"x": [1, "two"]}]]


@pytest.mark.parametrize("wire", ALL_WIRES)
async def test_a_room_broadcast_reaches_its_members_only(cluster: UnitCluster, wire: str):
    """A room emit reaches its members on every server and no other client."""
    a, b = await cluster.start(2, wire)
    in_a, in_b, out_a, out_b = [await cluster.connect(s) for s in (a, b, a, b)]
    await a.sio.enter_room(in_a.sid(), "room1")
    await b.sio.enter_room(in_b.sid(), "room1")
    await a.sio.emit("ev", "x", to="room1")
    await cluster.flush(in_a, in_b, out_a, out_b)
    assert received(in_a, "ev") == received(in_b, "ev") == [["x"]]
    assert received(out_a, "ev") == received(out_b, "ev") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_numeric_room_stays_a_number(cluster: UnitCluster, wire: str):
    """A broadcast to room 42 reaches a remote member of 42, not one of room "42"."""
    a, b = await cluster.start(2, wire)
    number, text = await cluster.connect(b), await cluster.connect(b)
    await b.sio.enter_room(number.sid(), 42)
    await b.sio.enter_room(text.sid(), "42")
    await a.mgr.of("/").to(42).emit("n", 1)
    await cluster.flush(number, text)
    assert received(number, "n") == [[1]] and received(text, "n") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_several_rooms_deliver_once_and_except_rooms_skip(cluster: UnitCluster, wire: str):
    """Several target rooms deliver once per socket; except rooms skip, here and elsewhere."""
    a, b = await cluster.start(2, wire)
    both, one, skipped_b, skipped_a = [await cluster.connect(s) for s in (b, b, b, a)]
    for client, rooms in ((both, ["r1", "r2"]), (one, ["r2"]), (skipped_b, ["r1", "r3"])):
        for room in rooms:
            await b.sio.enter_room(client.sid(), room)
    for room in ("r1", "r3"):
        await a.sio.enter_room(skipped_a.sid(), room)
    await a.mgr.to("r1").to("r2").except_("r3").emit("multi", 7)
    await cluster.flush(both, one, skipped_a, skipped_b)
    assert received(both, "multi") == received(one, "multi") == [[7]]
    assert received(skipped_a, "multi") == received(skipped_b, "multi") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_skip_sid_takes_sids_and_rooms(cluster: UnitCluster, wire: str):
    """skip_sid skips a local sid, a remote sid and every member of a remote room."""
    a, b = await cluster.start(2, wire)
    sender, kept, skipped, in_room = [await cluster.connect(s) for s in (a, b, b, b)]
    await b.sio.enter_room(in_room.sid(), "muted")
    await a.sio.emit("ev", 1, skip_sid=[sender.sid(), skipped.sid(), "muted"])
    await cluster.flush(sender, kept, skipped, in_room)
    assert received(kept, "ev") == [[1]]
    assert received(sender, "ev") == received(skipped, "ev") == received(in_room, "ev") == []


@pytest.mark.parametrize(
    ("wire", "own_channel"),
    [
        ("classic", True),
        ("classic-pattern", True),
        ("sharded", False),  # a 20-character room is a socket id: no channel of its own
        ("sharded-static", False),
        ("sharded-private", True),
    ],
)
async def test_an_emit_to_a_remote_sid_reaches_that_socket_only(
    cluster: UnitCluster, wire: str, own_channel: bool
):
    """An emit to a remote sid reaches it alone, on the channel its wire format names."""
    a, b = await cluster.start(2, wire)
    target, other = await cluster.connect(b), await cluster.connect(b)
    mark = cluster.mark()
    await a.sio.emit("direct", {"k": "v"}, to=target.sid())
    assert cluster.channels_since(mark) == [
        a.channels().room(target.sid()) if own_channel else a.channels().broadcast
    ]
    await cluster.flush(target, other)
    assert received(target, "direct") == [[{"k": "v"}]] and received(other, "direct") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_broadcast_stays_in_its_namespace(cluster: UnitCluster, wire: str):
    """An emit in /chat reaches /chat clients of other servers and no / client."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b, namespaces=["/", "/chat"])
    await a.sio.emit("news", "n1", namespace="/chat")
    await cluster.flush(client)
    assert received(client, "news", "/chat") == [["n1"]] and received(client, "news") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_sio_send_arrives_as_a_message_event(cluster: UnitCluster, wire: str):
    """sio.send() reaches a client of another server as a 'message' event."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b)
    await a.sio.send("hi")
    await client.wait_until(lambda: received(client, "message") == [["hi"]])


@pytest.mark.parametrize("wire", SHARED_WIRES)
@pytest.mark.parametrize("how", ["operator", "ignore_queue"])
async def test_a_local_emit_stays_on_its_server(cluster: UnitCluster, wire: str, how: str):
    """``.local.emit`` and ``ignore_queue=True`` reach local clients and publish nothing."""
    a, b = await cluster.start(2, wire)
    local, remote = await cluster.connect(a), await cluster.connect(b)
    mark, published = cluster.mark(), a.published
    if how == "operator":
        await a.mgr.of("/").local.emit("only-here", 1)
    else:
        await a.sio.emit("only-here", 1, ignore_queue=True)
    assert cluster.mark() == mark and a.published == published
    await cluster.flush(local, remote)
    assert received(local, "only-here") == [[1]] and received(remote, "only-here") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_broadcast_to_a_local_sid_publishes_nothing(cluster: UnitCluster, wire: str):
    """An emit to a local socket's own sid room is delivered without any publish."""
    a, _ = await cluster.start(2, wire)
    client = await cluster.connect(a)
    mark, published = cluster.mark(), a.published
    await a.sio.emit("direct", 5, to=client.sid())
    await a.mgr.to(client.sid()).emit("chained", 6)
    assert cluster.mark() == mark and a.published == published
    await client.wait_until(lambda: received(client, "chained") == [[6]])
    assert received(client, "direct") == [[5]]


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_broadcast_to_a_remote_sid_publishes_once(cluster: UnitCluster, wire: str):
    """An emit to a sid held by another server is exactly one publish."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b)
    published = a.published
    await a.sio.emit("direct", 5, to=client.sid())
    assert a.published == published + 1


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_volatile_travels_and_skips_a_client_that_is_behind(
    cluster: UnitCluster, wire: str, monkeypatch: pytest.MonkeyPatch
):
    """A remote volatile broadcast skips a client 16 packets behind; a plain one does not."""
    a, b = await cluster.start(2, wire)
    behind, ready = await cluster.connect(b), await cluster.connect(b)
    stalled = behind.eio_sid

    def fake_backlog(sock: Any) -> int:
        return 16 if getattr(sock, "sid", None) == stalled else real_backlog(sock)

    monkeypatch.setattr(delivery_module, "backlog", fake_backlog)
    await a.mgr.of("/").volatile.emit("v", 1)
    await a.sio.emit("plain", 2)
    await cluster.flush(ready)
    monkeypatch.undo()
    await cluster.flush(behind)
    assert received(ready, "v") == [[1]] and received(behind, "v") == []
    assert received(ready, "plain") == received(behind, "plain") == [[2]]
    assert b.mgr.stats["volatile_skipped"] == 1 and a.mgr.stats["volatile_skipped"] == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_unencodable_data_raises_before_anything_is_sent(cluster: UnitCluster, wire: str):
    """Data msgpack cannot carry raises TypeError before any delivery or publish."""
    a, b = await cluster.start(2, wire)
    local, remote = await cluster.connect(a), await cluster.connect(b)
    mark = cluster.mark()
    with pytest.raises(TypeError):
        await a.sio.emit("ev", {"s": {1, 2}})
    assert cluster.mark() == mark
    await cluster.flush(local, remote)
    assert received(local, "ev") == received(remote, "ev") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_an_oversized_emit_is_refused_before_delivery(cluster: UnitCluster, wire: str):
    """An emit over max_message_size raises ValueError and reaches nobody."""
    a = await cluster.add(wire, max_message_size=1000)
    client = await cluster.connect(a)
    mark = cluster.mark()
    with pytest.raises(ValueError, match="max_message_size=1000"):
        await a.sio.emit("big", "x" * 2000)
    assert cluster.mark() == mark
    await cluster.flush(client)
    assert received(client, "big") == []


# -- acks -------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_an_emit_callback_gets_the_remote_clients_ack(cluster: UnitCluster, wire: str):
    """emit(callback=) to a remote sid calls back once with its ack; no entry is left."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b, on={"ping": lambda *args: "pong"})
    got: list[Any] = []
    await a.sio.emit("ping", to=client.sid(), callback=got.append)
    await cluster.until(lambda: got == ["pong"])
    assert a.mgr.stats["pending_acks"] == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_sio_call_to_a_remote_sid_returns_its_ack(cluster: UnitCluster, wire: str):
    """sio.call() to a sid on another server returns that client's answer."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b, on={"ask": lambda q: {"got": q}})
    assert await a.sio.call("ask", "q", to=client.sid(), timeout=5) == {"got": "q"}


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_an_emit_callback_to_a_room_hears_every_member(cluster: UnitCluster, wire: str):
    """A callback emit to a room is called with every member's ack, local or remote."""
    a, b = await cluster.start(2, wire)
    ca = await cluster.connect(a, on={"q": lambda: "from-a"})
    cb = await cluster.connect(b, on={"q": lambda: "from-b"})
    await a.sio.enter_room(ca.sid(), "r")
    await b.sio.enter_room(cb.sid(), "r")
    got: list[Any] = []
    await a.sio.emit("q", to="r", callback=got.append)
    await cluster.until(lambda: len(got) == 2)
    assert sorted(got) == ["from-a", "from-b"]


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_emit_with_ack_collects_every_clients_ack(cluster: UnitCluster, wire: str):
    """emit_with_ack returns the ack of every client of every server; no entry is left."""
    servers = await cluster.start(3, wire)
    for index, server in enumerate(servers):
        await cluster.connect(server, on={"ready?": lambda i=index: f"yes-{i}"})
    acks = await servers[0].mgr.emit_with_ack("ready?", timeout=5)
    assert sorted(acks) == ["yes-0", "yes-1", "yes-2"]
    assert servers[0].mgr.stats["pending_acks"] == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_emit_with_ack_honours_rooms_and_except(cluster: UnitCluster, wire: str):
    """emit_with_ack to a room except another asks only the matching clients."""
    a, b = await cluster.start(2, wire)
    member = await cluster.connect(b, on={"q": lambda: "member"})
    excluded = await cluster.connect(b, on={"q": lambda: "excluded"})
    await cluster.connect(a, on={"q": lambda: "outsider"})
    for client, room in ((member, "lobby"), (excluded, "lobby"), (excluded, "banned")):
        await b.sio.enter_room(client.sid(), room)
    assert await a.mgr.emit_with_ack("q", to="lobby", except_rooms="banned") == ["member"]


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_emit_with_ack_times_out_with_the_acks_so_far(cluster: UnitCluster, wire: str):
    """A client that never acks: "operation has timed out" with the acks so far."""
    a, b = await cluster.start(2, wire)
    await cluster.connect(b, on={"q": lambda: "ok"})
    await cluster.connect(b)  # no handler: never acks
    with pytest.raises(RequestTimeoutError) as caught:
        await a.mgr.emit_with_ack("q", timeout=0.3)
    assert caught.value.args[0] == "operation has timed out"
    assert caught.value.responses == ["ok"] and caught.value.silent_servers == []
    assert a.mgr.stats["pending_acks"] == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_emit_with_ack_names_a_silent_server(cluster: UnitCluster, wire: str):
    """A server that never reports makes emit_with_ack time out naming it, with the acks."""
    a, b = await cluster.start(2, wire)
    await cluster.connect(b, on={"q": lambda: "ok"})
    cluster.silent(wire)
    with pytest.raises(RequestTimeoutError, match=SILENT_UID) as caught:
        await a.mgr.emit_with_ack("q", timeout=0.3)
    assert caught.value.responses == ["ok"] and caught.value.silent_servers == [SILENT_UID]


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_emit_with_ack_to_a_local_sid_publishes_nothing(cluster: UnitCluster, wire: str):
    """emit_with_ack to a local socket's sid is answered here, with no publish."""
    a, _ = await cluster.start(2, wire)
    client = await cluster.connect(a, on={"q": lambda: 1})
    mark = cluster.mark()
    assert await a.mgr.emit_with_ack("q", to=client.sid(), timeout=5) == [1]
    assert cluster.mark() == mark


# -- malformed messages -----------------------------------------------------------------


async def _still_delivers(cluster: UnitCluster, wire: str) -> None:
    """After a drop: a real broadcast from another server still arrives."""
    receiver, sender = cluster.servers[0], await cluster.add(wire)
    client = await cluster.connect(receiver)
    await sender.sio.emit("after", 1)
    await client.wait_until(lambda: received(client, "after") == [[1]])


@pytest.mark.parametrize("wire", SHARED_WIRES)
@pytest.mark.parametrize("where", ["broadcast", "request", "response"])
async def test_garbage_is_dropped_and_counted(cluster: UnitCluster, wire: str, where: str):
    """Garbage on any channel of a server is dropped, counted once, and breaks nothing."""
    a = await cluster.add(wire)
    channels = a.channels()
    channel = {
        "broadcast": channels.broadcast,
        "request": channels.request,
        "response": channels.response_for(a.mgr.uid),
    }[where]
    cluster.hub.publish(channel, b"\xc1 not msgpack nor json")
    await cluster.settle()
    assert a.mgr.stats["dropped_messages"] == 1
    await _still_delivers(cluster, wire)
    assert a.mgr.stats["dropped_messages"] == 1


CLASSIC_BROADCASTS = {
    "opts missing": ["other", {"type": 2, "data": ["ev"], "nsp": "/"}],
    "opts not a map": ["other", {"type": 2, "data": ["ev"], "nsp": "/"}, ["r"]],
    "opts nil": ["other", {"type": 2, "data": ["ev"], "nsp": "/"}, None],
    "packet not a map": ["other", "packet", {"rooms": []}],
    "data not a list": ["other", {"type": 2, "data": "ev", "nsp": "/"}, {}],
    "a float room": ["other", {"type": 2, "data": ["ev"], "nsp": "/"}, {"rooms": [1.5]}],
    "flags not a map": ["other", {"type": 2, "data": ["ev"], "nsp": "/"}, {"flags": 1}],
}


@pytest.mark.parametrize("wire", ["classic", "classic-pattern"])
@pytest.mark.parametrize("case", list(CLASSIC_BROADCASTS))
async def test_a_malformed_classic_broadcast_is_dropped(cluster: UnitCluster, wire: str, case: str):
    """A malformed classic broadcast (opts missing, not a map...) is dropped and counted."""
    a = await cluster.add(wire)
    client = await cluster.connect(a)
    cluster.hub.publish(a.channels().broadcast, codec.pack(CLASSIC_BROADCASTS[case]))
    await cluster.flush(client)
    assert a.mgr.stats["dropped_messages"] == 1 and received(client, "ev") == []
    await _still_delivers(cluster, wire)


SHARDED_BROADCASTS = {
    "opts missing": {"packet": {"type": 2, "data": ["ev"], "nsp": "/"}},
    "opts not a map": {"packet": {"type": 2, "data": ["ev"], "nsp": "/"}, "opts": ["r"]},
    "packet missing": {"opts": {"rooms": [], "except": []}},
    "data not a list": {"packet": {"type": 2, "data": "ev", "nsp": "/"}, "opts": {}},
    "a float room": {"packet": {"type": 2, "data": ["ev"], "nsp": "/"}, "opts": {"rooms": [0.5]}},
}


@pytest.mark.parametrize("wire", ["sharded", "sharded-static"])
@pytest.mark.parametrize("case", list(SHARDED_BROADCASTS))
async def test_a_malformed_sharded_broadcast_is_dropped(cluster: UnitCluster, wire: str, case: str):
    """A malformed sharded BROADCAST (opts missing, not a map...) is dropped and counted."""
    a = await cluster.add(wire)
    client = await cluster.connect(a)
    message = {"uid": "0123456789abcdef", "nsp": "/", "type": 3, "data": SHARDED_BROADCASTS[case]}
    cluster.hub.publish(a.channels().broadcast, codec.dump_json(message))
    await cluster.flush(client)
    assert a.mgr.stats["dropped_messages"] == 1 and received(client, "ev") == []
    await _still_delivers(cluster, wire)


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_malformed_request_is_dropped(cluster: UnitCluster, wire: str):
    """A request whose opts is not a map is dropped and counted; later requests work."""
    a, b = await cluster.start(2, wire)
    await cluster.connect(a)
    if wire.startswith("sharded"):
        body = {"requestId": "r1", "opts": 5}
        bad = codec.dump_json({"uid": "0123456789abcdef", "nsp": "/", "type": 7, "data": body})
    else:
        bad = codec.dump_json({"uid": "x", "requestId": "r1", "type": 5, "opts": 5})
    cluster.hub.publish(a.channels().request, bad)
    await cluster.settle()
    assert a.mgr.stats["dropped_messages"] == 1
    assert len(await b.mgr.fetch_sockets()) == 1
