"""The python-socketio facade (``ClusterManager``/``ClusterAPI``) on the in-memory bus:
its lifecycle, what it reports (stats, health, connection changes), the validation of
what the application passes, and its manager contract with real servers and clients."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from socketio_redis_async import AdapterClosedError, PublishError, RequestTimeoutError
from socketio_redis_async._api import ClusterAPI
from socketio_redis_async._protocol.wire import ClassicWire
from socketio_redis_async._transport.base import TRANSPORT_STATS
from socketio_redis_async._transport.memory import MemoryHub, memory_transport
from tests.unit_cluster import (
    SHARED_WIRES,
    UnitCluster,
    make_options,
    open_cluster,
    received,
)

pytestmark = [pytest.mark.anyio, pytest.mark.unit]

FACADE_WIRES = ("classic", "sharded")


# -- lifecycle --------------------------------------------------------------------------


async def test_start_before_the_server_is_attached_raises():
    """start() before an AsyncServer uses the adapter raises RuntimeError."""
    hub = MemoryHub()
    mgr = ClusterAPI(options=make_options(), wire=ClassicWire(), transport=memory_transport(hub))
    try:
        with pytest.raises(RuntimeError, match="client_manager"):
            await mgr.start()
        assert not mgr._engine.transport.listening
    finally:
        await mgr.aclose()
    assert not hub.transports


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_aclose_is_idempotent_and_final(cluster: UnitCluster, wire: str):
    """aclose() twice is fine; the server leaves the bus and cannot be used again."""
    a, b = await cluster.start(2, wire)
    await a.mgr.aclose()
    await a.mgr.aclose()
    assert a.transport not in cluster.hub.transports
    assert await b.mgr.server_count() == 1
    with pytest.raises(AdapterClosedError):
        await a.sio.emit("ev", 1)
    with pytest.raises(AdapterClosedError):
        await a.mgr.start()


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_async_with_starts_and_closes(wire: str):
    """``async with adapter`` starts the adapter and closes it."""
    async with open_cluster() as cluster:
        a = await cluster.add(wire)
        b = await cluster.add(wire, start=False)
        async with b.mgr as entered:
            assert entered is b.mgr and await a.mgr.server_count() == 2
        assert await a.mgr.server_count() == 1


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_the_first_connection_starts_an_unstarted_adapter(cluster: UnitCluster, wire: str):
    """Without start(), the first connection starts the adapter listening."""
    a = await cluster.add(wire)
    b = await cluster.add(wire, start=False)
    assert not b.transport.listening and await a.mgr.server_count() == 1
    client = await cluster.connect(b)
    assert b.transport.listening and await a.mgr.server_count() == 2
    await a.sio.emit("hello", 1)
    await client.wait_until(lambda: received(client, "hello") == [[1]])


async def test_invalid_constructor_arguments_are_refused():
    """A bad logger or on_connection_change raises TypeError; a Logger is used."""
    hub = MemoryHub()
    common: dict[str, Any] = {
        "options": make_options(),
        "wire": ClassicWire(),
        "transport": memory_transport(hub),
    }
    with pytest.raises(TypeError, match="logging.Logger"):
        ClusterAPI(logger="log", **common)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_connection_change"):
        ClusterAPI(on_connection_change=5, **common)  # type: ignore[arg-type]
    mgr = ClusterAPI(logger=logging.getLogger("mine"), **common)
    assert mgr.logger.name == "mine"
    await mgr.aclose()


# -- what it reports --------------------------------------------------------------------


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_stats_has_its_documented_keys(cluster: UnitCluster, wire: str):
    """stats holds the engine's and transport's counters, all ints, counting publishes."""
    a, _ = await cluster.start(2, wire)
    stats = a.mgr.stats
    engine_keys = {
        "dropped_messages",
        "pending_acks",
        "pending_requests",
        "unusable_answers",
        "slow_consumers_disconnected",
        "volatile_skipped",
        "direct_writes",
        "queued_publish_failures",
        "queued_dropped_at_close",
    }
    assert set(stats) == engine_keys | set(TRANSPORT_STATS)
    assert all(type(value) is int for value in stats.values())
    assert stats["subscribed_channels"] == len(a.transport.wanted)
    await a.sio.emit("ev", 1)
    assert a.mgr.stats["published"] == stats["published"] + 1
    assert a.mgr.publish_latency.count == a.mgr.stats["published"]


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_health_follows_the_link(cluster: UnitCluster, wire: str):
    """health() follows the link: healthy, down with its reason and failures, back."""
    a = await cluster.add(wire)
    health = a.mgr.health()
    wanted = len(a.transport.wanted) + len(a.transport.patterns)
    assert health.healthy and health.connected and health.last_error is None
    assert health.subscribed_channels == health.wanted_channels == wanted
    cluster.hub.disconnect(a.transport)
    down = a.mgr.health()
    assert not down.healthy and not down.connected and down.subscribed_channels == 0
    assert down.last_error is not None and "lost the link" in down.last_error
    with pytest.raises(PublishError):
        await a.mgr.server_side_emit("ev")
    assert a.mgr.health().publish_failures == a.mgr.stats["publish_failures"] == 1
    cluster.hub.reconnect(a.transport)
    back = a.mgr.health()
    assert back.healthy and back.reconnects == 1


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_on_connection_change_hears_the_link(cluster: UnitCluster, wire: str):
    """on_connection_change hears the link: True when listening, False lost, True back."""
    changes: list[bool] = []

    async def record(up: bool) -> None:
        changes.append(up)

    a = await cluster.add(wire, on_connection_change=record)
    await cluster.settle()
    cluster.hub.disconnect(a.transport)
    await cluster.settle()
    cluster.hub.reconnect(a.transport)
    await cluster.settle()
    assert changes == [True, False, True]


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_identity_properties(cluster: UnitCluster, wire: str):
    """uid, host_id, prefix, requests_timeout and custom_hook say what they should."""
    a, b = await cluster.start(2, wire, requests_timeout=3)
    assert a.mgr.uid == a.mgr.host_id != b.mgr.uid
    assert a.engine.wire.is_server_uid(a.mgr.uid)
    if wire == "sharded":
        assert len(a.mgr.uid) == 16
    assert a.mgr.prefix == "k" and a.mgr.requests_timeout == 3.0
    a.mgr.custom_hook = str
    assert a.mgr.custom_hook is str and a.engine.custom_hook is str


# -- validation -------------------------------------------------------------------------


async def test_application_input_is_validated(cluster: UnitCluster):
    """Reserved events, rooms that cannot travel and bad flags raise before any send."""
    a = await cluster.add("classic")
    client = await cluster.connect(a)
    mark = cluster.mark()
    reserved: list[Callable[[], Awaitable[Any]]] = [
        lambda: a.mgr.to("r").emit("disconnect"),
        lambda: a.mgr.emit_with_ack("connect"),
        lambda: a.mgr.server_side_emit("disconnecting"),
        lambda: a.mgr.server_side_emit_with_ack("newListener"),
    ]
    for call in reserved:
        with pytest.raises(ValueError, match="reserved"):
            await call()
    with pytest.raises(ValueError, match="reserved"):
        a.mgr.on("connect", print)
    with pytest.raises(TypeError, match="room must be a str or an int"):
        a.mgr.to(object())  # type: ignore[arg-type]
    bad_rooms: list[Callable[[], Awaitable[Any]]] = [
        lambda: a.sio.emit("ev", to=1.5),
        lambda: a.mgr.remote_join(client.sid(), 1.5),  # type: ignore[arg-type]
        lambda: a.sio.enter_room(client.sid(), True),
        lambda: a.mgr.fetch_sockets([None]),  # type: ignore[list-item]
    ]
    for call in bad_rooms:
        with pytest.raises(TypeError, match="room must be a str or an int"):
            await call()
    with pytest.raises(TypeError, match="local must be True or False"):
        await a.mgr.sockets_join("r", local="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        await a.mgr.emit_with_ack("q", timeout=-1)
    with pytest.raises(TypeError, match="namespace"):
        a.mgr.of(5)  # type: ignore[arg-type]
    assert cluster.mark() == mark and a.rooms(client.sid()) == {client.sid()}


async def test_operators_are_immutable_chains(cluster: UnitCluster):
    """of() adds a missing slash and each modifier returns a new operator."""
    a = await cluster.add("classic")
    base = a.mgr.of("chat").to("r1")
    narrowed = base.except_("r2").volatile
    assert base.nsp == "/chat" and base.rooms == ("r1",) and base.except_rooms == ()
    assert narrowed.except_rooms == ("r2",) and dict(narrowed.flags) == {"volatile": True}
    assert not base.flags and a.mgr.in_("x").rooms == a.mgr.to("x").rooms == ("x",)
    assert a.mgr.except_("y").except_rooms == ("y",) and base.local.is_local


# -- the manager contract ---------------------------------------------------------------


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_emit_data_follows_python_socketios_rules(cluster: UnitCluster, wire: str):
    """Emit data follows python-socketio: a tuple is several args, None none."""
    a, b = await cluster.start(2, wire)
    client = await cluster.connect(b)
    await b.sio.enter_room(client.sid(), "r")
    await a.sio.emit("many", (1, "two", [3]))
    await a.sio.emit("none")
    await a.sio.emit("one", [1, 2], room="r")
    await cluster.flush(client)
    assert received(client, "many") == [[1, "two", [3]]]
    assert received(client, "none") == [[]] and received(client, "one") == [[[1, 2]]]


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_socket_data_lives_with_the_socket(cluster: UnitCluster, wire: str):
    """set/get_socket_data work on a local socket and the data goes with it."""
    a = await cluster.add(wire)
    client = await cluster.connect(a)
    sid = client.sid()
    assert a.mgr.get_socket_data(sid) is None
    a.mgr.set_socket_data(sid, {"user": "ann"})
    assert a.mgr.get_socket_data(sid) == {"user": "ann"}
    with pytest.raises(KeyError, match="not connected to this server"):
        a.mgr.set_socket_data("unknown", 1)
    with pytest.raises(KeyError):
        a.mgr.set_socket_data(sid, 1, namespace="/other")
    await client.disconnect()
    await cluster.until(lambda: not a.sids())
    assert a.mgr.get_socket_data(sid) is None and (("/", sid) not in a.engine.local.info)


@pytest.mark.parametrize("wire", FACADE_WIRES)
async def test_a_local_callback_emit_publishes_nothing(cluster: UnitCluster, wire: str):
    """sio.call() and emit(callback=) to a local sid publish nothing, leave no ack."""
    a, _ = await cluster.start(2, wire)
    client = await cluster.connect(a, on={"ask": lambda: 42})
    mark = cluster.mark()
    assert await a.sio.call("ask", to=client.sid(), timeout=5) == 42
    got: list[Any] = []
    await a.sio.emit("ask", to=client.sid(), callback=got.append)
    await cluster.until(lambda: got == [42])
    assert cluster.mark() == mark and a.mgr.stats["pending_acks"] == 0


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_cancelled_request_leaves_nothing_behind(cluster: UnitCluster, wire: str):
    """A cancelled request leaves no pending entry and releases its namespace."""
    a, _ = await cluster.start(2, wire, requests_timeout=30)
    cluster.silent(wire, "/dyn")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: a.mgr.fetch_sockets(namespace="/dyn"))
        await cluster.until(lambda: a.mgr.stats["pending_requests"] == 1)
        assert "/dyn" in a.engine.plan
        tasks.cancel_scope.cancel()
    assert a.mgr.stats["pending_requests"] == 0 and "/dyn" not in a.engine.plan


@pytest.mark.parametrize("wire", SHARED_WIRES)
async def test_a_request_timeout_is_a_timeout_error(cluster: UnitCluster, wire: str):
    """RequestTimeoutError is also a TimeoutError, as the README promises."""
    a, _ = await cluster.start(2, wire, requests_timeout=0.2)
    cluster.silent(wire)
    with pytest.raises(TimeoutError) as caught:
        await a.mgr.fetch_sockets()
    assert isinstance(caught.value, RequestTimeoutError)


CALLS_IN_FLIGHT: dict[str, Callable[[ClusterAPI], Awaitable[Any]]] = {
    "fetch_sockets": lambda m: m.fetch_sockets(),
    "emit_with_ack": lambda m: m.emit_with_ack("q", timeout=30),
}


@pytest.mark.parametrize("wire", FACADE_WIRES)
@pytest.mark.parametrize("call", list(CALLS_IN_FLIGHT))
async def test_aclose_ends_the_calls_waiting_on_it(cluster: UnitCluster, wire: str, call: str):
    """aclose() ends a call waiting on a silent server at once with AdapterClosedError."""
    a, _ = await cluster.start(2, wire, requests_timeout=30)
    cluster.silent(wire)
    outcome: list[BaseException] = []

    async def ask() -> None:
        try:
            await CALLS_IN_FLIGHT[call](a.mgr)
        except BaseException as exc:  # the CancelledError too: it is the finding
            outcome.append(exc)

    task = asyncio.get_running_loop().create_task(ask())
    try:
        await cluster.until(lambda: a.mgr.stats["pending_requests"] + a.mgr.stats["pending_acks"])
        await a.mgr.aclose()
        with anyio.move_on_after(1):
            await asyncio.wait([task])
        ended = task.done()
    finally:
        task.cancel()
        await asyncio.wait([task])
    assert ended, "the call was still waiting 1 s after aclose()"
    assert isinstance(outcome[0], AdapterClosedError), repr(outcome[0])
    assert a.mgr.stats["pending_requests"] == a.mgr.stats["pending_acks"] == 0
