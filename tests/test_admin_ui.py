"""The Socket.IO admin UI on a two-server cluster: python-socketio's instrumentation, cluster-wide.

The servers run in processes of their own (tests/server_process.py), because python-socketio's
instrumentation patches engine.io for the whole process (see the test of that below). The
browser test drives the real UI from the ``@socket.io/admin-ui`` npm package in Debian's
headless Chromium.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import socketio
from aiohttp import web

from socketio_redis_async import AsyncRedisAdapter, ClusterInstrumentedAsyncServer, instrument
from tests.helpers import AUTH, admin_cluster, clients_on, connect_admin, stop_process
from tests.node_harness import INTEROP, require_node

pytestmark = pytest.mark.anyio

UI_DIST = INTEROP / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


async def test_all_sockets_lists_every_server_sockets(redis_server, key):
    """An admin connecting to one server gets the sockets of both servers, cookies left out."""
    async with admin_cluster(redis_server.url, key) as servers, clients_on(servers, 2) as clients:
        await clients[1].sio.call("join", "lobby", timeout=5)  # a client of the second server
        admin, sockets = await connect_admin(servers[0])
        try:
            by_id = {s["id"]: s for s in sockets if s["nsp"] == "/"}
            assert set(by_id) == {c.sio.get_sid("/") for c in clients}
            remote = by_id[clients[1].sio.get_sid("/")]
            assert remote["transport"] == "websocket"
            assert remote["clientId"] == clients[1].sio.eio.sid
            assert "lobby" in remote["rooms"]
            assert remote["handshake"]["headers"]["x_team"] == "blue"
            assert "cookie" not in remote["handshake"]["headers"]
        finally:
            await admin.disconnect()


async def test_admin_disconnect_reaches_a_socket_on_another_server(redis_server, key):
    """The UI's disconnect action works for a socket connected to another server."""
    async with admin_cluster(redis_server.url, key) as servers, clients_on(servers, 1) as clients:
        remote = clients[1]
        admin, _ = await connect_admin(servers[0])
        try:
            await admin.emit("_disconnect", ("/", False, remote.sio.get_sid("/")), "/admin")
            await remote.wait_disconnected()
            assert clients[0].sio.connected
        finally:
            await admin.disconnect()


async def test_admin_join_and_leave_reach_a_socket_on_another_server(redis_server, key):
    """The UI's join and leave actions work for a socket connected to another server."""
    async with admin_cluster(redis_server.url, key) as servers, clients_on(servers, 1) as clients:
        remote_sid = clients[1].sio.get_sid("/")
        admin, _ = await connect_admin(servers[0])
        changes: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        def on_change(event: str) -> Any:
            def record(nsp: str, room: str, sid: str, timestamp: str) -> None:
                if room == "vip":  # not the socket-id rooms reported at connection
                    changes.put_nowait((event, sid))

            return record

        for event in ("room_joined", "room_left"):
            admin.on(event, on_change(event), namespace="/admin")
        try:
            await admin.emit("join", ("/", "vip", remote_sid), "/admin")
            with anyio.fail_after(5):  # reported by the second server's stats loop (1 s)
                assert await changes.get() == ("room_joined", remote_sid)
            await admin.emit("leave", ("/", "vip", remote_sid), "/admin")
            with anyio.fail_after(5):
                assert await changes.get() == ("room_left", remote_sid)
        finally:
            await admin.disconnect()


@pytest.mark.unit
def test_instrument_needs_this_adapter():
    """ClusterInstrumentedAsyncServer on a server without AsyncRedisAdapter is a TypeError."""
    with pytest.raises(TypeError, match="AsyncRedisAdapter"):
        ClusterInstrumentedAsyncServer(socketio.AsyncServer(), auth=False)


@pytest.mark.unit
def test_instrument_refuses_a_second_server_in_one_process():
    """A second instrumented server in one process is refused (python-socketio's patches clash)."""
    first = instrument(socketio.AsyncServer(client_manager=AsyncRedisAdapter()), auth=False)
    try:
        with pytest.raises(RuntimeError, match="one server per process"):
            instrument(socketio.AsyncServer(client_manager=AsyncRedisAdapter()), auth=False)
    finally:
        first.uninstrument()
    instrument(socketio.AsyncServer(client_manager=AsyncRedisAdapter()), auth=False).uninstrument()


@pytest.mark.unit
@pytest.mark.parametrize("mode", ["development", "production"])
def test_uninstrument_restores_the_adapter(mode):
    """uninstrument() leaves the adapter's emit as it found it, in either mode."""
    adapter = AsyncRedisAdapter()
    instrumented = instrument(socketio.AsyncServer(client_manager=adapter), auth=False, mode=mode)
    assert adapter.emit == instrumented._best_effort_emit
    instrumented.uninstrument()
    assert adapter.emit == AsyncRedisAdapter.emit.__get__(adapter)


def require_browser() -> tuple[str, str]:
    """node and Chromium; skip (locally) or fail (in CI) when either is missing."""
    node = require_node()
    missing = None
    if not (INTEROP / "node_modules" / "playwright-core").exists() or not UI_DIST.exists():
        missing = "@socket.io/admin-ui or playwright-core missing (npm ci --prefix tests/interop)"
    elif shutil.which(CHROMIUM) is None:
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"admin UI test prerequisites missing in CI: {missing}")
        pytest.skip(missing)
    return node, CHROMIUM


@asynccontextmanager
async def static_ui() -> AsyncIterator[str]:
    """The admin UI's built files, served on 127.0.0.1; yields its URL."""

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(UI_DIST / "index.html")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_static("/", UI_DIST)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


@pytest.mark.interop
async def test_admin_ui_dashboard_shows_the_whole_cluster(redis_server, key, tmp_path):
    """The real admin UI, logged in to one server, lists both servers and every socket."""
    node, chromium = require_browser()
    screenshot = Path(os.environ.get("ADMIN_UI_SCREENSHOT", tmp_path / "admin-ui.png"))
    sockets_screenshot = screenshot.with_name(screenshot.stem + "-sockets.png")
    async with static_ui() as ui_url:
        origin = ui_url.rstrip("/")
        async with (
            admin_cluster(redis_server.url, key, cors=origin) as servers,
            clients_on(servers, 3) as clients,
        ):
            await clients[1].sio.call("join", "lobby", timeout=5)
            sids = [c.sio.get_sid("/") for c in clients]
            options = {
                "uiUrl": ui_url,
                "serverUrl": servers[0].url,
                **AUTH,
                "servers": [s.uid for s in servers],
                "sockets": sids,
                # Server stats aggregated by the UI: two healthy servers, every socket.
                "dashboard": ["HEALTHY 2 100.0 %", f"/ {len(sids)} /admin 1"],
                "screenshot": str(screenshot),
                "socketsScreenshot": str(sockets_screenshot),
                "chromium": chromium,
                "userDataDir": str(tmp_path / "chromium-profile"),
                "timeoutMs": 30_000,
            }
            proc = await asyncio.create_subprocess_exec(
                node,
                str(INTEROP / "admin_ui.js"),
                json.dumps(options),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                with anyio.fail_after(60):
                    out, err = await proc.communicate()
            finally:
                await stop_process(proc, grace=0)
    assert proc.returncode == 0, err.decode(errors="replace")
    page = json.loads(out)
    assert page["errors"] == [], "the UI threw"
    for server in servers:
        assert server.uid in page["serversPage"], page["serversPage"]
    for sid in sids:
        assert sid in page["socketsPage"], page["socketsPage"]
    assert "HEALTHY 2 100.0 %" in page["dashboard"], page["dashboard"]
    assert f"/ {len(sids)} /admin 1" in page["dashboard"], page["dashboard"]
    for png in (screenshot, sockets_screenshot):
        assert (await anyio.Path(png).read_bytes()).startswith(b"\x89PNG")
