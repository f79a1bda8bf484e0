"""A Socket.IO server on AsyncStreamsRedisAdapter in a process of its own, for fault tests
that SIGKILL it (tests/faults/test_streams_faults.py). Started as

    python tests/faults/streams_server.py REDIS_URL PREFIX

with ``stream_name`` and ``channel_prefix`` both PREFIX (as ``tests/streams.py`` names
them), it serves websocket clients on a free loopback port, prints ``{"port", "uid"}`` as
one JSON line once it listens and its adapter has started (subscribed, reading its
stream), and stops when its stdin closes. It imports only the installed package.
"""

from __future__ import annotations

import asyncio
import json
import sys

import anyio
import socketio
from aiohttp import web

from socketio_redis_async import AsyncStreamsRedisAdapter


async def serve(redis_url: str, prefix: str) -> None:
    adapter = AsyncStreamsRedisAdapter(
        redis_url, stream_name=prefix, channel_prefix=prefix, requests_timeout=3
    )
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=adapter)
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
        with anyio.move_on_after(5):
            await sio.eio.disconnect()
    await adapter.aclose()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
