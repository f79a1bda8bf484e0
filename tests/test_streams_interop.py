"""Mixed streams clusters: AsyncStreamsRedisAdapter next to Node's
``@socket.io/redis-streams-adapter`` 0.3.1 (tests/interop/server.js ``--streams``).

The scenarios of the Node streams suite (streams-and-recovery.md §E) run in both
directions between one Python and one Node server on one stream: broadcasts (all, a
room, except, binary), acks, fetchSockets, socketsJoin/Leave, disconnectSockets,
serverSideEmit with an ack, server counting; the Python streams emitter drives Node
servers (Node's own streams emitter is not on npm); and ``stream_count`` > 1 names the
same streams on both sides. Node's clients are the real ``socket.io-client``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from socketio_redis_async import AsyncEmitter, RequestTimeoutError
from socketio_redis_async._protocol import streams
from tests.helpers import Client, Node, wait_until
from tests.node_harness import INTEROP, NodeClient, NodeServer, require_node
from tests.streams import start_streams

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@dataclass
class Mixed:
    """One Python and one Node streams server, a Python client on the first, a Node
    ``socket.io-client`` on the second, and a Python client on the second too (it acks,
    and tells bytes from JSON)."""

    py: Node
    node: NodeServer
    py_client: Client
    node_client: NodeClient
    on_node: Client
    stream: str


async def _mixed(url: str, key: str, **options: Any) -> AsyncIterator[Mixed]:
    stream = options.pop("stream_name", key)
    flags = ["--stream-name", stream, "--read-count", "1"]
    if "stream_count" in options:
        flags += ["--stream-count", str(options["stream_count"])]
    node = await NodeServer.start(url, key, streams=tuple(flags))
    py = None
    clients: list[Any] = []
    try:
        py = await start_streams(url, key, stream_name=stream, **options)
        py_client = await Client("py-client").connect(py, ["/", "/custom"])
        clients.append(py_client)
        node_client = await NodeClient.connect(node.url, ["/", "/custom"])
        clients.append(node_client)
        await node.wait_event(type="connection", sid=node_client.sid())
        on_node = Client("on-node")
        clients.append(on_node)
        await on_node.connect(node, ["/", "/custom"])  # type: ignore[arg-type]
        await node.wait_event(type="connection", sid=on_node.sid())
        yield Mixed(py, node, py_client, node_client, on_node, stream)
        assert node.errors == []
    finally:
        for client in clients:
            await client.aclose()
        if py is not None:
            await py.aclose()
        await node.aclose()


@pytest.fixture
async def mixed(redis_server, key) -> AsyncIterator[Mixed]:
    async for cluster in _mixed(redis_server.url, key):
        yield cluster


async def test_each_side_counts_both_servers(mixed):
    """serverCount is NUMSUB of the public channel: 2 on both sides."""
    assert await mixed.py.adapter.server_count() == 2
    assert await mixed.node.cmd("serverCount") == 2


async def test_python_broadcasts_reach_node_clients(mixed):
    """All, a room, except a room, binary: Node's clients get what they should, in order."""
    m = mixed
    nc = m.node_client
    await m.node.cmd("join", sid=nc.sid(), room="room")
    await m.py.sio.emit("all", [1, "two"])
    await m.py.sio.emit("in-room", 2, to="room")
    await m.py.sio.emit("not-room", 3, skip_sid="room")
    await m.py.sio.emit("bytes", b"\x00\xff")
    await m.py.sio.emit("marker", 0)
    await nc.wait_event(type="event", event="marker")
    got = [(e["event"], e["args"]) for e in nc.matching(type="event", nsp="/")]
    assert got[:2] == [("all", [[1, "two"]]), ("in-room", [2])]
    assert [event for event, _ in got[2:]] == ["bytes", "marker"]  # bytes: checked below
    assert await m.on_node.wait_for("bytes") == [[b"\x00\xff"]]


async def test_node_broadcasts_reach_python_clients(mixed):
    """Node's broadcasts (all, a room, except, binary, another namespace) reach Python's."""
    m = mixed
    pc = m.py_client
    await m.py.sio.enter_room(pc.sid(), "room")
    await m.node.cmd("emit", event="all", args=[1])
    await m.node.cmd("emit", event="in-room", args=[2], to=["room"])
    await m.node.cmd("emit", event="not-room", args=[3], **{"except": ["room"]})
    await m.node.cmd("emit", event="bytes", args=[b"\x01\x02"])
    await m.node.cmd("emit", event="custom", args=[4], nsp="/custom")
    await m.node.cmd("emit", event="marker", args=[])
    await pc.wait_for("marker")
    await pc.wait_for("custom", namespace="/custom")
    got = [(ev, args) for ns, ev, args in pc.events if ns == "/"]
    assert got == [("all", [1]), ("in-room", [2]), ("bytes", [b"\x01\x02"]), ("marker", [])]


async def test_acks_cross_both_ways(mixed):
    """Broadcasts with acks: each side collects the other side's client acks."""
    m = mixed
    await m.node_client.aclose()  # client.js never acks: leave only clients that do
    await m.node.wait_event(type="disconnect", sid=m.node_client.sid())
    m.py_client.ack_value = lambda event, args: f"on-py:{args[0]}"
    m.on_node.ack_value = lambda event, args: f"on-node:{args[0]}"
    acks = await m.py.adapter.emit_with_ack("ask", 1, timeout=3)
    assert sorted(acks) == ["on-node:1", "on-py:1"]
    reply = await m.node.cmd("emitWithAck", event="ask", args=[2], timeout=3000)
    assert reply["error"] is None and sorted(reply["responses"]) == ["on-node:2", "on-py:2"]


async def test_fetch_sockets_sees_both_servers(mixed):
    """fetchSockets from either side lists both sides' sockets, with rooms and data."""
    m = mixed
    await m.node.cmd("setData", sid=m.node_client.sid(), data={"user": "n"})
    everyone = {m.py_client.sid(), m.node_client.sid(), m.on_node.sid()}
    py_view = {s.id: s for s in await m.py.adapter.fetch_sockets()}
    assert set(py_view) == everyone
    assert py_view[m.node_client.sid()].data == {"user": "n"}
    node_view = {s["id"] for s in await m.node.cmd("fetchSockets")}
    assert node_view == everyone


async def test_sockets_join_leave_and_disconnect_cross_both_ways(mixed):
    """socketsJoin/socketsLeave/disconnectSockets travel in the stream, each way."""
    m = mixed
    pc, nc = m.py_client, m.node_client
    await m.node.cmd("socketsJoin", rooms=["from-node"])
    await wait_until(lambda: "from-node" in m.py.sio.manager.get_rooms(pc.sid(), "/"))
    await m.py.adapter.sockets_join(["from-py"])

    async def node_rooms() -> set[str]:
        local = await m.node.cmd("localSockets")
        return {room for s in local if s["id"] == nc.sid() for room in s["rooms"]}

    assert "from-node" in await node_rooms()
    await wait_until_node(lambda rooms: "from-py" in rooms, node_rooms)
    await m.py.adapter.sockets_leave(["from-node"])
    await wait_until_node(lambda rooms: "from-node" not in rooms, node_rooms)
    await m.node.cmd("socketsLeave", rooms=["from-py"])
    await wait_until(lambda: "from-py" not in m.py.sio.manager.get_rooms(pc.sid(), "/"))
    await m.node.cmd("disconnectSockets", close=False, to=[pc.sid()])
    await pc.wait_disconnected()
    await m.py.adapter.disconnect_sockets()
    await nc.wait_event(type="disconnect")


async def wait_until_node(predicate, fetch, timeout: float = 5) -> None:
    """Poll a Node harness command until ``predicate`` holds."""
    with anyio.fail_after(timeout):
        while not predicate(await fetch()):
            await anyio.sleep(0.02)


async def test_server_side_emits_with_acks_cross_both_ways(mixed):
    """serverSideEmit with an ack: each side answers the other."""
    m = mixed

    @m.py.adapter.on("hello")
    async def hello(value):
        return f"py:{value}"

    await m.node.cmd("onServerSideEmit", event="hello", reply="node")
    assert await m.py.adapter.server_side_emit_with_ack("hello", 1) == ["node"]
    reply = await m.node.cmd("serverSideEmitWithAck", event="hello", args=[2])
    assert reply["error"] is None and reply["responses"] == ["py:2"]


async def test_the_python_streams_emitter_drives_node_and_python_servers(mixed, redis_server, key):
    """Entries the emitter appends (uid ``emitter``) reach both servers' clients."""
    m = mixed
    async with AsyncEmitter(redis_server.url, streams=True, stream_name=m.stream, key=key) as em:
        assert await em.emit("from-emitter", {"n": 1}) == 0
        await em.to(m.node_client.sid()).emit("direct", 2)
        await em.sockets_join(["joined"])
    event = await m.node_client.wait_event(type="event", event="from-emitter")
    assert event["args"] == [{"n": 1}]
    assert (await m.node_client.wait_event(type="event", event="direct"))["args"] == [2]
    assert (await m.py_client.wait_for("from-emitter")) == [[{"n": 1}]]
    await wait_until(lambda: "joined" in m.py.sio.manager.get_rooms(m.py_client.sid(), "/"))


async def test_several_streams_are_named_as_node_names_them(redis_server, key):
    """stream_count=4: both sides write ``/`` and ``/custom`` to the same streams and
    read each other's broadcasts in both namespaces."""
    async for m in _mixed(redis_server.url, key, stream_count=4):
        await m.node.cmd("emit", event="n-root", args=[])
        await m.node.cmd("emit", event="n-custom", args=[], nsp="/custom")
        await m.py_client.wait_for("n-root")
        await m.py_client.wait_for("n-custom", namespace="/custom")
        await m.py.sio.emit("p-root")
        await m.py.sio.emit("p-custom", namespace="/custom")
        await m.node_client.wait_event(type="event", event="p-root")
        await m.node_client.wait_event(type="event", event="p-custom", nsp="/custom")
        assert m.py.adapter.stream_of("/custom") == f"{m.stream}-0"


async def test_stream_names_match_nodes_for_any_namespace():
    """For 500 random namespace names (non-ASCII, emoji, long), Python names the same
    stream as Node's own computeStreamName, for 1 to 7 streams."""
    rng = random.Random(7)
    alphabet = "abc/-_é中😀\u0101" + "".join(chr(c) for c in range(32, 127))
    names = [
        "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(500)
    ]
    script = (
        "const {hashCode}=require('@socket.io/redis-streams-adapter/dist/util');"
        "const names=JSON.parse(require('fs').readFileSync(0,'utf8'));"
        "const out=[];for(const n of names)for(let c=1;c<8;c++)"
        "out.push(c===1?'s':'s-'+(hashCode(n)%c));"
        "process.stdout.write(JSON.stringify(out));"
    )
    proc = await asyncio.create_subprocess_exec(
        require_node(),
        "-e",
        script,
        cwd=INTEROP,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(json.dumps(names).encode()), 30)
    expected = json.loads(out)
    ours = [streams.stream_for("s", count, name) for name in names for count in range(1, 8)]
    assert ours == expected


async def test_python_and_node_share_streams_on_a_redis_cluster(redis_cluster, key):
    """On a 3-shard Redis Cluster with 5 streams (Node on node-redis's cluster client),
    broadcasts in two namespaces cross both ways and both sides count 2 servers."""
    flags = ("--stream-name", key, "--stream-count", "5", "--read-count", "1")
    node = await NodeServer.start(redis_cluster.url(1), key, cluster=True, streams=flags)
    py = None
    clients: list[Any] = []
    try:
        py = await start_streams(redis_cluster.url(0), key, stream_count=5)
        on_py = await Client("on-py").connect(py, ["/", "/custom"])
        clients.append(on_py)
        on_node = await Client("on-node").connect(node, ["/", "/custom"])  # type: ignore[arg-type]
        clients.append(on_node)
        await node.wait_event(type="connection", sid=on_node.sid())
        assert await py.adapter.server_count() == 2 and await node.cmd("serverCount") == 2
        for nsp in ("/", "/custom"):
            await py.sio.emit("from-py", nsp, namespace=nsp)
            await node.cmd("emit", event="from-node", args=[nsp], nsp=nsp)
        for client in clients:
            for nsp in ("/", "/custom"):
                assert await client.wait_for("from-py", namespace=nsp) == [[nsp]]
                assert await client.wait_for("from-node", namespace=nsp) == [[nsp]]
        assert node.errors == []
    finally:
        for client in clients:
            await client.aclose()
        if py is not None:
            await py.aclose()
        await node.aclose()


# The rest of Node's streams suite (streams-and-recovery.md §E), both ways where it has two.


async def test_local_broadcasts_stay_on_their_server(mixed):
    """broadcasts to local clients only: neither side's local emit crosses."""
    m = mixed
    await m.py.adapter.of("/").local.emit("py-local", 1)
    await m.node.cmd("emit", event="node-local", args=[2], local=True)
    await m.py.sio.emit("marker")
    await m.node.cmd("emit", event="marker", args=[])
    await m.py_client.wait_for("marker", 2)
    await m.on_node.wait_for("marker", 2)
    assert m.py_client.received("py-local") == [[1]] and m.py_client.received("node-local") == []
    assert m.on_node.received("node-local") == [[2]] and m.on_node.received("py-local") == []


async def test_acks_with_no_client_a_single_client_and_a_timeout(mixed):
    """broadcasts with acknowledgements: no client ([]), a single remote client (one ack),
    and a timeout with the acks received so far, both ways."""
    m = mixed
    await m.node_client.aclose()  # client.js never acks
    await m.node.wait_event(type="disconnect", sid=m.node_client.sid())
    m.py_client.ack_value = lambda event, args: "py"
    m.on_node.ack_value = lambda event, args: "node"
    assert await m.py.adapter.emit_with_ack("q", to="nobody", timeout=2) == []
    none = await m.node.cmd("emitWithAck", event="q", args=[], to=["nobody"], timeout=2000)
    assert none == {"error": None, "responses": []}
    assert await m.py.adapter.emit_with_ack("q", to=m.on_node.sid(), timeout=2) == ["node"]
    one = await m.node.cmd("emitWithAck", event="q", args=[], to=[m.py_client.sid()])
    assert one == {"error": None, "responses": ["py"]}
    assert await m.py.sio.call("single", to=m.on_node.sid(), timeout=2) == "node"
    m.on_node.never_ack.add("slow")
    with pytest.raises(RequestTimeoutError, match="operation has timed out") as info:
        await m.py.adapter.emit_with_ack("slow", timeout=0.5)
    assert info.value.responses == ["py"]
    m.py_client.never_ack.add("slow2")
    late = await m.node.cmd("emitWithAck", event="slow2", args=[], timeout=500)
    assert late == {"error": "operation has timed out", "responses": ["node"]}


async def test_join_leave_and_fetch_target_matching_or_given_sockets(mixed):
    """socketsJoin/Leave of the matching sockets (a room) and of a given socket (its id);
    fetchSockets of a single socket and of local sockets only."""
    m = mixed
    pc, on_node = m.py_client, m.on_node
    await m.py.sio.enter_room(pc.sid(), "vip")
    await m.node.cmd("socketsJoin", rooms=["matched"], to=["vip"])
    await wait_until(lambda: "matched" in m.py.sio.manager.get_rooms(pc.sid(), "/"))
    await m.py.adapter.sockets_join(["given"], to=on_node.sid())

    async def node_rooms() -> set[str]:
        local = await m.node.cmd("localSockets")
        return {room for s in local if s["id"] == on_node.sid() for room in s["rooms"]}

    await wait_until_node(lambda rooms: "given" in rooms, node_rooms)
    assert "matched" not in await node_rooms()
    await m.node.cmd("socketsLeave", rooms=["matched"], to=[pc.sid()])
    await wait_until(lambda: "matched" not in m.py.sio.manager.get_rooms(pc.sid(), "/"))
    single = await m.py.adapter.fetch_sockets(on_node.sid())
    assert [s.id for s in single] == [on_node.sid()] and "given" in single[0].rooms
    node_single = await m.node.cmd("fetchSockets", to=[pc.sid()])
    assert [s["id"] for s in node_single] == [pc.sid()]
    local = await m.node.cmd("fetchSockets", local=True)
    assert {s["id"] for s in local} == {on_node.sid(), m.node_client.sid()}


async def test_a_packet_sent_before_disconnecting_arrives_first(mixed):
    """disconnectSockets: a packet emitted just before it reaches the client first, both
    ways (both travel in the stream, in order)."""
    m = mixed
    await m.node.cmd("emit", event="bye", args=[1], to=[m.py_client.sid()])
    await m.node.cmd("disconnectSockets", close=False, to=[m.py_client.sid()])
    await m.py_client.wait_disconnected()
    assert m.py_client.received("bye") == [[1]]
    await m.py.sio.emit("bye", 2, to=m.on_node.sid())
    await m.py.adapter.disconnect_sockets(to=m.on_node.sid())
    await m.on_node.wait_disconnected()
    assert m.on_node.received("bye") == [[2]]


async def test_a_server_side_emit_times_out_when_a_server_does_not_answer(mixed):
    """serverSideEmit with an ack times out with Node's text when the other side is silent."""
    m = mixed
    await m.node.cmd("onServerSideEmit", event="silent")  # never answers
    with pytest.raises(RequestTimeoutError) as info:
        await m.py.adapter.server_side_emit_with_ack("silent")
    assert info.value.args[0] == "timeout reached: only 0 responses received out of 1"
    reply = await m.node.cmd("serverSideEmitWithAck", event="nobody-here", args=[])
    assert reply == {
        "error": "timeout reached: only 0 responses received out of 1",
        "responses": [],
    }
