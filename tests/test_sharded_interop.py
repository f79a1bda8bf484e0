"""Mixed sharded clusters: AsyncShardedRedisAdapter next to Node's ``createShardedAdapter``.

The Node suite's ``[sharded]`` scenarios (wire-protocol.md §9) run in both directions
between one Python server and one Node server (tests/interop/server.js ``--sharded``), in
each subscription mode on a standalone Redis 7, and in ``dynamic`` mode on a Redis Cluster
(Node on node-redis's cluster client). Servers start once per topology; clients are new in
every test, so rooms and subscriptions do not leak from one test into the next.

Needs Redis >= 7 (sharded pub/sub): the embedded 6.2 Redis cannot run this file.
Not ported: Node's emitter (classic only, socket.io-redis-emitter#127; the Python sharded
emitter drives Node instead), Node's allRooms (ClusterAdapter has none), numeric rooms
(skipped for sharded in the Node suite too).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
import redis.asyncio

from socketio_redis_async import CUSTOM_REQUEST_EVENT, AsyncEmitter, RequestTimeoutError
from tests.helpers import Client, Node, barrier, wait_until, wait_until_async
from tests.node_harness import NodeClient, NodeServer

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

MODES = ["static", "dynamic", "dynamic-private"]
# (subscription mode, on the Redis Cluster fixture?)
STANDALONE = {mode: pytest.param((mode, False), id=mode) for mode in MODES}
TOPOLOGIES = list(STANDALONE.values())
TOPOLOGIES.append(pytest.param(("dynamic", True), id="cluster-dynamic"))
PY_REQUESTS_TIMEOUT = 1.0  # shorter than Node's fixed 5 s


def redis_urls(request: pytest.FixtureRequest, cluster: bool) -> list[str]:
    """Two Redis URLs: the standalone server twice, or two different cluster nodes."""
    if cluster:
        nodes = request.getfixturevalue("redis_cluster")
        return [nodes.url(0), nodes.url(1)]
    return [request.getfixturevalue("redis_server").url] * 2


# Harness check: two Node servers, real socket.io-client clients (no Python adapter).


@pytest.mark.parametrize("topology", TOPOLOGIES)
async def test_two_node_sharded_servers_see_each_other(topology, request, key):
    """Harness: two Node sharded servers count each other and relay room and sid broadcasts."""
    mode, cluster = topology
    urls = redis_urls(request, cluster)
    servers: list[NodeServer] = []
    clients: list[NodeClient] = []
    try:
        for url in urls:
            servers.append(await NodeServer.start(url, key, cluster=cluster, sharded=mode))
        a, b = servers
        for server in servers:
            clients.append(await NodeClient.connect(server.url, ["/"]))
            await server.wait_event(type="connection", sid=clients[-1].sid())
        ca, cb = clients
        assert await a.cmd("serverCount") == 2 and await b.cmd("serverCount") == 2
        await b.cmd("join", sid=cb.sid(), room="lobby")
        await a.cmd("emit", event="in-room", args=[1, "two"], to=["lobby"])
        assert (await cb.wait_event(type="event", event="in-room"))["args"] == [1, "two"]
        await b.cmd("emit", event="to-sid", args=[3], to=[ca.sid()])
        assert (await ca.wait_event(type="event", event="to-sid"))["args"] == [3]
        await a.cmd("emit", event="marker", args=[])
        await ca.wait_event(type="event", event="marker")
        assert ca.matching(type="event", event="in-room") == []
        with pytest.raises(Exception, match="allRooms is not available with --sharded"):
            await a.cmd("allRooms")
    finally:
        for client in clients:
            await client.aclose()
        for server in servers:
            await server.aclose()
    for server in servers:
        assert server.errors == [], f"the Node server reported errors: {server.errors}"


# Python <-> Node


@dataclass
class Mixed:
    """One Python sharded server and one Node sharded server on the same Redis (Cluster)."""

    mode: str
    cluster: bool
    prefix: str
    url: str  # the Python server's Redis
    py: Node
    js: NodeServer


@pytest.fixture(scope="module", params=TOPOLOGIES)
async def servers(request: pytest.FixtureRequest) -> AsyncIterator[Mixed]:
    from socketio_redis_async import AsyncShardedRedisAdapter  # the lead's class (issue 12)

    mode, cluster = request.param
    urls = redis_urls(request, cluster)
    prefix = f"s{uuid.uuid4().hex[:10]}"
    py = await Node.start(
        urls[1],
        prefix,
        adapter_class=AsyncShardedRedisAdapter,
        subscription_mode=mode,
        requests_timeout=PY_REQUESTS_TIMEOUT,
    )
    try:
        js = await NodeServer.start(urls[0], prefix, cluster=cluster, sharded=mode)
    except BaseException:
        await py.aclose()
        raise
    yield Mixed(mode, cluster, prefix, urls[1], py, js)
    await py.aclose()
    await js.aclose()
    assert js.errors == [], f"the Node server reported errors: {js.errors}"


@dataclass
class Pair:
    """``cp`` is a client of the Python server, ``cj`` one of the Node server."""

    mode: str
    py: Node
    js: NodeServer
    cp: Client
    cj: Client

    @property
    def dynamic(self) -> bool:
        return self.mode != "static"

    @property
    def clients(self) -> list[Client]:
        return [self.cp, self.cj]


@pytest.fixture
async def pair(servers: Mixed) -> AsyncIterator[Pair]:
    """A fresh python-socketio client on each server, both ready for broadcasts to their sid."""
    cp, cj = Client("py"), Client("js")
    try:
        await cp.connect(servers.py)
        await cj.connect(servers.js)  # type: ignore[arg-type]  # a NodeServer has .url
        # The harness prints "connection" once Node's own sid-room SSUBSCRIBE is in Redis.
        await servers.js.wait_event(type="connection", sid=cj.sid())
        if servers.mode == "dynamic-private":
            await wait_room_subscribers(servers.js, cp.sid(), 1)
        yield Pair(servers.mode, servers.py, servers.js, cp, cj)
    finally:
        await cp.aclose()
        await cj.aclose()
    assert servers.js.errors == [], f"the Node server reported errors: {servers.js.errors}"


async def wait_room_subscribers(js: NodeServer, room: Any, count: int) -> None:
    """Wait until SHARDNUMSUB of the room's channel (summed over the masters) is ``count``."""
    await wait_until_async(lambda n: n == [count], lambda: js.cmd("roomSubscribers", rooms=[room]))


async def js_barrier(p: Pair) -> None:
    """A marker broadcast from Node to both clients: what Node sent before it has arrived."""
    counts = {id(c): len(c.received("marker")) for c in p.clients}
    await p.js.cmd("emit", event="marker", args=[])
    for client in p.clients:
        await client.wait_for("marker", counts[id(client)] + 1)


async def js_rooms(p: Pair) -> list[Any]:
    """Rooms of the Node server's client, as Node sees them."""
    sid = p.cj.sid()
    rooms: list[Any] = next(s["rooms"] for s in await p.js.cmd("localSockets") if s["id"] == sid)
    return rooms


async def test_server_count_counts_both(pair):
    """serverCount: SHARDNUMSUB of K#N# counts the Python and the Node server, on both sides."""
    assert await pair.py.adapter.server_count() == 2
    assert await pair.js.cmd("serverCount") == 2


async def test_broadcast_to_all_both_ways(pair):
    """broadcasts to all clients: Node -> both and Python -> both, bytes arrive as bytes."""
    await pair.js.cmd("emit", event="from-js", args=[1, "2", b"\x03\x04"])
    await pair.py.sio.emit("from-py", (1, "2", b"\x03\x04"))
    for client in pair.clients:
        assert await client.wait_for("from-js") == [[1, "2", b"\x03\x04"]]
        assert await client.wait_for("from-py") == [[1, "2", b"\x03\x04"]]


async def test_broadcast_to_a_namespace_both_ways(servers):
    """broadcasts to all clients in a namespace: /custom clients get it, / clients do not."""
    clients = [Client("py"), Client("js")]
    try:
        await clients[0].connect(servers.py, ["/", "/custom"])
        await clients[1].connect(servers.js, ["/", "/custom"])
        await servers.js.wait_event(type="connection", nsp="/custom", sid=clients[1].sid("/custom"))
        await servers.js.cmd("emit", nsp="/custom", event="from-js", args=["x"])
        await servers.py.sio.emit("from-py", "y", namespace="/custom")
        for client in clients:
            assert await client.wait_for("from-js", namespace="/custom") == [["x"]]
            assert await client.wait_for("from-py", namespace="/custom") == [["y"]]
        assert await servers.js.cmd("serverCount", nsp="/custom") == 2
        assert await servers.py.adapter.server_count(namespace="/custom") == 2
        await servers.py.sio.emit("marker")
        await servers.js.cmd("emit", event="marker", args=[])
        for client in clients:
            await client.wait_for("marker", count=2)
            assert client.received("from-js") == client.received("from-py") == []
    finally:
        for client in clients:
            await client.aclose()


async def test_broadcast_to_a_room_both_ways(pair):
    """broadcasts to all clients in a room: only the remote member gets it, in both directions."""
    await pair.py.sio.enter_room(pair.cp.sid(), "room-py")
    await pair.js.cmd("join", sid=pair.cj.sid(), room="room-js")
    await pair.js.cmd("emit", event="r-js", args=["a"], to=["room-py"])
    await pair.py.sio.emit("r-py", "b", to="room-js")
    assert await pair.cp.wait_for("r-js") == [["a"]]
    assert await pair.cj.wait_for("r-py") == [["b"]]
    await js_barrier(pair)
    await barrier(pair.py, pair.clients)
    assert pair.cj.received("r-js") == pair.cp.received("r-py") == []


async def test_broadcast_except_a_room_both_ways(pair):
    """broadcasts to all clients except in room, in both directions."""
    await pair.py.sio.enter_room(pair.cp.sid(), "ex-py")
    await pair.js.cmd("join", sid=pair.cj.sid(), room="ex-js")
    await pair.js.cmd("emit", event="x-js", args=[], **{"except": ["ex-js"]})
    await pair.py.adapter.except_("ex-py").emit("x-py")
    await pair.cp.wait_for("x-js")
    await pair.cj.wait_for("x-py")
    await js_barrier(pair)
    await barrier(pair.py, pair.clients)
    assert pair.cj.received("x-js") == pair.cp.received("x-py") == []


async def test_broadcast_once_to_several_rooms_except_one_both_ways(pair):
    """broadcasts to all clients once: to(room1).to(room2).except(room3), both directions."""
    for room in ("o1", "o2"):
        await pair.py.sio.enter_room(pair.cp.sid(), room)
        await pair.js.cmd("join", sid=pair.cj.sid(), room=room)
    await pair.js.cmd("emit", event="o-js", args=[], to=["o1", "o2"], **{"except": ["o3"]})
    await pair.py.adapter.to("o1", "o2").except_("o3").emit("o-py")
    await js_barrier(pair)
    await barrier(pair.py, pair.clients)
    for client in pair.clients:
        assert client.received("o-js") == client.received("o-py") == [[]]
    await pair.js.cmd("join", sid=pair.cj.sid(), room="o3")
    await pair.py.sio.enter_room(pair.cp.sid(), "o3")
    await pair.js.cmd("emit", event="o3-js", args=[], to=["o1", "o2"], **{"except": ["o3"]})
    await pair.py.adapter.to("o1", "o2").except_("o3").emit("o3-py")
    await js_barrier(pair)
    await barrier(pair.py, pair.clients)
    for client in pair.clients:
        assert client.received("o3-js") == client.received("o3-py") == []


async def test_local_broadcasts_stay_local_both_ways(pair):
    """broadcasts to local clients only: Node's .local and Python's .local stay on their server."""
    await pair.js.cmd("emit", event="l-js", args=[], local=True)
    await pair.py.adapter.of("/").local.emit("l-py")
    await pair.cj.wait_for("l-js")
    await pair.cp.wait_for("l-py")
    await js_barrier(pair)
    await barrier(pair.py, pair.clients)
    assert pair.cp.received("l-js") == pair.cj.received("l-py") == []


async def test_broadcast_to_a_socket_id_both_ways(pair):
    """broadcasts to a single client: to(sid) crosses over (the sid heuristic, sid channels)."""
    await pair.js.cmd("emit", event="one-js", args=[1], to=[pair.cp.sid()])
    await pair.py.sio.emit("one-py", 2, to=pair.cj.sid())
    assert await pair.cp.wait_for("one-js") == [[1]]
    assert await pair.cj.wait_for("one-py") == [[2]]
    await js_barrier(pair)
    await barrier(pair.py, pair.clients)
    assert pair.cj.received("one-js") == pair.cp.received("one-py") == []


async def test_fetch_sockets_both_ways(pair):
    """fetchSockets: each side sees the other's socket with its handshake, data and rooms."""
    py_sid, js_sid = pair.cp.sid(), pair.cj.sid()
    pair.py.adapter.set_socket_data(py_sid, "test")
    await pair.js.cmd("setData", sid=js_sid, data={"n": 1})
    await pair.py.sio.enter_room(py_sid, "f-room")
    found = {s["id"]: s for s in await pair.js.cmd("fetchSockets")}
    assert set(found) == {py_sid, js_sid}
    assert found[py_sid]["data"] == "test"
    assert sorted(found[py_sid]["rooms"]) == sorted([py_sid, "f-room"])
    assert found[py_sid]["handshake"]["query"]["transport"] == "websocket"
    assert [s["id"] for s in await pair.js.cmd("fetchSockets", to=["f-room"])] == [py_sid]
    mine = {s.id: s for s in await pair.py.adapter.fetch_sockets()}
    assert set(mine) == {py_sid, js_sid}
    assert mine[js_sid].data == {"n": 1} and mine[js_sid].rooms == {js_sid}
    assert mine[js_sid].handshake["query"]["transport"] == "websocket"


async def test_fetch_sockets_local_only_both_ways(pair):
    """fetchSockets: returns only local socket instances with .local, on both sides."""
    assert [s["id"] for s in await pair.js.cmd("fetchSockets", local=True)] == [pair.cj.sid()]
    assert [s.id for s in await pair.py.adapter.of("/").local.fetch_sockets()] == [pair.cp.sid()]


async def test_python_cluster_api_beyond_node_reaches_node_sockets(pair):
    """all_rooms, clients, client_rooms, remote_join/leave/disconnect, custom_request with Node."""
    py, js, cj_sid = pair.py.adapter, pair.js, pair.cj.sid()
    await js.cmd("join", sid=cj_sid, room="seed-js")
    await pair.py.sio.enter_room(pair.cp.sid(), "seed-py")
    assert await py.all_rooms() == {pair.cp.sid(), cj_sid, "seed-js", "seed-py"}
    assert sorted(await py.clients()) == sorted([pair.cp.sid(), cj_sid])
    assert await py.clients("seed-js") == [cj_sid]
    assert await py.client_rooms(cj_sid) == {cj_sid, "seed-js"}
    await py.remote_join(cj_sid, "seed-joined")
    await wait_until_async(lambda rooms: "seed-joined" in rooms, lambda: js_rooms(pair))
    await py.remote_leave(cj_sid, "seed-joined")
    await wait_until_async(lambda rooms: "seed-joined" not in rooms, lambda: js_rooms(pair))
    await js.cmd("onServerSideEmit", event=CUSTOM_REQUEST_EVENT, reply="js")
    py.custom_hook = lambda data: f"py:{data}"
    try:
        assert await py.custom_request("q") == ["py:q", "js"]
    finally:
        py.custom_hook = None
        await js.cmd("offServerSideEmit", event=CUSTOM_REQUEST_EVENT)
    await py.remote_disconnect(cj_sid)
    await pair.cj.wait_disconnected()
    with pytest.raises(RequestTimeoutError):
        await py.remote_join(cj_sid, "gone")


async def test_node_remote_socket_acts_on_python_socket(pair):
    """Node RemoteSocket emit/join/leave/disconnect (fetchSockets) act on a Python socket."""
    sid = pair.cp.sid()
    assert await pair.js.cmd("remoteSocketEmit", sid=sid, event="rs", args=[7]) == {"remote": True}
    assert await pair.cp.wait_for("rs") == [[7]]
    await pair.js.cmd("remoteSocketJoin", sid=sid, room="rs-room")
    await wait_until(lambda: "rs-room" in pair.py.sio.rooms(sid))
    await pair.js.cmd("remoteSocketLeave", sid=sid, room="rs-room")
    await wait_until(lambda: "rs-room" not in pair.py.sio.rooms(sid))
    await pair.js.cmd("remoteSocketDisconnect", sid=sid, close=False)
    await pair.cp.wait_disconnected()
    assert not pair.cj.disconnected.is_set()


async def test_python_remote_socket_acts_on_node_socket(pair):
    """Python RemoteSocket emit/join/leave/disconnect (fetch_sockets) act on a Node socket."""
    sid = pair.cj.sid()
    remote = next(s for s in await pair.py.adapter.fetch_sockets() if s.id == sid)
    await remote.emit("rs", 8)
    assert await pair.cj.wait_for("rs") == [[8]]
    await remote.join("rs-room")
    await wait_until_async(lambda rooms: "rs-room" in rooms, lambda: js_rooms(pair))
    await remote.leave("rs-room")
    await wait_until_async(lambda rooms: "rs-room" not in rooms, lambda: js_rooms(pair))
    await remote.disconnect()
    await pair.cj.wait_disconnected()
    assert not pair.cp.disconnected.is_set()


async def test_python_sockets_join_is_confirmed_before_it_returns(pair):
    """socketsJoin from Python: a Node broadcast to the room right after the join arrives."""
    await pair.py.adapter.sockets_join("joined-py", to=pair.cp.sid())
    await pair.js.cmd("emit", event="right-after", args=[], to=["joined-py"])
    await pair.cp.wait_for("right-after")


async def test_sockets_join_then_broadcast_both_ways(pair):
    """socketsJoin crosses over (all, given sid), then a broadcast to the room reaches members."""
    await pair.py.adapter.sockets_join("sj-py", to=pair.cj.sid())
    await wait_until_async(lambda rooms: "sj-py" in rooms, lambda: js_rooms(pair))
    await pair.js.cmd("syncRooms", rooms=["sj-py"])  # Node SSUBSCRIBEs without waiting
    await pair.py.sio.emit("in-sj-py", to="sj-py")
    await pair.cj.wait_for("in-sj-py")
    await pair.js.cmd("socketsJoin", rooms=["sj-js"])  # every socket, the Python one included
    await wait_until(lambda: "sj-js" in pair.py.sio.rooms(pair.cp.sid()))
    if pair.dynamic:  # the Python server applied the join; now its room subscription is on
        await wait_room_subscribers(pair.js, "sj-js", 2)
    await pair.js.cmd("emit", event="in-sj-js", args=[], to=["sj-js"])
    for client in pair.clients:
        await client.wait_for("in-sj-js")


async def test_sockets_leave_then_broadcast_both_ways(pair):
    """socketsLeave crosses over: a broadcast to the room afterwards misses who left."""
    await pair.py.sio.enter_room(pair.cp.sid(), "sl")
    await pair.js.cmd("join", sid=pair.cj.sid(), room="sl")
    await pair.js.cmd("socketsLeave", rooms=["sl"], to=[pair.cp.sid()])
    await wait_until(lambda: "sl" not in pair.py.sio.rooms(pair.cp.sid()))
    await pair.py.adapter.sockets_leave("sl", to=pair.cj.sid())
    await wait_until_async(lambda rooms: "sl" not in rooms, lambda: js_rooms(pair))
    await pair.js.cmd("emit", event="to-sl", args=[], to=["sl"])
    await pair.py.sio.emit("to-sl", to="sl")
    await js_barrier(pair)
    await barrier(pair.py, pair.clients)
    assert pair.cp.received("to-sl") == pair.cj.received("to-sl") == []


async def test_node_disconnect_sockets_reaches_python(pair):
    """disconnectSockets from Node disconnects the Python server's matching client only."""
    await pair.js.cmd("disconnectSockets", close=False, to=[pair.cp.sid()])
    await pair.cp.wait_disconnected()
    await pair.js.cmd("emit", event="marker", args=[])
    await pair.cj.wait_for("marker")
    assert not pair.cj.disconnected.is_set()


async def test_python_disconnect_sockets_reaches_node(pair):
    """disconnectSockets from Python disconnects the Node server's matching client only."""
    await pair.py.adapter.disconnect_sockets(to=pair.cj.sid())
    await pair.cj.wait_disconnected()
    await barrier(pair.py, [pair.cp])
    assert not pair.cp.disconnected.is_set()


async def test_server_side_emit_both_ways(pair):
    """serverSideEmit without ack: Node -> Python handler and Python -> Node handler."""
    got: list[tuple[Any, ...]] = []
    pair.py.adapter.on("sse-plain", lambda *args: got.append(args))
    await pair.js.cmd("serverSideEmit", event="sse-plain", args=[1, "two", {"k": None}])
    await wait_until(lambda: got == [(1, "two", {"k": None})])
    await pair.js.cmd("onServerSideEmit", event="sse-plain-py")
    await pair.py.adapter.server_side_emit("sse-plain-py", {"k": 1}, 2)
    event = (await pair.js.wait_event(type="serverSideEvent", event="sse-plain-py"))[0]
    assert event["args"] == [{"k": 1}, 2] and event["withAck"] is False


async def test_server_side_emit_with_ack_both_ways(pair):
    """serverSideEmit with ack: Node collects the Python answer, Python collects Node's."""
    pair.py.adapter.on("sse-ack", lambda *args: ["py-answer", *args])
    result = await pair.js.cmd("serverSideEmitWithAck", event="sse-ack", args=[1, b"\x01"])
    assert result == {"error": None, "responses": [["py-answer", 1, b"\x01"]]}
    await pair.js.cmd("onServerSideEmit", event="sse-ack-py", reply={"from": "js", "b": b"\x02"})
    answers = await pair.py.adapter.server_side_emit_with_ack("sse-ack-py", b"\x03")
    assert answers == [{"from": "js", "b": b"\x02"}]
    # Node's answer comes back over Redis; its report of the event, over another pipe.
    event = (await pair.js.wait_event(type="serverSideEvent", event="sse-ack-py"))[0]
    assert event["args"] == [b"\x03"] and event["withAck"] is True


# Node's fixed 5 s wait does not depend on the topology: one run is enough.
@pytest.mark.parametrize("servers", [STANDALONE["dynamic"]], indirect=True)
async def test_node_server_side_emit_times_out_without_a_python_handler(pair, servers):
    """serverSideEmit timeout: a Python server with no handler does not answer, as Node's."""
    result = await pair.js.cmd("serverSideEmitWithAck", event="sse-nobody", args=[])
    assert result == {
        "error": "timeout reached: only 0 responses received out of 1",
        "responses": [],
    }


async def test_python_requests_timeout_is_honoured(pair):
    """A Python requests_timeout shorter than Node's fixed 5 s ends the wait with Node's text."""
    await pair.js.cmd("onServerSideEmit", event="sse-silent")  # never answers
    with anyio.fail_after(PY_REQUESTS_TIMEOUT + 3), pytest.raises(RequestTimeoutError) as info:
        await pair.py.adapter.server_side_emit_with_ack("sse-silent")
    assert info.value.args[0] == "timeout reached: only 0 responses received out of 1"


async def test_node_broadcast_with_acks_from_python_client(pair):
    """broadcasts with multiple acknowledgements from Node: the Python client's ack comes back."""
    pair.cp.ack_value = lambda event, args: ["py", b"\x01\x02"]
    pair.cj.ack_value = lambda event, args: ["js", b"\x01\x02"]
    result = await pair.js.cmd("emitWithAck", event="ask", args=[], timeout=5000)
    assert result["error"] is None
    assert sorted(result["responses"]) == [["js", b"\x01\x02"], ["py", b"\x01\x02"]]
    one = await pair.js.cmd("emitWithAck", event="ask", args=[], to=[pair.cp.sid()], timeout=5000)
    assert one == {"error": None, "responses": [["py", b"\x01\x02"]]}
    pair.cp.never_ack.add("slow")
    late = await pair.js.cmd("emitWithAck", event="slow", args=[], timeout=300)
    assert late == {"error": "operation has timed out", "responses": [["js", b"\x01\x02"]]}


async def test_python_broadcast_with_acks_from_node_client(pair):
    """broadcasts with multiple acknowledgements from Python: Node counts and relays acks."""
    pair.cp.ack_value = lambda event, args: ["py", b"\x05"]
    pair.cj.ack_value = lambda event, args: ["js", b"\x05"]
    acks = await pair.py.adapter.emit_with_ack("q", timeout=5)
    assert sorted(acks) == [["js", b"\x05"], ["py", b"\x05"]]
    assert await pair.py.adapter.emit_with_ack("q", to=pair.cj.sid(), timeout=5) == [
        ["js", b"\x05"]
    ]
    assert await pair.py.adapter.emit_with_ack("q", to="nobody", timeout=5) == []
    pair.cj.never_ack.add("slow")
    with pytest.raises(RequestTimeoutError, match="operation has timed out") as info:
        await pair.py.adapter.emit_with_ack("slow", timeout=0.3)
    assert info.value.responses == [["py", b"\x05"]]
    assert pair.py.adapter.stats["pending_acks"] == 0


# The channel choice depends on the mode, not on the topology: standalone Redis only.
@pytest.mark.parametrize("servers", list(STANDALONE.values()), indirect=True)
async def test_broadcasts_use_the_channel_node_picks(servers, pair):
    """computeChannel: each kind of broadcast goes where Node's sharded adapter sends it."""
    main = f"{servers.prefix}#/#"
    room = lambda name: f"{main}{name}#"  # noqa: E731
    cp_sid, cj_sid = pair.cp.sid(), pair.cj.sid()
    dynamic, private = servers.mode != "static", servers.mode == "dynamic-private"
    expected = {  # Node's computeChannel in R8 lib/sharded-adapter.ts
        "one room": room("lobby") if dynamic else main,
        "socket id": room("sid") if private else main,
        "two rooms": main,
        "with ack": main,  # the client-count bookkeeping needs every server
    }
    channels = {main, room("lobby"), room(cp_sid), room(cj_sid)}
    # MONITOR, not a subscriber: one more SHARDNUMSUB of K#N# would change the server count.
    client = redis.asyncio.Redis.from_url(servers.url)
    try:
        async with client.monitor() as monitor:

            async def channel_of(send: Any) -> str:
                """Run ``send``; the channel of the first SPUBLISH to a watched channel."""
                await send
                with anyio.fail_after(5):
                    while True:
                        command = (await monitor.next_command())["command"].split(" ")
                        if command[0].upper() == "SPUBLISH" and command[1] in channels:
                            channel = command[1]
                            return (
                                room("sid") if channel in (room(cp_sid), room(cj_sid)) else channel
                            )

            js, py = pair.js, pair.py
            ack = {"timeout": 2000}
            seen = {
                "one room": [
                    await channel_of(js.cmd("emit", event="e", args=[], to=["lobby"])),
                    await channel_of(py.sio.emit("e", to="lobby")),
                ],
                "socket id": [
                    await channel_of(js.cmd("emit", event="e", args=[], to=[cp_sid])),
                    await channel_of(py.sio.emit("e", to=cj_sid)),
                ],
                "two rooms": [
                    await channel_of(js.cmd("emit", event="e", args=[], to=["lobby", "other"])),
                    await channel_of(py.adapter.to("lobby", "other").emit("e")),
                ],
                "with ack": [
                    await channel_of(
                        js.cmd("emitWithAck", event="e", args=[], to=["lobby"], **ack)
                    ),
                    await channel_of(py.adapter.emit_with_ack("e", to="lobby", timeout=2)),
                ],
            }
    finally:
        await client.aclose()
    assert seen == {kind: [channel, channel] for kind, channel in expected.items()}


async def test_python_sharded_emitter_drives_node_servers(servers, pair):
    """AsyncEmitter(sharded=True) -> Node: all, room, sid, join, server-side emit, disconnect."""
    js, cj_sid = pair.js, pair.cj.sid()
    await js.cmd("join", sid=cj_sid, room="em-room")
    await js.cmd("onServerSideEmit", event="em-sse")
    options = {"key": servers.prefix, "sharded": True, "subscription_mode": servers.mode}
    async with AsyncEmitter(servers.url, **options) as emitter:
        await emitter.emit("em-all", 1, b"\x02")
        await emitter.to("em-room").emit("em-room", 3)
        await emitter.to(cj_sid).emit("em-sid", 4)
        for client in pair.clients:
            assert await client.wait_for("em-all") == [[1, b"\x02"]]
        assert await pair.cj.wait_for("em-room") == [[3]]
        assert await pair.cj.wait_for("em-sid") == [[4]]
        await emitter.to(cj_sid).sockets_join("em-joined")
        await wait_until_async(lambda rooms: "em-joined" in rooms, lambda: js_rooms(pair))
        await emitter.server_side_emit("em-sse", {"n": 5})
        event = (await js.wait_event(type="serverSideEvent", event="em-sse"))[0]
        assert event["args"] == [{"n": 5}]
        await emitter.to(cj_sid).disconnect_sockets()
        await pair.cj.wait_disconnected()
    await barrier(pair.py, [pair.cp])
    assert pair.cp.received("em-room") == pair.cp.received("em-sid") == []
