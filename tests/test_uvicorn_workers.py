"""uvicorn --workers 2: clients spread over worker processes all get each other's broadcasts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys

import anyio
import pytest

from tests.helpers import Client

pytestmark = pytest.mark.anyio


async def test_broadcast_crosses_uvicorn_workers(redis_server, tmp_path):
    """With two uvicorn workers, a broadcast relayed by one reaches clients of the other."""
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
        "0",  # uvicorn binds a free port and logs it: no port picked here that could be taken
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
        log: list[bytes] = []
        with anyio.fail_after(30):
            while sum(b"Application startup complete" in line for line in log) < 2:
                log.append(await proc.stderr.readline())
                assert log[-1], f"uvicorn exited early: {b''.join(log).decode()}"
        running = re.search(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)", b"".join(log))
        assert running, b"".join(log).decode()
        url = f"http://127.0.0.1:{int(running[1])}"
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
