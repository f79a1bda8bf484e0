"""Mixed clusters: Python servers on this adapter and real Node.js servers on the Node adapter.

Each scenario of the Node adapter's own test suite (wire-protocol.md §9) runs in both
directions where that makes sense: Node sends -> clients of Python servers receive, and
Python sends -> clients of Node servers receive. All clients are python-socketio clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from socketio_redis_async import CUSTOM_REQUEST_EVENT, AsyncEmitter, RequestTimeoutError
from tests.helpers import Client, barrier, wait_until, wait_until_async
from tests.node_harness import NodeServer

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture
async def make_js(redis_server, key) -> AsyncIterator[Callable[[], Awaitable[NodeServer]]]:
    servers: list[NodeServer] = []

    async def make() -> NodeServer:
        server = await NodeServer.start(redis_server.url, key)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.aclose()
    for server in servers:
        assert server.errors == [], f"the Node server reported errors: {server.errors}"


@pytest.fixture
async def mixed(make_node, make_js, make_client):
    """One Python server and two Node servers, each with one client on / and /custom."""
    py = await make_node()
    js1, js2 = await make_js(), await make_js()
    clients = {
        "py": await make_client(py, ["/", "/custom"], "py"),
        "js1": await make_client(js1, ["/", "/custom"], "js1"),
        "js2": await make_client(js2, ["/", "/custom"], "js2"),
    }
    return py, js1, js2, clients


async def js_barrier(js: NodeServer, clients: list[Client]) -> None:
    """A marker from Node to everyone: what Node sent before it has arrived."""
    counts = {id(c): len(c.received("marker")) for c in clients}
    await js.cmd("emit", event="marker", args=[])
    for client in clients:
        await client.wait_for("marker", counts[id(client)] + 1)


async def test_server_count_includes_python_servers(mixed):
    """Node's serverCount (PUBSUB NUMSUB) counts the Python server exactly once."""
    _, js1, _, _ = mixed
    assert await js1.cmd("serverCount") == 3
    assert await js1.cmd("serverCount", nsp="/custom") == 3


async def test_node_broadcasts_to_all_reach_python_clients(mixed):
    """broadcasts to all clients: Node -> every client, bytes arrive as bytes."""
    _, js1, _, clients = mixed
    await js1.cmd("emit", event="test", args=[1, "2", b"\x03\x04"])
    for client in clients.values():
        assert await client.wait_for("test") == [[1, "2", b"\x03\x04"]]


async def test_python_broadcasts_to_all_reach_node_clients(mixed):
    """broadcasts to all clients: Python -> every client, bytes arrive as bytes."""
    py, _, _, clients = mixed
    await py.sio.emit("test", (1, "2", b"\x03\x04"))
    for client in clients.values():
        assert await client.wait_for("test") == [[1, "2", b"\x03\x04"]]


async def test_broadcasts_to_a_namespace_both_ways(mixed):
    """broadcasts to all clients in a namespace, in both directions."""
    py, js1, _, clients = mixed
    await js1.cmd("emit", nsp="/custom", event="from-js", args=["x"])
    await py.sio.emit("from-py", "y", namespace="/custom")
    for client in clients.values():
        assert await client.wait_for("from-js", namespace="/custom") == [["x"]]
        assert await client.wait_for("from-py", namespace="/custom") == [["y"]]
        assert client.received("from-js") == client.received("from-py") == []


async def test_broadcasts_to_a_room_both_ways(mixed):
    """broadcasts to all clients in a room: members on Node and Python servers receive it."""
    py, js1, js2, clients = mixed
    await py.sio.enter_room(clients["py"].sid(), "room1")
    await js2.cmd("join", sid=clients["js2"].sid(), room="room1")
    await js1.cmd("emit", event="r-js", args=[], to=["room1"])
    await py.sio.emit("r-py", to="room1")
    for name in ("py", "js2"):
        await clients[name].wait_for("r-js")
        await clients[name].wait_for("r-py")
    await js_barrier(js1, [clients["js1"]])
    await barrier(py, [clients["js1"]])
    assert clients["js1"].received("r-js") == clients["js1"].received("r-py") == []


async def test_broadcasts_except_a_room_both_ways(mixed):
    """broadcasts to all clients except in room, in both directions."""
    py, js1, js2, clients = mixed
    await py.sio.enter_room(clients["py"].sid(), "room3")
    await js2.cmd("join", sid=clients["js2"].sid(), room="room3")
    await js1.cmd("emit", event="x-js", args=[], **{"except": ["room3"]})
    await py.adapter.except_("room3").emit("x-py")
    await clients["js1"].wait_for("x-js")
    await clients["js1"].wait_for("x-py")
    await js_barrier(js1, list(clients.values()))
    await barrier(py, list(clients.values()))
    for name in ("py", "js2"):
        assert clients[name].received("x-js") == clients[name].received("x-py") == []


async def test_broadcasts_once_to_several_rooms_both_ways(mixed):
    """broadcasts to all clients once: to(room1).to(room2).except(room3), both directions."""
    py, js1, js2, clients = mixed
    for room in ("room1", "room2"):
        await py.sio.enter_room(clients["py"].sid(), room)
    await js2.cmd("join", sid=clients["js2"].sid(), room="room2")
    await js2.cmd("join", sid=clients["js2"].sid(), room="room3")
    await js1.cmd("join", sid=clients["js1"].sid(), room="room1")
    await js1.cmd("emit", event="o-js", args=[], to=["room1", "room2"], **{"except": ["room3"]})
    await py.adapter.to("room1", "room2").except_("room3").emit("o-py")
    await js_barrier(js1, list(clients.values()))
    await barrier(py, list(clients.values()))
    for name in ("py", "js1"):
        assert clients[name].received("o-js") == clients[name].received("o-py") == [[]]
    assert clients["js2"].received("o-js") == clients["js2"].received("o-py") == []


async def test_local_broadcasts_stay_local_both_ways(mixed):
    """broadcasts to local clients only: Node's .local and Python's .local stay on their server."""
    py, js1, _, clients = mixed
    await js1.cmd("emit", event="l-js", args=[], local=True)
    await py.adapter.of("/").local.emit("l-py")
    await clients["js1"].wait_for("l-js")
    await clients["py"].wait_for("l-py")
    await js_barrier(js1, list(clients.values()))
    await barrier(py, list(clients.values()))
    assert clients["py"].received("l-js") == clients["js2"].received("l-js") == []
    assert clients["js1"].received("l-py") == clients["js2"].received("l-py") == []


async def test_broadcasts_to_a_single_client_both_ways(mixed):
    """broadcasts to a single client: io.to(pythonSid) and sio.emit(to=nodeSid)."""
    py, js1, _, clients = mixed
    await js1.cmd("emit", event="one-js", args=[1], to=[clients["py"].sid()])
    await py.sio.emit("one-py", 2, to=clients["js1"].sid())
    assert await clients["py"].wait_for("one-js") == [[1]]
    assert await clients["js1"].wait_for("one-py") == [[2]]
    await js_barrier(js1, list(clients.values()))
    assert clients["js2"].received("one-js") == clients["js2"].received("one-py") == []


async def test_numeric_rooms_both_ways(mixed):
    """broadcasts to a numeric room: numbers match numbers across languages."""
    py, js1, js2, clients = mixed
    await py.sio.enter_room(clients["py"].sid(), 123)
    await js2.cmd("join", sid=clients["js2"].sid(), room=123)
    await js1.cmd("emit", event="n-js", args=[], to=[123])
    await py.sio.emit("n-py", to=123)
    for name in ("py", "js2"):
        await clients[name].wait_for("n-js")
        await clients[name].wait_for("n-py")


async def test_node_acks_from_python_clients(mixed):
    """broadcasts with multiple acknowledgements: Node collects every client's ack, incl. binary."""
    _, js1, _, clients = mixed
    for name, client in clients.items():
        client.ack_value = lambda event, args, name=name: [name, b"\x01\x02"]
    result = await js1.cmd("emitWithAck", event="ask", args=[], timeout=5000)
    assert result["error"] is None
    assert sorted(result["responses"]) == [[n, b"\x01\x02"] for n in ("js1", "js2", "py")]


async def test_node_acks_with_no_client(mixed):
    """broadcasts with multiple acknowledgements (no client): Node gets [] at once."""
    _, js1, _, _ = mixed
    result = await js1.cmd("emitWithAck", event="ask", args=[], to=["nobody"], timeout=5000)
    assert result == {"error": None, "responses": []}


async def test_node_acks_timeout_with_partial_responses(mixed):
    """broadcasts with multiple acknowledgements (timeout): the silent Python client times out."""
    _, js1, _, clients = mixed
    clients["py"].never_ack.add("ask")
    result = await js1.cmd("emitWithAck", event="ask", args=[], timeout=500)
    assert result["error"] == "operation has timed out"
    assert len(result["responses"]) == 2


async def test_python_call_to_node_client(mixed):
    """sio.call to a socket on a Node server returns its ack."""
    py, _, _, clients = mixed
    clients["js2"].ack_value = lambda event, args: {"from": "node"}
    assert await py.sio.call("ask", 1, to=clients["js2"].sid(), timeout=5) == {"from": "node"}
    await wait_until(lambda: py.adapter.stats["pending_acks"] == 0)


async def test_node_sockets_join_and_leave_python_sockets(mixed):
    """socketsJoin/socketsLeave from Node apply to Python sockets (all, matching, given)."""
    py, js1, _, clients = mixed
    sid = clients["py"].sid()
    await js1.cmd("socketsJoin", rooms=["all-room"])
    await wait_until(lambda: "all-room" in py.sio.rooms(sid))
    await js1.cmd("socketsJoin", rooms=["matched"], to=["all-room"])
    await wait_until(lambda: "matched" in py.sio.rooms(sid))
    await js1.cmd("socketsJoin", rooms=["given"], to=[sid])
    await wait_until(lambda: "given" in py.sio.rooms(sid))
    js_sockets = await js1.cmd("localSockets")
    assert "given" not in js_sockets[0]["rooms"]
    await js1.cmd("socketsLeave", rooms=["all-room", "given"], to=["matched"])
    await wait_until(lambda: {"all-room", "given"}.isdisjoint(py.sio.rooms(sid)))
    await js1.cmd("emit", event="in-matched", args=[], to=["matched"])
    await clients["py"].wait_for("in-matched")


async def test_python_enter_room_on_node_socket(mixed):
    """sio.enter_room / leave_room on a Node-held sid act on the Node server."""
    py, _, js2, clients = mixed
    sid = clients["js2"].sid()

    async def rooms():
        return [s for s in await js2.cmd("localSockets") if s["id"] == sid][0]["rooms"]

    await py.sio.enter_room(sid, "from-python")
    await wait_until_async(lambda r: "from-python" in r, rooms)
    await py.sio.leave_room(sid, "from-python")
    await wait_until_async(lambda r: "from-python" not in r, rooms)


async def test_node_disconnect_sockets_disconnects_python_clients(mixed):
    """disconnectSockets from Node: every client, Python servers' included, is disconnected."""
    _, js1, _, clients = mixed
    await js1.cmd("disconnectSockets", close=False)
    for client in clients.values():
        await client.wait_disconnected()


async def test_python_disconnect_of_node_socket(mixed):
    """sio.disconnect(nodeSid) disconnects the client of the Node server."""
    py, _, _, clients = mixed
    await py.sio.disconnect(clients["js1"].sid())
    await clients["js1"].wait_disconnected()
    assert not clients["py"].disconnected.is_set()


async def test_emitter_reaches_python_clients(mixed):
    """The Node emitter's emit (data, rooms, except, namespaces) reaches Python clients."""
    py, js1, _, clients = mixed
    await py.sio.enter_room(clients["py"].sid(), "e-room")
    await js1.cmd("emitter.emit", event="e-all", args=[1, "s", b"\x09", {"a": None}])
    await js1.cmd("emitter.emit", event="e-room", args=[], to=["e-room"])
    await js1.cmd("emitter.emit", event="e-except", args=[], **{"except": ["e-room"]})
    await js1.cmd("emitter.emit", nsp="/custom", event="e-nsp", args=[])
    py_client = clients["py"]
    assert await py_client.wait_for("e-all") == [[1, "s", b"\x09", {"a": None}]]
    await py_client.wait_for("e-room")
    await py_client.wait_for("e-nsp", namespace="/custom")
    await clients["js2"].wait_for("e-except")
    await js_barrier(js1, [py_client])
    assert py_client.received("e-except") == []


async def test_emitter_sockets_join_leave_disconnect_python(mixed):
    """The Node emitter's socketsJoin/socketsLeave/disconnectSockets act on Python sockets."""
    py, js1, _, clients = mixed
    sid = clients["py"].sid()
    await js1.cmd("emitter.socketsJoin", rooms=["ej"])
    await wait_until(lambda: "ej" in py.sio.rooms(sid))
    await js1.cmd("emitter.socketsLeave", rooms=["ej"], to=[sid])
    await wait_until(lambda: "ej" not in py.sio.rooms(sid))
    await js1.cmd("emitter.disconnectSockets", close=True, to=[sid])
    await clients["py"].wait_disconnected()
    assert not clients["js1"].disconnected.is_set()


async def test_python_tolerates_foreign_channels_and_node_survives_python(mixed, redis_client, key):
    """ignores messages from unknown channels; Python traffic never breaks Node's subscriber."""
    py, js1, _, clients = mixed
    await redis_client.publish("foo", b"junk")
    await redis_client.publish("woot", b"junk")
    await py.sio.emit("after", b"\x00")
    await js1.cmd("emit", event="after-js", args=[])
    for client in clients.values():
        await client.wait_for("after")
        await client.wait_for("after-js")


async def test_node_remote_socket_ack_from_python_client(mixed):
    """A Node RemoteSocket emit with ack reaches a Python server's client and returns its ack."""
    _, js1, _, clients = mixed
    clients["py"].ack_value = lambda event, args: ["ok", *args]
    result = await js1.cmd(
        "remoteSocketEmitWithAck", sid=clients["py"].sid(), event="q", args=[5], timeout=5000
    )
    assert result["error"] is None and result["remote"] is True
    assert result["response"] == ["ok", 5]


async def test_node_all_rooms_includes_python_rooms(mixed):
    """allRooms: Node's allRooms() includes the Python server's rooms, and all_rooms() Node's."""
    py, js1, js2, clients = mixed
    await py.sio.enter_room(clients["py"].sid(), "py-room")
    await js2.cmd("join", sid=clients["js2"].sid(), room="js-room")
    expected = {c.sid() for c in clients.values()} | {"py-room", "js-room"}
    assert set(await js1.cmd("allRooms")) == expected
    assert await py.adapter.all_rooms() == expected
    assert py.adapter.stats["pending_requests"] == 0


async def test_fetch_sockets_both_ways(mixed):
    """fetchSockets: Node sees Python sockets (handshake, data, rooms) and Python sees Node's."""
    py, js1, js2, clients = mixed
    py_sid, js_sid = clients["py"].sid(), clients["js2"].sid()
    py.adapter.set_socket_data(py_sid, "test")
    await js2.cmd("setData", sid=js_sid, data={"n": 1})
    found = {s["id"]: s for s in await js1.cmd("fetchSockets")}
    assert set(found) == {c.sid() for c in clients.values()}
    assert found[py_sid]["data"] == "test"
    assert found[py_sid]["rooms"] == [py_sid]
    assert found[py_sid]["handshake"]["query"]["transport"] == "websocket"
    one = await js1.cmd("fetchSockets", to=[py_sid])
    assert [s["id"] for s in one] == [py_sid]
    mine = {s.id: s for s in await py.adapter.fetch_sockets()}
    assert set(mine) == set(found)
    assert mine[js_sid].data == {"n": 1} and mine[js_sid].rooms == {js_sid}
    assert mine[js_sid].handshake["query"]["transport"] == "websocket"


async def test_server_side_emit_both_ways(mixed):
    """serverSideEmit: Node -> Python and Python -> Node handlers, with and without acks."""
    py, js1, js2, _ = mixed
    got: list[tuple[object, ...]] = []

    def hello(*args: object) -> str:
        got.append(args)
        return "py-answer"

    py.adapter.on("hello", hello)
    await js1.cmd("serverSideEmit", event="hello", args=[1, "two"])
    await wait_until(lambda: got == [(1, "two")])
    await js2.cmd("onServerSideEmit", event="hello", reply="js2-answer")
    result = await js1.cmd("serverSideEmitWithAck", event="hello", args=[])
    assert result["error"] is None and sorted(result["responses"]) == ["js2-answer", "py-answer"]
    await js1.cmd("onServerSideEmit", event="from-py", reply="js1-answer")
    await js2.cmd("onServerSideEmit", event="from-py", reply="js2-answer")
    await py.adapter.server_side_emit("from-py", {"k": 1})
    await js1.wait_event(type="serverSideEvent", event="from-py")
    assert js1.matching(type="serverSideEvent", event="from-py")[0]["args"] == [{"k": 1}]
    assert sorted(await py.adapter.server_side_emit_with_ack("from-py")) == [
        "js1-answer",
        "js2-answer",
    ]


async def test_server_side_emit_timeout_text_matches_node(mixed):
    """serverSideEmit timeout: both sides give Node's 'timeout reached: only 1 ...' text."""
    py, js1, js2, _ = mixed
    await js2.cmd("onServerSideEmit", event="half", reply="ok")
    with pytest.raises(RequestTimeoutError) as info:
        await py.adapter.server_side_emit_with_ack("half", timeout=1)
    assert info.value.args[0] == "timeout reached: only 1 responses received out of 2"
    # Node answers are unsigned: both Node uids are candidates, and one of them answered.
    assert sorted(info.value.silent_servers) == sorted([js1.uids["/"], js2.uids["/"]])
    assert info.value.unsigned_answers == 1
    py.adapter.on("half", lambda: None)
    await js1.cmd("offServerSideEmit", event="half")
    await js2.cmd("onServerSideEmit", event="half")  # never answers now
    result = await js1.cmd("serverSideEmitWithAck", event="half", args=[])
    assert result["error"] == "timeout reached: only 1 responses received out of 2"


async def test_custom_request_answered_by_node(mixed):
    """custom_request() travels as a server-side emit that Node servers can answer."""
    py, js1, js2, _ = mixed
    for js, name in ((js1, "js1"), (js2, "js2")):
        await js.cmd("onServerSideEmit", event=CUSTOM_REQUEST_EVENT, reply=name)
    py.adapter.custom_hook = lambda data: "py"
    assert sorted(await py.adapter.custom_request("q")) == ["js1", "js2", "py"]


async def test_emitter_server_side_emit_reaches_python(mixed):
    """The Node emitter's serverSideEmit reaches Python handlers."""
    py, js1, _, _ = mixed
    got: list[tuple[object, ...]] = []
    py.adapter.on("from-emitter", lambda *args: got.append(args))
    await js1.cmd("emitter.serverSideEmit", event="from-emitter", args=["e"])
    await wait_until(lambda: got == [("e",)])


async def test_python_emitter_drives_node_servers(mixed, redis_server, key):
    """Emitter -> Node: data, rooms, except, sockets_join/leave, disconnect, server_side_emit."""
    py, js1, js2, clients = mixed
    async with AsyncEmitter(redis_server.url, key=key) as emitter:
        payload = [1, "s", b"\x07", {"a": [None, True]}]
        await emitter.emit("em-all", *payload)
        for client in clients.values():
            assert await client.wait_for("em-all") == [payload]
        await js2.cmd("join", sid=clients["js2"].sid(), room="em-room")
        await emitter.to("em-room").emit("em-room")
        await emitter.except_("em-room").emit("em-except")
        await emitter.of("custom").emit("em-nsp")
        await clients["js2"].wait_for("em-room")
        await clients["js1"].wait_for("em-except")
        await clients["js1"].wait_for("em-nsp", namespace="/custom")
        await js_barrier(js1, [clients["js2"]])
        assert clients["js2"].received("em-except") == []
        await emitter.to(clients["js1"].sid()).sockets_join("em-joined")
        sid = clients["js1"].sid()

        async def js1_rooms():
            return next(s["rooms"] for s in await js1.cmd("localSockets") if s["id"] == sid)

        await wait_until_async(lambda r: "em-joined" in r, js1_rooms)
        await emitter.sockets_leave("em-joined")
        await wait_until_async(lambda r: "em-joined" not in r, js1_rooms)
        await js1.cmd("onServerSideEmit", event="em-sse")
        await emitter.server_side_emit("em-sse", 5)
        await js1.wait_event(type="serverSideEvent", event="em-sse")
        await emitter.to(clients["js2"].sid()).disconnect_sockets()
        await clients["js2"].wait_disconnected()
        assert not clients["js1"].disconnected.is_set()


async def test_python_emit_with_ack_collects_node_clients(mixed):
    """broadcasts with multiple acknowledgements, from Python: Node servers send counts and acks."""
    py, _, _, clients = mixed
    for name, client in clients.items():
        client.ack_value = lambda event, args, name=name: [name, b"\x05"]
    acks = await py.adapter.emit_with_ack("q", timeout=5)
    assert sorted(acks) == [[n, b"\x05"] for n in ("js1", "js2", "py")]
    assert await py.adapter.emit_with_ack("q", to="nobody", timeout=5) == []
    clients["js2"].never_ack.add("slow")
    with pytest.raises(RequestTimeoutError, match="operation has timed out") as info:
        await py.adapter.emit_with_ack("slow", timeout=0.5)
    assert sorted(info.value.responses) == [["js1", b"\x05"], ["py", b"\x05"]]
    assert py.adapter.stats["pending_acks"] == 0


async def test_python_sockets_join_leave_disconnect_on_node_sockets(mixed):
    """socketsJoin/socketsLeave/disconnectSockets from Python act on Node servers' sockets."""
    py, js1, js2, clients = mixed
    js1_sid, js2_sid = clients["js1"].sid(), clients["js2"].sid()

    async def rooms_on(js, sid):
        return next(s["rooms"] for s in await js.cmd("localSockets") if s["id"] == sid)

    await py.adapter.sockets_join("all-py")
    await wait_until_async(lambda r: "all-py" in r, lambda: rooms_on(js1, js1_sid))
    await wait_until_async(lambda r: "all-py" in r, lambda: rooms_on(js2, js2_sid))
    assert "all-py" in py.sio.rooms(clients["py"].sid())
    await py.adapter.sockets_join("given", to=js2_sid)
    await wait_until_async(lambda r: "given" in r, lambda: rooms_on(js2, js2_sid))
    await py.adapter.sockets_leave("all-py", to="given")
    await wait_until_async(lambda r: "all-py" not in r, lambda: rooms_on(js2, js2_sid))
    assert "all-py" in await rooms_on(js1, js1_sid)
    await py.adapter.disconnect_sockets(except_rooms=js1_sid)
    await clients["js2"].wait_disconnected()
    await clients["py"].wait_disconnected()
    assert not clients["js1"].disconnected.is_set()


async def test_node_fetch_sockets_local_only(mixed):
    """fetchSockets: returns only local socket instances with .local, even with Python peers."""
    _, js1, _, clients = mixed
    assert [s["id"] for s in await js1.cmd("fetchSockets", local=True)] == [clients["js1"].sid()]
