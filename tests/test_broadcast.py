"""Broadcasting across real servers that share one real redis-server."""

from __future__ import annotations

import pytest

from tests.helpers import barrier

pytestmark = pytest.mark.anyio


async def test_broadcast_to_all_reaches_every_node(make_node, make_client):
    """An emit without a room reaches clients on the sending node and on the others."""
    a, b, c = await make_node(), await make_node(), await make_node()
    clients = [await make_client(n) for n in (a, b, c)]
    await a.sio.emit("hello", (1, "2", b"\x03\x04"))
    for client in clients:
        assert await client.wait_for("hello") == [[1, "2", b"\x03\x04"]]


async def test_broadcast_to_namespace_only_reaches_that_namespace(make_node, make_client):
    """An emit in /custom reaches /custom clients on other nodes and no / client."""
    a, b = await make_node(), await make_node()
    custom = await make_client(b, ["/custom"])
    root = await make_client(b, ["/"])
    await a.sio.emit("news", "n1", namespace="/custom")
    assert await custom.wait_for("news", namespace="/custom") == [["n1"]]
    await barrier(a, [root])
    assert root.received("news") == []


async def test_broadcast_to_room_across_nodes(make_node, make_client):
    """Only members of the room receive it, wherever they are connected."""
    a, b = await make_node(), await make_node()
    in_a, in_b, out_b = await make_client(a), await make_client(b), await make_client(b)
    await a.sio.enter_room(in_a.sid(), "room1")
    await b.sio.enter_room(in_b.sid(), "room1")
    await a.sio.emit("ev", "x", to="room1")
    assert await in_a.wait_for("ev") == [["x"]]
    assert await in_b.wait_for("ev") == [["x"]]
    await barrier(a, [out_b])
    assert out_b.received("ev") == []


async def test_broadcast_to_several_rooms_delivers_once(make_node, make_client):
    """A socket in two of the target rooms gets the event once; an except room is skipped."""
    a, b = await make_node(), await make_node()
    both, one, skipped = await make_client(b), await make_client(b), await make_client(a)
    for room in ("r1", "r2"):
        await b.sio.enter_room(both.sid(), room)
    await b.sio.enter_room(one.sid(), "r2")
    await a.sio.enter_room(skipped.sid(), "r1")
    await a.sio.enter_room(skipped.sid(), "r3")
    await a.adapter.to("r1").to("r2").except_("r3").emit("multi", 7)
    await barrier(a, [both, one, skipped])
    assert both.received("multi") == [[7]]
    assert one.received("multi") == [[7]]
    assert skipped.received("multi") == []


async def test_skip_sid_excludes_sockets_and_rooms(make_node, make_client):
    """skip_sid takes sids and room names, locally and on other nodes."""
    a, b = await make_node(), await make_node()
    sender, kept, skipped_b, in_room = (
        await make_client(a),
        await make_client(b),
        await make_client(b),
        await make_client(b),
    )
    await b.sio.enter_room(in_room.sid(), "muted")
    await a.sio.emit("ev", 1, skip_sid=[sender.sid(), skipped_b.sid(), "muted"])
    await barrier(a, [sender, kept, skipped_b, in_room])
    assert kept.received("ev") == [[1]]
    assert sender.received("ev") == skipped_b.received("ev") == in_room.received("ev") == []


async def test_emit_to_single_remote_sid(make_node, make_client):
    """An emit to a sid held by another node reaches that socket only."""
    a, b = await make_node(), await make_node()
    target, other = await make_client(b), await make_client(b)
    await a.sio.emit("direct", {"k": "v"}, to=target.sid())
    assert await target.wait_for("direct") == [[{"k": "v"}]]
    await barrier(a, [other])
    assert other.received("direct") == []


async def test_binary_args_survive_the_trip(make_node, make_client):
    """bytes nested in dicts and lists arrive as bytes on another node."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    payload = {"blob": b"\x00\xff" * 10, "list": [b"a", 1, None, True, 1.5]}
    await a.sio.emit("bin", payload)
    assert await client.wait_for("bin") == [[payload]]


async def test_local_only_emits_stay_on_their_node(make_node, make_client):
    """ignore_queue=True and the .local modifier reach this node's clients only."""
    a, b = await make_node(), await make_node()
    local, remote = await make_client(a), await make_client(b)
    await a.sio.emit("l1", ignore_queue=True)
    await a.adapter.of("/").local.emit("l2")
    await local.wait_for("l2")
    await barrier(a, [remote])
    assert [ev for _, ev, _ in local.events][:2] == ["l1", "l2"]
    assert remote.received("l1") == remote.received("l2") == []


async def test_send_emits_message_event(make_node, make_client):
    """sio.send() arrives as a 'message' event on other nodes."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    await a.sio.send("hi")
    assert await client.wait_for("message") == [["hi"]]


async def test_operator_rejects_reserved_events_and_bad_rooms(make_node):
    """Reserved event names raise ValueError; rooms that cannot travel raise TypeError."""
    a = await make_node()
    with pytest.raises(ValueError, match="reserved"):
        await a.adapter.to("r").emit("disconnect")
    with pytest.raises(TypeError, match="room must be a str or an int"):
        a.adapter.to(object())
    with pytest.raises(TypeError, match="room must be a str or an int"):
        await a.sio.emit("ev", to=1.5)


async def test_unencodable_data_raises_before_anything_is_sent(make_node, make_client):
    """Data msgpack cannot carry raises TypeError and no client receives anything."""
    a = await make_node()
    client = await make_client(a)
    with pytest.raises(TypeError, match="cannot encode"):
        await a.sio.emit("ev", {"s": {1, 2}})
    await barrier(a, [client])
    assert client.received("ev") == []


async def test_dynamic_namespaces_subscribe_on_first_connection(make_node, make_client):
    """With namespaces='*', a namespace first seen on a connection gets its channels at once."""
    a, b = await make_node(namespaces="*"), await make_node(namespaces="*")
    client = await make_client(b, ["/dyn"])
    await a.sio.emit("dyn-ev", 1, namespace="/dyn")
    assert await client.wait_for("dyn-ev", namespace="/dyn") == [[1]]
    # Only b serves /dyn; asking does not make a serve it.
    assert await a.adapter.server_count(namespace="/dyn") == 1
    assert await b.adapter.server_count(namespace="/dyn") == 1


async def test_oversized_emit_is_refused_before_delivery(make_node, make_client):
    """An emit larger than max_message_size raises ValueError and reaches nobody."""
    a = await make_node(max_message_size=1000)
    client = await make_client(a)
    with pytest.raises(ValueError, match="exceeds max_message_size=1000"):
        await a.sio.emit("big", "x" * 2000)
    await barrier(a, [client])
    assert client.received("big") == []


async def test_an_event_named_star_crosses_servers(make_node, make_client):
    """An event literally named "*" is delivered like any other (the test client copes)."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    await a.sio.emit("*", 1)
    await a.sio.emit("after", 2)
    assert await client.wait_for("*") == [[1]]
    assert await client.wait_for("after") == [[2]]
