"""The Python servers under test, as ``worker.py server --contender C`` roles.

* ``SocketIOServer`` (adapter, adapter-nomux, sharded, streams, redismanager):
  python-socketio's ``AsyncServer`` on aiohttp (websocket only) with that client manager.
  A client that connects with ``auth={"rooms": [...]}`` joins those rooms before its
  CONNECT is answered.
* ``EmitterServer`` (emitter): no Socket.IO server, an ``AsyncEmitter`` emits.
* ``RawServer`` (raw): no Socket.IO at all: it PUBLISHes msgpack payloads and a redis-py
  (hiredis) subscriber decodes and counts them, the ceiling for Python.

Commands: ``blast {n, room, rate, concurrency}`` emits ``n`` events to ``room``
(``prefix:count`` means round-robin over ``prefix-0 .. prefix-<count-1>``), each awaited,
from ``concurrency`` tasks; ``rate`` > 0 paces them at that many per second; answers
``{"elapsed": s}``. Socket.IO servers also answer ``join {prefix, start, count}`` (every
local socket joins ``prefix-<i>``) and ``requests {kind, n}`` (``n`` sequential
``all_rooms``/``fetch_sockets`` requests, answered with their durations); the raw server
answers the counting commands of ``loadclients.Counters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgpack
import socketio
from aiohttp import web
from redis.asyncio import Redis

from socketio_redis_async import AsyncEmitter

from .contenders import (
    EVENT,
    STREAM,
    adapter_classes,
    build_manager,
    payload,
    start_manager,
    stop_manager,
)
from .loadclients import Counters


def room_list(spec: str) -> list[str]:
    """``prefix:count`` -> ``prefix-0 .. prefix-<count-1>``; anything else is one room."""
    prefix, sep, count = spec.rpartition(":")
    if sep and count.isdigit():
        return [f"{prefix}-{i}" for i in range(int(count))]
    return [spec]


class Sender:
    """What every server does on ``blast``: emit one event per ``send``."""

    async def send(self, seq: int, room: str) -> None:
        raise NotImplementedError

    def commands(self) -> dict[str, Any]:
        return {"blast": self.blast}

    async def blast(self, n: int, room: str, rate: float = 0, concurrency: int = 1) -> Any:
        """Emit ``n`` events, each awaited, from ``concurrency`` tasks."""
        rooms = room_list(room)
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
        return {"elapsed": loop.time() - start}


class SocketIOServer(Sender):
    """python-socketio on aiohttp with the contender's client manager."""

    def __init__(self, contender: str, redis_url: str, key: str, stream: str = STREAM) -> None:
        self.manager = build_manager(contender, redis_url, key, stream)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", client_manager=self.manager, transports=["websocket"]
        )
        self.sio.on("connect", self._on_connect)
        self.app = web.Application()
        self.sio.attach(self.app)
        self.runner = web.AppRunner(self.app, access_log=None)

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        rooms = auth.get("rooms") if isinstance(auth, dict) else None
        for room in rooms or ():
            await self.sio.enter_room(sid, room)

    async def start(self) -> dict[str, Any]:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        await start_manager(self.sio, self.manager)
        return {"port": self.runner.addresses[0][1]}

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await stop_manager(self.manager)
        # Open websockets hold aiohttp's cleanup for a minute: do not wait for it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.runner.cleanup(), 0.5)

    def commands(self) -> dict[str, Any]:
        return {**super().commands(), "join": self.join, "requests": self.requests}

    async def send(self, seq: int, room: str) -> None:
        await self.sio.emit(EVENT, payload(seq, time.time()), to=room)

    async def join(self, prefix: str, start: int, count: int) -> Any:
        rooms = [f"{prefix}-{i}" for i in range(start, start + count)]
        sids = [sid for sid, _ in self.manager.get_participants("/", None)]
        await asyncio.gather(*(self.sio.enter_room(sid, room) for sid in sids for room in rooms))
        return {"rooms": len(self.manager.rooms.get("/", {}))}

    async def requests(self, kind: str, n: int) -> Any:
        if not isinstance(self.manager, adapter_classes()):
            raise ValueError("only the adapter answers cluster-wide requests")
        if kind not in ("all_rooms", "fetch_sockets"):
            raise ValueError(f"unknown request kind {kind!r}")
        durations, answer = [], 0
        for _ in range(n):
            began = time.perf_counter()
            if kind == "all_rooms":
                answer = len(await self.manager.all_rooms())
            else:
                answer = len(await self.manager.fetch_sockets())
            durations.append(time.perf_counter() - began)
        return {"durations": durations, "answer": answer}


class EmitterServer(Sender):
    """No Socket.IO server: an ``AsyncEmitter`` (a worker process, a cron job) emits."""

    def __init__(self, redis_url: str, key: str) -> None:
        self.emitter = AsyncEmitter(redis_url, key=key)

    async def start(self) -> dict[str, Any]:
        return {}

    async def stop(self) -> None:
        await self.emitter.aclose()

    async def send(self, seq: int, room: str) -> None:
        await self.emitter.to(room).emit(EVENT, payload(seq, time.time()))


class RawServer(Sender, Counters):
    """redis-py asyncio with hiredis: PUBLISH msgpack, and a subscriber that decodes it."""

    def __init__(self, redis_url: str, key: str) -> None:
        Counters.__init__(self)
        self.redis = Redis.from_url(redis_url)
        self.channel = f"{key}#raw"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> dict[str, Any]:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel)
        self._task = asyncio.get_running_loop().create_task(self._listen(pubsub))
        return {}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.redis.aclose()

    def commands(self) -> dict[str, Any]:
        return {**super().commands(), "arm": self.arm, "wait": self.wait, "stats": self.stats}

    async def _listen(self, pubsub: Any) -> None:
        counter = self.counter("")
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
