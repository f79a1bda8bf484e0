"""A Socket.IO server in a process of its own, for fault tests that kill it.

``python -m tests.faults.peer REDIS_URL KEY`` serves websocket clients on a free loopback
port with an AsyncRedisAdapter, answers ``server_side_emit_with_ack("ping")`` with
``"pong"`` and ``custom_request`` with ``"peer"``, and prints ``{"port", "uid"}`` as one
JSON line once it listens and Redis confirmed its subscriptions.
"""

from __future__ import annotations

import asyncio
import json
import sys

import socketio
from aiohttp import web

from socketio_redis_async import AsyncRedisAdapter


async def main(url: str, key: str) -> None:
    adapter = AsyncRedisAdapter(url, key=key)
    sio = socketio.AsyncServer(
        async_mode="aiohttp", client_manager=adapter, transports=["websocket"]
    )
    adapter.on("ping", lambda *args: "pong")
    adapter.custom_hook = lambda data: "peer"
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await adapter.start()
    sys.stdout.write(json.dumps({"port": runner.addresses[0][1], "uid": adapter.uid}) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
