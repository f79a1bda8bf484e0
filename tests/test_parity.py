"""Python servers behave like Node servers towards real Node clients and Node requesters.

Close with ``close=True`` (socket.io-client ignores the Engine.IO CLOSE packet), the
``handshake.auth`` that Node apps read through ``fetchSockets()``, and the ``local``
variants of the cluster calls (Node's ``io.local.*``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from socketio_redis_async import AsyncEmitter
from tests.node_harness import NodeClient

pytestmark = pytest.mark.anyio


@pytest.fixture
async def make_js_client() -> AsyncIterator[Callable[..., Awaitable[NodeClient]]]:
    clients: list[NodeClient] = []

    async def make(url: str, namespaces: list[str], auth: dict | None = None) -> NodeClient:
        client = await NodeClient.connect(url, namespaces, auth)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


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
