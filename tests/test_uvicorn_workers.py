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

from tests.helpers import Client, wait_until_async

pytestmark = pytest.mark.anyio


async def accepting(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_broadcast_crosses_uvicorn_workers(redis_server, tmp_path):
    """With two uvicorn workers, a broadcast relayed by one reaches clients of the other."""
    env = dict(os.environ, SOCKETIO_REDIS_URL=redis_server.url, DEMO_SERVER_NAME="workers")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "socketio_redis_async._cli.demo:create_app",
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
        port = int(running[1])
        # Workers log "startup complete" before they listen on the socket the parent bound:
        # until one does, a connection is refused.
        await wait_until_async(bool, lambda: accepting(port), timeout=30)
        url = f"http://127.0.0.1:{port}"
        pids: dict[int, Client] = {}
        # The second worker may start listening later than the first: connect until a client
        # lands on each (a client on a worker already seen is closed again).
        with anyio.fail_after(30):
            while len(pids) < 2:
                client = Client(f"c{len(clients)}")
                clients.append(client)
                await client.sio.connect(url, transports=["websocket"], wait_timeout=5)
                welcome = (await client.wait_for("welcome"))[0][0]
                if welcome["pid"] in pids:
                    clients.remove(client)
                    await client.aclose()
                else:
                    pids[welcome["pid"]] = client
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
