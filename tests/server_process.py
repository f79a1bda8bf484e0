"""A Socket.IO server in a process of its own, for tests that kill it or instrument it.

python-socketio's instrumentation patches engine.io's socket class for the whole process, so
each instrumented server of a test cluster runs in a process of its own; fault tests SIGSTOP
and SIGKILL such a process. Started by ``tests/helpers.py`` (``start_server_process``) as

    python tests/server_process.py REDIS_URL KEY [--admin USER:PASSWORD] [--cors ORIGIN]
                                                [--streams] [--csr SECONDS]

it serves websocket clients on a free loopback port with an AsyncRedisAdapter (with
``--streams`` an AsyncStreamsRedisAdapter whose stream and channel prefix are KEY, and with
``--csr`` connection-state recovery with that window), answers
``server_side_emit_with_ack("ping")`` with ``"pong"``, ``custom_request`` with ``"peer"`` and
a client's ``join`` event by joining that room; prints ``{"port", "uid"}`` as one JSON line
once it listens and Redis confirmed its subscriptions, and stops when its stdin closes.
It imports only the installed package, never the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import anyio
import socketio
from aiohttp import web

from socketio_redis_async import (
    AsyncRedisAdapter,
    AsyncStreamsRedisAdapter,
    ConnectionStateRecovery,
    instrument,
)


async def serve(
    redis_url: str, key: str, admin: str | None, cors: list[str], streams: bool, csr: float
) -> None:
    adapter: AsyncRedisAdapter | AsyncStreamsRedisAdapter
    if streams:
        adapter = AsyncStreamsRedisAdapter(
            redis_url,
            stream_name=key,
            channel_prefix=key,
            requests_timeout=3,
            connection_state_recovery=ConnectionStateRecovery(csr) if csr else None,
        )
    else:
        adapter = AsyncRedisAdapter(redis_url, key=key, requests_timeout=3)
    # A long ping interval when instrumented: python-socketio's instrumentation re-announces
    # every socket at each ping, which would hide a socket list that is not cluster-wide.
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=adapter,
        cors_allowed_origins=cors,
        ping_interval=60 if admin else 25,
    )
    if admin:
        username, _, password = admin.partition(":")
        auth = {"username": username, "password": password}
        instrument(sio, auth=auth, mode="development", server_stats_interval=1)
    adapter.on("ping", lambda *args: "pong")
    adapter.custom_hook = lambda data: "peer"

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
        with anyio.move_on_after(5):
            await sio.eio.disconnect()
    await adapter.aclose()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("key")
    parser.add_argument("--admin", help="instrument for the admin UI, with USER:PASSWORD")
    parser.add_argument("--cors", action="append", default=[])
    parser.add_argument("--streams", action="store_true", help="AsyncStreamsRedisAdapter")
    parser.add_argument("--csr", type=float, default=0, help="recovery window, seconds")
    args = parser.parse_args()
    asyncio.run(serve(args.redis_url, args.key, args.admin, args.cors, args.streams, args.csr))
