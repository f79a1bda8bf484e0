"""Python servers behave like Node servers towards real Node clients and Node requesters.

Close with ``close=True`` (socket.io-client ignores the Engine.IO CLOSE packet), the
``handshake.auth`` that Node apps read through ``fetchSockets()``, and the ``local``
variants of the cluster calls (Node's ``io.local.*``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from socketio_redis_async import AsyncEmitter
from socketio_redis_async._local.backlog import VOLATILE_BACKLOG
from tests.helpers import PAYLOAD, QUIET_PINGS, Client, SlowConsumer, queue_of, wait_until
from tests.node_harness import NodeClient, NodeServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def make_js_client() -> AsyncIterator[Callable[..., Awaitable[NodeClient]]]:
    clients: list[NodeClient] = []

    async def make(
        url: str, namespaces: list[str], auth: dict[str, Any] | None = None
    ) -> NodeClient:
        client = await NodeClient.connect(url, namespaces, auth)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.mark.interop
@pytest.mark.parametrize("entry", ["remote_disconnect", "disconnect_sockets", "emitter"])
async def test_close_true_closes_a_node_client_at_once(
    entry, make_node, make_js_client, redis_server, key
):
    """close=True ends a Node client's every namespace with "io server disconnect", as Node."""
    holder, other = await make_node(), await make_node()
    js = await make_js_client(holder.url, ["/", "/custom"])
    sid = js.sid("/")
    if entry == "remote_disconnect":
        await other.adapter.remote_disconnect(sid, close=True)
    elif entry == "disconnect_sockets":
        await other.adapter.disconnect_sockets(close=True, to=sid)
    else:
        emitter = AsyncEmitter(redis_server.url, key=key)
        try:
            await emitter.to(sid).disconnect_sockets(close=True)
        finally:
            await emitter.aclose()
    # Without the socket.io DISCONNECT, the Node client only notices after its ping
    # timeout (about 45 s) with reason "ping timeout"; 15 s tells the two apart.
    for nsp in ("/", "/custom"):
        event = await js.wait_event(type="disconnect", nsp=nsp, timeout=15)
        assert event["reason"] == "io server disconnect"
    assert not holder.sids("/") and not holder.sids("/custom")


@pytest.fixture
async def two_servers(make_node, make_client):
    """Two Python servers, each with one client in namespace /."""
    a, b = await make_node(), await make_node()
    return a, b, await make_client(a, name="a"), await make_client(b, name="b")


async def test_local_fetch_sockets(two_servers):
    """fetch_sockets(local=True) and .local.fetch_sockets() return this server's sockets only."""
    a, _, ca, cb = two_servers
    assert {s.id for s in await a.adapter.fetch_sockets()} == {ca.sid(), cb.sid()}
    assert [s.id for s in await a.adapter.fetch_sockets(local=True)] == [ca.sid()]
    assert [s.id for s in await a.adapter.of("/").local.fetch_sockets()] == [ca.sid()]
    assert [s.id for s in await a.adapter.to(cb.sid()).local.fetch_sockets()] == []


@pytest.mark.parametrize("form", ["keyword", "operator"])
async def test_local_sockets_join_and_leave(two_servers, form):
    """sockets_join/sockets_leave with local act on this server's sockets only."""
    a, b, ca, cb = two_servers
    if form == "keyword":
        await a.adapter.sockets_join("solo", local=True)
    else:
        await a.adapter.of("/").local.sockets_join("solo")
    # A cluster-wide join published afterwards: once B applied it, B would have
    # applied an earlier published local join too.
    await a.adapter.sockets_join("marker")
    await wait_until(lambda: "marker" in b.sio.rooms(cb.sid()))
    assert "solo" in a.sio.rooms(ca.sid())
    assert "solo" not in b.sio.rooms(cb.sid())
    await b.adapter.sockets_join("solo")  # cluster-wide: A's socket joins it again too
    await wait_until(lambda: "solo" in b.sio.rooms(cb.sid()))
    await b.adapter.sockets_join("marker2")  # once A has it, A applied B's join before it
    await wait_until(lambda: "marker2" in a.sio.rooms(ca.sid()))
    if form == "keyword":
        await a.adapter.sockets_leave("solo", local=True)
    else:
        await a.adapter.of("/").local.sockets_leave("solo")
    await a.adapter.sockets_leave("marker")
    await wait_until(lambda: "marker" not in b.sio.rooms(cb.sid()))
    assert "solo" not in a.sio.rooms(ca.sid())
    assert "solo" in b.sio.rooms(cb.sid())


@pytest.mark.parametrize("form", ["keyword", "operator"])
async def test_local_disconnect_sockets(two_servers, form):
    """disconnect_sockets with local disconnects this server's sockets only."""
    a, b, ca, cb = two_servers
    if form == "keyword":
        await a.adapter.disconnect_sockets(local=True)
    else:
        await a.adapter.of("/").local.disconnect_sockets()
    await ca.wait_disconnected()
    await a.adapter.sockets_join("marker")
    await wait_until(lambda: "marker" in b.sio.rooms(cb.sid()))
    assert not cb.disconnected.is_set()
    assert b.sids() == {cb.sid()}


async def test_operator_cluster_calls_reach_other_servers(two_servers):
    """Without .local the operator's socket calls act cluster-wide, honouring to/except."""
    a, b, ca, cb = two_servers
    await a.adapter.of("/").except_(ca.sid()).sockets_join("op")
    await wait_until(lambda: "op" in b.sio.rooms(cb.sid()))
    assert "op" not in a.sio.rooms(ca.sid())
    assert [s.id for s in await a.adapter.to("op").fetch_sockets()] == [cb.sid()]
    await a.adapter.to("op").sockets_leave("op")
    await wait_until(lambda: "op" not in b.sio.rooms(cb.sid()))
    await a.adapter.to(cb.sid()).disconnect_sockets()
    await cb.wait_disconnected()
    assert not ca.disconnected.is_set()


@pytest.fixture
async def js_server(redis_server, key) -> AsyncIterator[NodeServer]:
    """A Node server (socket.io + @socket.io/redis-adapter) in the same cluster."""
    server = await NodeServer.start(redis_server.url, key)
    yield server
    await server.aclose()
    assert server.errors == [], f"the Node server reported errors: {server.errors}"


@pytest.mark.interop
async def test_node_fetch_sockets_sees_auth_of_python_held_sockets(
    make_node, make_client, make_js_client, js_server
):
    """A Node server's fetchSockets() reports handshake.auth of sockets on a Python server."""
    py = await make_node()
    js = await make_js_client(py.url, ["/", "/custom"], {"token": "node-t", "n": 1})
    plain = await make_client(py, ["/"], "plain")
    with_auth = Client("with-auth")
    await with_auth.sio.connect(
        py.url, transports=["websocket"], namespaces=["/"], auth={"user": "py"}, wait_timeout=5
    )
    try:
        found = {s["id"]: s for s in await js_server.cmd("fetchSockets")}
        assert found[js.sid("/")]["handshake"]["auth"] == {"token": "node-t", "n": 1}
        assert found[with_auth.sid()]["handshake"]["auth"] == {"user": "py"}
        assert found[plain.sid()]["handshake"]["auth"] == {}
        custom = {s["id"]: s for s in await js_server.cmd("fetchSockets", nsp="/custom")}
        assert custom[js.sid("/custom")]["handshake"]["auth"] == {"token": "node-t", "n": 1}
        local = {s.id: s for s in await py.adapter.fetch_sockets(local=True)}
        assert local[with_auth.sid()].handshake["auth"] == {"user": "py"}
    finally:
        await with_auth.aclose()


async def test_local_must_be_a_bool(two_servers):
    """local= takes True or False and says so."""
    a = two_servers[0]
    with pytest.raises(TypeError, match="local"):
        await a.adapter.fetch_sockets(local="yes")
    with pytest.raises(TypeError, match="local"):
        await a.adapter.sockets_join("r", local=1)
    with pytest.raises(TypeError, match="local"):
        await a.adapter.disconnect_sockets(local=None)


@pytest.mark.interop
async def test_node_volatile_broadcast_skips_backed_up_python_socket(
    make_node, make_client, js_server
):
    """A Node server's volatile emit skips a backed-up socket on a Python server."""
    holder = await make_node(**QUIET_PINGS)
    slow = await SlowConsumer.connect(holder.port)
    healthy = await make_client(holder, name="healthy")
    try:
        queue = queue_of(holder, slow.eio_sid)
        with anyio.fail_after(30):
            while queue.qsize() < 2 * VOLATILE_BACKLOG:
                await holder.sio.emit("fill", PAYLOAD)
                await asyncio.sleep(0.001)
        waiting = queue.qsize()
        await js_server.cmd("emit", event="v-node", args=[], volatile=True)
        await js_server.cmd("emit", event="after", args=[])
        await healthy.wait_for("v-node")
        await healthy.wait_for("after")
        assert queue.qsize() == waiting + 1
        assert holder.adapter.stats["volatile_skipped"] == 1
    finally:
        slow.close()
