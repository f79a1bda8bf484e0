"""One benchmark server process, driven over HTTP on the same loopback port.

``python -m benchmarks.server --contender adapter|adapter-nomux|redismanager|raw|emitter
--redis URL --key K`` (a contender ending in ``-uvloop`` runs on uvloop) listens on a free
127.0.0.1 port and prints one JSON line
``{"ready": true, "port": P, "pid": N}`` once its subscriptions are set up. It exits on
SIGTERM/SIGINT and when its stdin closes, so a killed benchmark run leaves no orphans.

Socket.IO contenders serve ``/socket.io/`` (websocket only); a client that connects with
``auth={"rooms": [...]}`` joins those rooms before its CONNECT is answered. The ``raw``
contender has no Socket.IO at all: it PUBLISHes msgpack payloads and a redis-py (hiredis)
subscriber decodes them, the ceiling for Python.

Control endpoints (all answer JSON):

* ``POST /blast?n=&room=&rate=&concurrency=``: emit ``n`` events to ``room``
  (``prefix:count`` means round-robin over ``prefix-0 .. prefix-<count-1>``), awaiting
  each emit, from ``concurrency`` tasks (default 1); ``rate`` > 0 paces them at that many
  per second. Answers ``{"elapsed": s}``.
* ``POST /join?prefix=&start=&count=``: every local socket joins ``prefix-<i>``.
* ``GET /requests?kind=all_rooms|fetch_sockets&n=``: ``n`` sequential cluster-wide
  requests; answers their durations in seconds.
* ``raw`` only: ``POST /arm?total=&latency=0|1``, ``GET /wait?timeout=``, ``GET /stats``,
  the same counting protocol the load clients speak (see ``counting.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from typing import Any

import msgpack
import socketio
from aiohttp import web
from redis.asyncio import Redis

from socketio_redis_async import AsyncEmitter, AsyncRedisAdapter

from .contenders import (
    EMITTER,
    EVENT,
    RAW,
    UVLOOP,
    base_contender,
    build_manager,
    payload,
    start_manager,
    stop_manager,
)
from .counting import Counter

SHUTDOWN_SECONDS = 2.0


def _room_list(spec: str) -> list[str]:
    prefix, sep, count = spec.rpartition(":")
    if sep and count.isdigit():
        return [f"{prefix}-{i}" for i in range(int(count))]
    return [spec]


class Emitter:
    """What a server does on ``/blast``: emit one event per call."""

    async def send(self, seq: int, room: str) -> None:
        raise NotImplementedError

    async def blast(self, n: int, rooms: list[str], rate: float, concurrency: int = 1) -> float:
        """Emit ``n`` events, each awaited, from ``concurrency`` tasks; return elapsed s."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        seqs = iter(range(n))

        async def worker() -> None:
            for seq in seqs:  # shared: each task takes the next sequence number
                if rate > 0:
                    delay = start + seq / rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await self.send(seq, rooms[seq % len(rooms)])

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        return loop.time() - start


class SocketIOServer(Emitter):
    """python-socketio on aiohttp with the contender's client manager."""

    def __init__(self, contender: str, redis_url: str, key: str) -> None:
        self.manager = build_manager(contender, redis_url, key)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", client_manager=self.manager, transports=["websocket"]
        )
        self.sio.on("connect", self._on_connect)

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        rooms = auth.get("rooms") if isinstance(auth, dict) else None
        for room in rooms or ():
            await self.sio.enter_room(sid, room)

    def attach(self, app: web.Application) -> None:
        self.sio.attach(app)

    async def start(self) -> None:
        await start_manager(self.sio, self.manager)

    async def stop(self) -> None:
        await stop_manager(self.manager)

    async def send(self, seq: int, room: str) -> None:
        await self.sio.emit(EVENT, payload(seq, time.time()), to=room)

    async def join(self, rooms: list[str]) -> int:
        sids = [sid for sid, _ in self.manager.get_participants("/", None)]
        await asyncio.gather(*(self.sio.enter_room(sid, room) for sid in sids for room in rooms))
        return len(self.manager.rooms.get("/", {}))

    async def request(self, kind: str) -> int:
        if not isinstance(self.manager, AsyncRedisAdapter):
            raise web.HTTPBadRequest(text="only the adapter answers cluster-wide requests")
        if kind == "all_rooms":
            return len(await self.manager.all_rooms())
        if kind == "fetch_sockets":
            return len(await self.manager.fetch_sockets())
        raise web.HTTPBadRequest(text=f"unknown request kind {kind!r}")


class EmitterServer(Emitter):
    """No Socket.IO server: an ``AsyncEmitter`` (a worker process, a cron job) emits."""

    def __init__(self, redis_url: str, key: str) -> None:
        self.emitter = AsyncEmitter(redis_url, key=key)

    def attach(self, app: web.Application) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.emitter.aclose()

    async def send(self, seq: int, room: str) -> None:
        await self.emitter.to(room).emit(EVENT, payload(seq, time.time()))


class RawServer(Emitter):
    """redis-py asyncio with hiredis: PUBLISH msgpack, and a subscriber that decodes it."""

    def __init__(self, redis_url: str, key: str) -> None:
        self.redis = Redis.from_url(redis_url)
        self.channel = f"{key}#raw"
        self.counter = Counter()
        self._task: asyncio.Task[None] | None = None

    def attach(self, app: web.Application) -> None:
        app.router.add_post("/arm", self._arm)
        app.router.add_get("/wait", self._wait)
        app.router.add_get("/stats", self._stats)

    async def start(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel)
        self._task = asyncio.get_running_loop().create_task(self._listen(pubsub))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.redis.aclose()

    async def _listen(self, pubsub: Any) -> None:
        counter = self.counter
        async for message in pubsub.listen():
            if message["type"] == "message":
                _, data = msgpack.unpackb(message["data"])
                if counter.latency:
                    counter.hit_at(data["t"])
                else:
                    counter.hit()

    async def send(self, seq: int, room: str) -> None:
        body = msgpack.packb([EVENT, payload(seq, time.time())])
        await self.redis.publish(self.channel, body)

    async def _arm(self, request: web.Request) -> web.Response:
        self.counter.arm(int(request.query["total"]), request.query.get("latency") == "1")
        return web.json_response({})

    async def _wait(self, request: web.Request) -> web.Response:
        return web.json_response(await self.counter.wait(float(request.query["timeout"])))

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.counter.stats())


def make_app(server: SocketIOServer | RawServer | EmitterServer) -> web.Application:
    app = web.Application()
    server.attach(app)

    async def blast(request: web.Request) -> web.Response:
        n = int(request.query["n"])
        rooms = _room_list(request.query.get("room", "bench"))
        rate = float(request.query.get("rate", "0"))
        concurrency = int(request.query.get("concurrency", "1"))
        return web.json_response({"elapsed": await server.blast(n, rooms, rate, concurrency)})

    async def join(request: web.Request) -> web.Response:
        if not isinstance(server, SocketIOServer):
            raise web.HTTPBadRequest(text="raw has no rooms")
        start, count = int(request.query["start"]), int(request.query["count"])
        prefix = request.query["prefix"]
        rooms = [f"{prefix}-{i}" for i in range(start, start + count)]
        return web.json_response({"rooms": await server.join(rooms)})

    async def requests(request: web.Request) -> web.Response:
        if not isinstance(server, SocketIOServer):
            raise web.HTTPBadRequest(text="raw has no requests")
        kind, n = request.query["kind"], int(request.query["n"])
        durations, answer = [], 0
        for _ in range(n):
            began = time.perf_counter()
            answer = await server.request(kind)
            durations.append(time.perf_counter() - began)
        return web.json_response({"durations": durations, "answer": answer})

    app.router.add_post("/blast", blast)
    app.router.add_post("/join", join)
    app.router.add_get("/requests", requests)
    return app


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    def read() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read, daemon=True).start()


async def serve(contender: str, redis_url: str, key: str) -> None:
    server: SocketIOServer | RawServer | EmitterServer
    if contender == RAW:
        server = RawServer(redis_url, key)
    elif base_contender(contender) == EMITTER:
        server = EmitterServer(redis_url, key)
    else:
        server = SocketIOServer(contender, redis_url, key)
    runner = web.AppRunner(make_app(server), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _watch_stdin(loop, stop)
    port = runner.addresses[0][1]
    print(json.dumps({"ready": True, "port": port, "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        # A graceful stop, but never a long one: open websockets hold aiohttp's cleanup
        # for a minute, and a listener that misses its cancellation holds aclose().
        watchdog = threading.Timer(SHUTDOWN_SECONDS, os._exit, args=(0,))
        watchdog.daemon = True
        watchdog.start()
        with contextlib.suppress(Exception):
            await server.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner.cleanup(), 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--contender", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    if args.contender.endswith(UVLOOP):
        import uvloop

        uvloop.run(serve(args.contender, args.redis, args.key))
    else:
        asyncio.run(serve(args.contender, args.redis, args.key))


if __name__ == "__main__":
    main()
