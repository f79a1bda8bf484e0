"""Room changes, disconnects and acks on sockets that live on another server."""

from __future__ import annotations

import json

import pytest
import socketio

from tests.helpers import wait_until

pytestmark = pytest.mark.anyio


async def test_enter_room_on_remote_sid(make_node, make_client):
    """enter_room for a sid held by another node makes it a member there."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    await a.sio.enter_room(client.sid(), "joined")
    await wait_until(lambda: "joined" in b.sio.rooms(client.sid()))
    await a.sio.emit("room-ev", to="joined")
    assert await client.wait_for("room-ev") == [[]]


async def test_leave_room_on_remote_sid(make_node, make_client):
    """leave_room for a sid held by another node removes it there."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    await b.sio.enter_room(client.sid(), "gone")
    await a.sio.leave_room(client.sid(), "gone")
    await wait_until(lambda: "gone" not in b.sio.rooms(client.sid()))


async def test_close_room_across_nodes(make_node, make_client):
    """close_room empties the room on every node."""
    a, b = await make_node(), await make_node()
    ca, cb = await make_client(a), await make_client(b)
    await a.sio.enter_room(ca.sid(), "closing")
    await b.sio.enter_room(cb.sid(), "closing")
    await a.sio.close_room("closing")
    assert "closing" not in a.sio.rooms(ca.sid())
    await wait_until(lambda: "closing" not in b.sio.rooms(cb.sid()))


async def test_disconnect_remote_sid(make_node, make_client):
    """sio.disconnect on a sid held by another node disconnects that client."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    sid = client.sid()
    await a.sio.disconnect(sid)
    await client.wait_disconnected()
    await wait_until(lambda: sid not in b.sids())


async def test_call_gets_ack_from_remote_client(make_node, make_client):
    """sio.call to a sid on another node returns that client's ack."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    client.ack_value = lambda event, args: {"got": args}
    assert await a.sio.call("ask", "q", to=client.sid(), timeout=5) == {"got": ["q"]}
    assert a.adapter.stats["pending_acks"] == 0


async def test_emit_callback_from_remote_client(make_node, make_client):
    """An emit with a callback to a remote sid calls it with the client's ack."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    client.ack_value = lambda event, args: "pong"
    got: list[object] = []
    await a.sio.emit("ping", to=client.sid(), callback=got.append)
    await wait_until(lambda: got == ["pong"])


async def test_call_timeout_and_expiry(make_node, make_client):
    """A remote client that never acks makes call() time out, and the entry expires."""
    a = await make_node(ack_timeout=0.5)
    b = await make_node()
    client = await make_client(b)
    client.never_ack.add("ask")
    with pytest.raises(socketio.exceptions.TimeoutError):
        await a.sio.call("ask", to=client.sid(), timeout=0.2)
    assert a.adapter.stats["pending_acks"] == 1
    await wait_until(lambda: a.adapter.stats["pending_acks"] == 0)


async def test_local_call_does_not_touch_redis(make_node, make_client):
    """call() to a local sid is answered without a request on Redis."""
    a = await make_node()
    client = await make_client(a)
    client.ack_value = lambda event, args: 42
    before = a.adapter.stats["published"]
    assert await a.sio.call("ask", to=client.sid(), timeout=5) == 42
    assert a.adapter.stats["published"] == before


async def test_a_socket_never_leaves_its_own_sid_room(make_node, make_client, redis_client, key):
    """Remote and local leaves of a socket's own sid room are refused; emits to it still arrive."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    sid = client.sid()
    await b.sio.enter_room(sid, "lobby")
    # What any peer can publish: every socket leaves the room named after this sid.
    request = {"type": 3, "opts": {"rooms": []}, "rooms": [sid, "lobby"]}
    await redis_client.publish(f"{key}-request#/#", json.dumps(request))
    await wait_until(lambda: "lobby" not in b.sio.rooms(sid))  # the other room is left
    await a.adapter.sockets_leave(sid)
    await a.sio.close_room(sid)
    await a.sio.leave_room(sid, sid)
    await (await a.adapter.fetch_sockets(sid))[0].leave(sid)
    await b.sio.leave_room(sid, sid)
    await b.adapter.sockets_leave(sid)
    await b.adapter.remote_leave(sid, sid)
    assert sid in b.sio.rooms(sid)
    await a.sio.emit("remote", to=sid)
    assert await client.wait_for("remote") == [[]]
    await b.sio.emit("local", to=sid)
    assert await client.wait_for("local") == [[]]
    assert sid in b.sio.rooms(sid)
