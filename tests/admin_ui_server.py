"""One instrumented Socket.IO server process for tests/test_admin_ui.py.

python-socketio's instrumentation patches engine.io's socket class for the whole process,
so each instrumented server of a test cluster runs in a process of its own. It prints
``{"port": ..., "uid": ...}`` when ready and stops when its stdin closes.

    python -m tests.admin_ui_server REDIS_URL KEY [--cors ORIGIN]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import socketio
from aiohttp import web

from socketio_redis_async import AsyncRedisAdapter, instrument

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


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("key")
    parser.add_argument("--cors", action="append", default=[])
    args = parser.parse_args()
    asyncio.run(serve(args.redis_url, args.key, args.cors))
