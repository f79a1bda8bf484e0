"""Broadcasting across real servers that share one real redis-server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


async def test_broadcast_to_all_reaches_every_node(make_node, make_client):
    """An emit without a room reaches clients on the sending node and on the others."""
    a, b, c = await make_node(), await make_node(), await make_node()
    clients = [await make_client(n) for n in (a, b, c)]
    await a.sio.emit("hello", (1, "2", b"\x03\x04"))
    for client in clients:
        assert await client.wait_for("hello") == [[1, "2", b"\x03\x04"]]
