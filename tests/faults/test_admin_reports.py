"""An instrumented server while Redis is down: the admin UI's reports must not take the app down."""

from __future__ import annotations

import time

import anyio
import pytest

from tests.helpers import Client, admin_cluster, clients_on, connect_admin, wait_until

pytestmark = pytest.mark.anyio


async def test_instrumented_server_serves_clients_while_redis_is_down(own_redis, key, reliability):
    """With Redis killed, clients still connect and call events, and server_stats go on."""
    async with (
        admin_cluster(own_redis.url, key, count=1) as servers,
        clients_on(servers, 1) as clients,
    ):
        admin, _ = await connect_admin(servers[0])
        stats: list[float] = []
        admin.on("server_stats", lambda _: stats.append(time.monotonic()), namespace="/admin")
        try:
            own_redis.kill()
            killed = time.monotonic()
            newcomer = Client("newcomer")
            try:
                with anyio.fail_after(15):
                    await newcomer.sio.connect(servers[0].url, transports=["websocket"])
                    assert await newcomer.sio.call("join", "room", timeout=10) == "joined"
                    assert await clients[0].sio.call("join", "room", timeout=10) == "joined"
                served = time.monotonic() - killed
                # The stats loop reports every second.
                await wait_until(lambda: len([t for t in stats if t > killed]) >= 2, timeout=10)
            finally:
                await newcomer.aclose()
        finally:
            await admin.disconnect()
    reliability.record(
        "admin_ui_connect_while_redis_down",
        served,
        "s",
        "instrumented server, Redis killed: a new client connected and two events answered",
        "< 15 s",
    )
