"""uvicorn --workers 2: clients spread over worker processes all get each other's broadcasts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import anyio
import pytest

from socketio_redis_async._redis_server import free_port
from tests.helpers import Client

pytestmark = pytest.mark.anyio


async def test_broadcast_crosses_uvicorn_workers(redis_server, tmp_path):
    """With two uvicorn workers, a broadcast relayed by one reaches clients of the other."""
    port = free_port()
    env = dict(os.environ, SOCKETIO_REDIS_URL=redis_server.url, DEMO_SERVER_NAME="workers")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "socketio_redis_async._demo:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--log-level",
        "info",
        env=env,
        cwd=tmp_path,  # not the checkout: uvicorn imports the app from its working directory
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # its own process group, workers included
    )
    assert proc.stderr is not None
    clients: list[Client] = []
    try:
        with anyio.fail_after(30):
            started = 0
            while started < 2:
                line = await proc.stderr.readline()
                assert line, "uvicorn exited early"
                started += b"Application startup complete" in line
        url = f"http://127.0.0.1:{port}"
        pids: dict[int, Client] = {}
        with anyio.fail_after(30):
            while len(pids) < 2 and len(clients) < 40:
                client = Client(f"c{len(clients)}")
                clients.append(client)
                await client.sio.connect(url, transports=["websocket"], wait_timeout=5)
                welcome = (await client.wait_for("welcome"))[0][0]
                pids.setdefault(welcome["pid"], client)
        assert len(pids) == 2, "all connections landed on one worker"
        first, second = pids.values()
        await first.sio.emit("shout", "across workers")
        for client in clients:
            assert (await client.wait_for("chat"))[0][0]["text"] == "across workers"
        assert second.received("chat")
    finally:
        for client in clients:
            await client.aclose()
        with contextlib.suppress(ProcessLookupError):  # it may have exited already
            proc.terminate()
        with anyio.move_on_after(15):
            await proc.wait()
        # The workers share uvicorn's stderr: end the whole group, then read the pipe to
        # its end, so its transport is closed here and not found open by the GC later.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with anyio.fail_after(15):
            await proc.wait()
            await proc.stderr.read()
