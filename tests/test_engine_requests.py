"""Cluster-wide requests on the in-memory bus: fetch_sockets, all_rooms, clients,
client_rooms, server_count, server-side emits and custom requests, each answered by
real servers, each timing out on a server that never answers, and what each wire format
publishes for them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from socketio_redis_async import RequestTimeoutError
from socketio_redis_async._api import ClusterAPI
from tests.unit_cluster import (
    ALL_WIRES,
    SHARED_WIRES,
    SILENT_UID,
    UnitCluster,
    is_sharded,
)

pytestmark = [pytest.mark.anyio, pytest.mark.unit]


# -- fetch_sockets ----------------------------------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_fetch_sockets_describes_every_socket(cluster: UnitCluster, wire: str):
    """fetch_sockets gives each socket's id, rooms, handshake (secrets left out) and data."""
    a, b = await cluster.start(2, wire)
    local = await cluster.connect(a)
    remote = await cluster.connect(
        b,
        auth={"user": "ann"},
        headers={"X-Test": "yes", "Authorization": "Bearer secret"},
        query={"room": "blue", "token": "secret"},
    )
    sid = remote.sid()
    await b.sio.enter_room(sid, "lobby")
    await b.sio.enter_room(sid, 7)
    b.mgr.set_socket_data(sid, {"user": "ann", "n": 1})
    found = await a.mgr.fetch_sockets()
    assert [s.id for s in found] == [local.sid(), sid]
    there = found[1]
    assert there.rooms == {sid, "lobby", 7} and there.data == {"user": "ann", "n": 1}
    handshake = there.handshake
    assert handshake["auth"] == {"user": "ann"}
    assert handshake["headers"]["x-test"] == "yes" and "authorization" not in handshake["headers"]
    assert handshake["query"]["room"] == "blue" and "token" not in handshake["query"]
    assert "secret" not in handshake["url"]
    assert found[0].handshake["auth"] == {} and found[0].data is None


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_fetch_sockets_selects_by_rooms_and_except(cluster: UnitCluster, wire: str):
    """fetch_sockets(rooms, except_rooms) selects the same way on every server."""
    a, b = await cluster.start(2, wire)
    in_a, in_b, banned_b, out_b = [await cluster.connect(s) for s in (a, b, b, b)]
    await a.sio.enter_room(in_a.sid(), "r1")
    await b.sio.enter_room(in_b.sid(), "r2")
    await b.sio.enter_room(banned_b.sid(), "r1")
    await b.sio.enter_room(banned_b.sid(), "banned")
    found = await a.mgr.fetch_sockets(["r1", "r2"], except_rooms="banned")
    assert sorted(s.id for s in found) == sorted([in_a.sid(), in_b.sid()])
    assert out_b.sid() not in {s.id for s in await b.mgr.fetch_sockets("r1")}


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_local_and_single_local_sid_fetches_publish_nothing(cluster: UnitCluster, wire: str):
    """A local fetch, or one of a single local sid, publishes nothing; a plain one does."""
    a, b = await cluster.start(2, wire)
    local, remote = await cluster.connect(a), await cluster.connect(b)
    mark = cluster.mark()
    assert [s.id for s in await a.mgr.fetch_sockets(local=True)] == [local.sid()]
    assert [s.id for s in await a.mgr.of("/").local.fetch_sockets()] == [local.sid()]
    assert [s.id for s in await a.mgr.fetch_sockets(local.sid())] == [local.sid()]
    assert cluster.mark() == mark
    assert [s.id for s in await a.mgr.fetch_sockets(remote.sid())] == [remote.sid()]
    assert len(cluster.types_since(mark, wire)) == 1


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_lone_server_asks_nobody(cluster: UnitCluster, wire: str):
    """With one server every query is answered locally and nothing is published."""
    a = await cluster.add(wire)
    client = await cluster.connect(a)
    mark = cluster.mark()
    assert [s.id for s in await a.mgr.fetch_sockets()] == [client.sid()]
    assert await a.mgr.all_rooms() == {client.sid()}
    assert await a.mgr.clients() == [client.sid()]
    assert await a.mgr.server_side_emit_with_ack("ev") == []
    assert cluster.mark() == mark


# -- rooms and clients ------------------------------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_all_rooms_is_the_union_of_every_servers_rooms(cluster: UnitCluster, wire: str):
    """all_rooms is every room of every server, sid rooms and numbers included."""
    a, b, c = await cluster.start(3, wire)
    ca, cb = await cluster.connect(a), await cluster.connect(b)
    await a.sio.enter_room(ca.sid(), "lobby")
    await b.sio.enter_room(cb.sid(), "lobby")
    await b.sio.enter_room(cb.sid(), 42)
    assert await c.mgr.all_rooms() == {ca.sid(), cb.sid(), "lobby", 42}
    assert await a.mgr.all_rooms() == {ca.sid(), cb.sid(), "lobby", 42}


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_clients_lists_sids_cluster_wide(cluster: UnitCluster, wire: str):
    """clients() lists every sid of the cluster; clients(room) those in the room."""
    a, b = await cluster.start(2, wire)
    ca, cb, other = await cluster.connect(a), await cluster.connect(b), await cluster.connect(b)
    await a.sio.enter_room(ca.sid(), "r")
    await b.sio.enter_room(cb.sid(), "r")
    assert sorted(await a.mgr.clients()) == sorted([ca.sid(), cb.sid(), other.sid()])
    assert sorted(await a.mgr.clients("r")) == sorted([ca.sid(), cb.sid()])
    assert await b.mgr.clients("nobody") == []


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_client_rooms_finds_a_socket_wherever_it_lives(cluster: UnitCluster, wire: str):
    """client_rooms finds a remote socket, a local one without publishing, None if none."""
    a, b = await cluster.start(2, wire)
    local, remote = await cluster.connect(a), await cluster.connect(b)
    await b.sio.enter_room(remote.sid(), "vip")
    assert await a.mgr.client_rooms(remote.sid()) == {remote.sid(), "vip"}
    assert await a.mgr.client_rooms("no-such-socket-here!") is None
    mark = cluster.mark()
    assert await a.mgr.client_rooms(local.sid()) == {local.sid()}
    assert cluster.mark() == mark


# -- server_count -----------------------------------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_server_count_counts_the_servers_of_a_namespace(cluster: UnitCluster, wire: str):
    """server_count counts this server only if it serves the namespace, whoever asks."""
    a, b, c = await cluster.start(3, wire)
    assert [await s.mgr.server_count() for s in (a, b, c)] == [3, 3, 3]
    await cluster.connect(b, namespaces=["/dyn"])
    assert await a.mgr.server_count(namespace="/dyn") == 1
    assert await b.mgr.server_count(namespace="/dyn") == 1
    assert "/dyn" not in a.engine.plan and "/dyn" in b.engine.plan


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_declared_namespace_counts_without_sockets(cluster: UnitCluster, wire: str):
    """A namespace the AsyncServer declares is served with no socket in it."""
    a = await cluster.add(wire, namespaces=["/", "/chat"])
    b = await cluster.add(wire)
    assert await a.mgr.server_count(namespace="/chat") == 1
    assert await b.mgr.server_count(namespace="/chat") == 1
    assert await b.mgr.server_count(namespace="/none") == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_server_count_is_numsub(cluster: UnitCluster, wire: str):
    """Any subscriber of the request channel counts, even one that never answers."""
    a, _ = await cluster.start(2, wire)
    cluster.silent(wire)
    assert await a.mgr.server_count() == 3


# -- server-side emits and custom requests ----------------------------------------------


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_server_side_emit_reaches_the_other_servers_handlers(cluster: UnitCluster, wire: str):
    """server_side_emit runs every other server's handler with the args, never its own."""
    servers = await cluster.start(3, wire)
    seen: list[tuple[str, tuple[Any, ...]]] = []
    for server in servers:
        server.mgr.on("cache:invalidate", lambda *args, name=server.name: seen.append((name, args)))
    await servers[0].mgr.server_side_emit("cache:invalidate", "users", {"id": 1})
    await cluster.settle()
    assert sorted(seen) == [(s.name, ("users", {"id": 1})) for s in servers[1:]]


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_server_side_emit_with_ack_returns_each_answer(cluster: UnitCluster, wire: str):
    """server_side_emit_with_ack returns each other server's handler result, async too."""
    a, b, c = await cluster.start(3, wire)

    async def doubled(x: int) -> int:
        return 2 * x

    b.mgr.on("calc", doubled)

    @c.mgr.on("calc")
    def squared(x: int) -> int:
        return x * x

    assert sorted(await a.mgr.server_side_emit_with_ack("calc", 5)) == [10, 25]


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_custom_request_puts_this_servers_answer_first(cluster: UnitCluster, wire: str):
    """custom_request returns this server's hook answer first, then the others' answers."""
    a, b, c = await cluster.start(3, wire)
    a.mgr.custom_hook = lambda data: f"a:{data}"

    async def async_hook(data: Any) -> str:
        return f"b:{data}"

    b.mgr.custom_hook = async_hook
    c.mgr.custom_hook = lambda data: {"c": data}
    answers = await a.mgr.custom_request("load?")
    assert answers[0] == "a:load?"
    assert sorted(map(str, answers[1:])) == sorted(["b:load?", str({"c": "load?"})])


# -- timeouts ---------------------------------------------------------------------------

Ask = Callable[[ClusterAPI, str], Awaitable[Any]]


def _text(what: str) -> str:
    return f"timeout reached while waiting for {what} response"


TIMEOUTS: dict[str, tuple[Ask, str, str]] = {
    # operation: (call, classic error text, sharded error text)
    "fetch_sockets": (
        lambda m, sid: m.fetch_sockets(),
        _text("fetchSockets"),
        _text("fetchSockets"),
    ),
    "all_rooms": (lambda m, sid: m.all_rooms(), _text("allRooms"), _text("fetchSockets")),
    "clients": (lambda m, sid: m.clients(), _text("clients"), _text("fetchSockets")),
    "client_rooms": (
        lambda m, sid: m.client_rooms(sid),
        _text("fetchSockets"),
        _text("fetchSockets"),
    ),
    "custom_request": (
        lambda m, sid: m.custom_request("x"),
        _text("customRequest"),
        _text("customRequest"),
    ),
    "server_side_emit_with_ack": (
        lambda m, sid: m.server_side_emit_with_ack("ev", 1),
        "timeout reached: only 1 responses received out of 2",
        "timeout reached: only 1 responses received out of 2",
    ),
}


@pytest.mark.parametrize("wire", SHARED_WIRES)
@pytest.mark.parametrize("operation", list(TIMEOUTS))
async def test_a_silent_server_makes_each_request_time_out(
    cluster: UnitCluster, wire: str, operation: str
):
    """A silent server makes each request time out naming it, with the answers so far."""
    a, b = await cluster.start(2, wire, requests_timeout=0.25)
    remote = await cluster.connect(b)
    b.mgr.on("ev", lambda x: "answer")
    b.mgr.custom_hook = lambda data: "hook"
    cluster.silent(wire)
    ask, classic_text, sharded_text = TIMEOUTS[operation]
    with pytest.raises(RequestTimeoutError) as caught:
        await ask(a.mgr, "not-connected-anywhere")
    err = caught.value
    assert err.args[0] == (sharded_text if is_sharded(wire) else classic_text)
    assert err.silent_servers == [SILENT_UID] and SILENT_UID in str(err)
    assert len(err.responses) == 1
    if operation in ("fetch_sockets", "client_rooms"):
        expected = [remote.sid()] if operation == "fetch_sockets" else []
        assert [s["id"] for s in err.responses[0]] == expected
    assert a.mgr.stats["pending_requests"] == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_server_side_emit_with_ack_honours_its_own_timeout(cluster: UnitCluster, wire: str):
    """server_side_emit_with_ack(timeout=) waits that long, not requests_timeout."""
    a, b = await cluster.start(2, wire, requests_timeout=30)
    b.mgr.on("ev", lambda: "b")
    cluster.silent(wire)
    with pytest.raises(RequestTimeoutError, match="only 1 responses received out of 2") as caught:
        await a.mgr.server_side_emit_with_ack("ev", timeout=0.2)
    assert caught.value.responses == ["b"]


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_server_without_a_handler_never_answers(cluster: UnitCluster, wire: str):
    """A server without a handler never answers server_side_emit_with_ack, as in Node."""
    a, b = await cluster.start(2, wire, requests_timeout=0.2)
    with pytest.raises(RequestTimeoutError, match="only 0 responses received out of 1") as caught:
        await a.mgr.server_side_emit_with_ack("nobody-listens")
    assert caught.value.silent_servers == [b.mgr.uid]


# -- what each wire format publishes ----------------------------------------------------

CLASSIC_TYPES = {"clients": 0, "all_rooms": 1, "fetch_sockets": 5, "client_rooms": 5}
SHARDED_TYPES = {"clients": 7, "all_rooms": 7, "fetch_sockets": 7, "client_rooms": 7}
QUERIES: dict[str, Ask] = {
    "clients": lambda m, sid: m.clients(),
    "all_rooms": lambda m, sid: m.all_rooms(),
    "fetch_sockets": lambda m, sid: m.fetch_sockets(),
    "client_rooms": lambda m, sid: m.client_rooms(sid),
}


@pytest.mark.parametrize("wire", ALL_WIRES)
@pytest.mark.parametrize("query", list(QUERIES))
async def test_each_query_uses_a_request_its_protocol_has(
    cluster: UnitCluster, wire: str, query: str
):
    """Each query sends a request its protocol has (sharded: FETCH_SOCKETS), same answer."""
    a, b = await cluster.start(2, wire)
    remote = await cluster.connect(b)
    await b.sio.enter_room(remote.sid(), "r")
    mark = cluster.mark()
    result = await QUERIES[query](a.mgr, remote.sid())
    types = SHARDED_TYPES if is_sharded(wire) else CLASSIC_TYPES
    assert cluster.types_since(mark, wire) == [types[query]]
    expected = {
        "clients": [remote.sid()],
        "all_rooms": {remote.sid(), "r"},
        "client_rooms": {remote.sid(), "r"},
    }
    if query == "fetch_sockets":
        assert [s.id for s in result] == [remote.sid()]
    else:
        assert result == expected[query]


@pytest.mark.parametrize(
    ("wire", "expected"),
    [("classic", [6, 6]), ("classic-pattern", [6, 6]), ("sharded", [9, 9])],
)
async def test_server_side_emits_travel_as_server_side_emit(
    cluster: UnitCluster, wire: str, expected: list[int]
):
    """server_side_emit and custom_request are each one SERVER_SIDE_EMIT message."""
    a, b = await cluster.start(2, wire)
    b.mgr.custom_hook = lambda data: data
    mark = cluster.mark()
    await a.mgr.server_side_emit("ev", 1)
    assert await a.mgr.custom_request("x") == [None, "x"]
    assert cluster.types_since(mark, wire) == expected
