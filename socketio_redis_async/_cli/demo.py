"""The demo cluster: an embedded Redis, two uvicorn server processes and four clients.

``create_app`` is the ASGI app each server process runs (``uvicorn --factory``);
``run_demo`` starts everything, prints what the clients receive, and stops it all.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from typing import Any

import socketio

from .._adapter import AsyncRedisAdapter
from .redis_server import RedisServer, free_port

_START = time.monotonic()


def create_app() -> Any:
    """One demo server: relays ``shout`` to everyone and ``to_room`` to a room."""
    adapter = AsyncRedisAdapter(os.environ["SOCKETIO_REDIS_URL"])
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=adapter, transports=["websocket"])
    name = os.environ.get("DEMO_SERVER_NAME", "server")

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        await sio.emit("welcome", {"server": name, "pid": os.getpid()}, to=sid)

    async def shout(sid: str, text: str) -> None:
        await sio.emit("chat", {"text": text, "relayed_by": name})

    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return "joined"

    async def to_room(sid: str, room: str, text: str) -> None:
        await sio.emit("room_message", {"room": room, "text": text, "relayed_by": name}, to=room)

    for handler in (connect, shout, join, to_room):
        sio.on(handler.__name__, handler)
    return socketio.ASGIApp(sio, on_startup=adapter.start, on_shutdown=adapter.aclose)


def _say(text: str) -> None:
    print(f"[{time.monotonic() - _START:6.3f}s] {text}", flush=True)


def _start_server(name: str, redis_url: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = dict(os.environ, SOCKETIO_REDIS_URL=redis_url, DEMO_SERVER_NAME=name)
    command = [sys.executable, "-m", "uvicorn", "--factory", f"{__name__}:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Application startup complete" in line:
            break
        if "error" in line.lower():
            sys.stderr.write(line)
    else:
        raise RuntimeError(f"{name} did not start (exit code {proc.wait()})")
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    _say(f"{name} (pid {proc.pid}) is listening on http://127.0.0.1:{port}")
    return proc, port


class _DemoClient:
    def __init__(self, name: str, port: int, expected: int) -> None:
        self.name = name
        self.port = port
        self.sio = socketio.AsyncClient(reconnection=False)
        self.got: list[str] = []
        self.done = asyncio.Event()
        self.expected = expected
        for event in ("welcome", "chat", "room_message"):
            self.sio.on(event, self._recorder(event))

    def _recorder(self, event: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            self.got.append(event)
            _say(f"{self.name:<6} (on port {self.port}) got {event:<12} {data}")
            if len(self.got) >= self.expected:
                self.done.set()

        return record


async def _clients(ports: list[int]) -> bool:
    layout = [("alice", ports[0]), ("bob", ports[0]), ("carol", ports[1]), ("dave", ports[1])]
    expected = {"alice": 2, "bob": 3, "carol": 3, "dave": 2}
    clients = [_DemoClient(name, port, expected[name]) for name, port in layout]
    alice, bob, carol, dave = clients
    for client in clients:
        await client.sio.connect(f"http://127.0.0.1:{client.port}", transports=["websocket"])
    _say("alice (server 1) shouts; the event crosses Redis to the clients of server 2")
    await alice.sio.emit("shout", "hello, everyone")
    await bob.sio.call("join", "lobby")
    await carol.sio.call("join", "lobby")
    _say("bob (server 1) and carol (server 2) joined room 'lobby'; dave (server 2) writes to it")
    await dave.sio.emit("to_room", ("lobby", "hi lobby"))
    try:
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), 10)
    except asyncio.TimeoutError:
        _say("TIMEOUT: some messages did not arrive: " + str({c.name: c.got for c in clients}))
        return False
    finally:
        for client in clients:
            await client.sio.disconnect()
    ok = all("room_message" not in c.got for c in (alice, dave))
    _say("only bob and carol got the room message" if ok else "room message leaked")
    return ok


def run_demo() -> int:
    """Run the demo; 0 when every expected message arrived."""
    with RedisServer() as redis:
        _say(f"embedded redis-server ({redis.executable}) on {redis.url}")
        servers = [_start_server(f"server{i}", redis.url) for i in (1, 2)]
        try:
            ok = asyncio.run(_clients([port for _, port in servers]))
        finally:
            for proc, _ in servers:
                proc.terminate()
                proc.wait(timeout=10)
    _say("demo finished: OK" if ok else "demo FAILED")
    return 0 if ok else 1
