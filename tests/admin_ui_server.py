"""Instrumented Socket.IO server processes for the admin UI tests, and their clients.

python-socketio's instrumentation patches engine.io's socket class for the whole process,
so each instrumented server of a test cluster runs in a process of its own (``cluster``).
Run as a module, this is one such server: it prints ``{"port": ..., "uid": ...}`` when ready
and stops when its stdin closes.

    python -m tests.admin_ui_server REDIS_URL KEY [--cors ORIGIN]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import socketio
from aiohttp import web

from socketio_redis_async import AsyncRedisAdapter, instrument
from tests.cluster import Client

AUTH = {"username": "admin", "password": "admin-secret"}


async def serve(redis_url: str, key: str, cors: list[str]) -> None:
    adapter = AsyncRedisAdapter(redis_url, key=key, requests_timeout=3)
    # A long ping interval: python-socketio's instrumentation re-announces every socket at
    # each ping, which would hide a socket list that is not cluster-wide.
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=adapter,
        cors_allowed_origins=cors,
        ping_interval=60,
    )
    instrument(sio, auth=AUTH, mode="development", server_stats_interval=1)

    @sio.on("join")
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return "joined"

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await adapter.start()
    sys.stdout.write(json.dumps({"port": runner.addresses[0][1], "uid": adapter.uid}) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()
    if sio.eio.sockets:
        await sio.eio.disconnect()
    await adapter.aclose()
    await runner.cleanup()


class Server:
    """An instrumented server process: ``url``, ``uid``."""

    def __init__(self, proc: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{info['port']}"
        self.uid: str = info["uid"]


@asynccontextmanager
async def cluster(
    redis_url: str, key: str, cors: str | None = None, count: int = 2
) -> AsyncIterator[list[Server]]:
    """``count`` instrumented server processes on one Redis, stopped on exit."""
    args = ["--cors", cors] if cors else []
    procs: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(count):
            procs.append(
                await asyncio.create_subprocess_exec(
                    *[sys.executable, "-m", "tests.admin_ui_server", redis_url, key, *args],
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        servers = []
        for proc in procs:
            assert proc.stdout is not None
            with anyio.fail_after(30):
                line = await proc.stdout.readline()
            assert line, "the admin UI server exited before it was ready"
            servers.append(Server(proc, json.loads(line)))
        yield servers
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in procs:
            with anyio.move_on_after(10):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@asynccontextmanager
async def clients_on(servers: list[Server], per_server: int) -> AsyncIterator[list[Client]]:
    """``per_server`` websocket clients on each server, each sending a cookie."""
    clients = [Client(f"c{i}") for i in range(per_server * len(servers))]
    try:
        for i, client in enumerate(clients):
            url = servers[i % len(servers)].url
            headers = {"Cookie": "session=secret", "X-Team": "blue"}
            await client.sio.connect(url, headers=headers, transports=["websocket"], wait_timeout=5)
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def connect_admin(server: Server) -> tuple[socketio.AsyncClient, list[Any]]:
    """A python-socketio client in the admin namespace, as the UI connects; its all_sockets."""
    admin = socketio.AsyncClient(reconnection=False)
    got: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
    admin.on("all_sockets", got.set_result, namespace="/admin")
    await admin.connect(server.url, namespaces=["/admin"], auth=AUTH, wait_timeout=5)
    with anyio.fail_after(10):
        return admin, await got


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("key")
    parser.add_argument("--cors", action="append", default=[])
    args = parser.parse_args()
    asyncio.run(serve(args.redis_url, args.key, args.cors))
