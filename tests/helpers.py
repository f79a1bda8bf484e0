"""Shared test helpers: real Socket.IO servers and clients, processes, the console script.

Everything here drives real parts: aiohttp servers on loopback with an AsyncRedisAdapter
(``Node``), python-socketio clients that record what they receive (``Client``), server
processes of their own (``start_server_process``), the ``socketio-redis`` console script
(``run_cli``) and a raw websocket client that stops reading (``SlowConsumer``). Every wait
has a bound. The Node.js harness is in ``node_harness.py``, Sentinel in ``sentinel.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from inspect import signature
from pathlib import Path
from typing import Any

import anyio
import redis.asyncio
import socketio
from aiohttp import web

from socketio_redis_async import AsyncRedisAdapter
from socketio_redis_async._cli.redis_server import RedisServer

NAMESPACES = ["/", "/custom"]
AUTH = {"username": "admin", "password": "admin-secret"}  # the admin UI's, for server processes
SERVER_PROCESS = Path(__file__).parent / "server_process.py"


async def serve(sio: socketio.AsyncServer) -> tuple[web.AppRunner, int]:
    """Serve ``sio`` with aiohttp on a free loopback port: (runner, port)."""
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


async def disconnect_all(sio: socketio.AsyncServer) -> None:
    """Disconnect every client of ``sio``, bounded."""
    if sio.eio.sockets:
        # A socket whose client is leaving at this very moment may never drain.
        with anyio.move_on_after(5):
            await sio.eio.disconnect()


class Node:
    """One AsyncServer with an AsyncRedisAdapter (or another adapter class of this package),
    served by aiohttp on 127.0.0.1."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        adapter: Any,
        runner: web.AppRunner,
        port: int,
    ):
        self.sio = sio
        self.adapter = adapter
        self.runner = runner
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server_events: list[tuple[str, str, tuple[Any, ...]]] = []

    @classmethod
    async def start(
        cls,
        redis_url: str,
        key: str,
        adapter_class: Callable[..., Any] = AsyncRedisAdapter,
        **adapter_options: Any,
    ) -> Node:
        """``adapter_class``: AsyncRedisAdapter, or e.g. AsyncShardedRedisAdapter (whose
        prefix option is ``channel_prefix``: ``key`` goes there)."""
        adapter_options.setdefault("requests_timeout", 2)
        namespaces = adapter_options.pop("namespaces", NAMESPACES)
        server_options = {"transports": ["websocket"], **adapter_options.pop("server_options", {})}
        prefix = (
            "channel_prefix" if "channel_prefix" in signature(adapter_class).parameters else "key"
        )
        adapter = adapter_class(redis_url, **{prefix: key}, **adapter_options)
        sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=adapter,
            namespaces=namespaces,
            **server_options,
        )
        runner, port = await serve(sio)
        try:
            await adapter.start()
        except BaseException:
            await adapter.aclose()
            await runner.cleanup()
            raise
        return cls(sio, adapter, runner, port)

    def sids(self, namespace: str = "/") -> set[str]:
        """Sids of the sockets connected to this node."""
        return {sid for sid, _ in self.sio.manager.get_participants(namespace, None)}

    async def aclose(self) -> None:
        await disconnect_all(self.sio)
        await self.adapter.aclose()
        await self.runner.cleanup()


class Client:
    """A python-socketio client over websocket that records every event it receives."""

    def __init__(self, name: str = "client") -> None:
        self.name = name
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, str, list[Any]]] = []
        self.ack_value: Callable[[str, list[Any]], Any] = lambda event, args: None
        self._changed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.never_ack: set[str] = set()
        self._closed = asyncio.Event()

        @self.sio.on("*", namespace="*")
        async def on_any(*args: Any) -> Any:
            # python-socketio passes (event, namespace, *args) to a catch-all handler, but
            # (namespace, *args) for an event literally named "*" (it matches by name).
            connected = set(self.sio.namespaces)
            second_is_namespace = len(args) > 1 and isinstance(args[1], str)
            if args[0] in connected and not (second_is_namespace and args[1] in connected):
                args = ("*", *args)
            event, namespace, *rest = args
            args = tuple(rest)
            self.events.append((namespace, event, list(args)))
            self._changed.set()
            if event in self.never_ack:
                # Hold the ack back until this client closes (bounded all the same).
                with anyio.move_on_after(60):
                    await self._closed.wait()
            return self.ack_value(event, list(args))

        @self.sio.on("disconnect", namespace="*")
        async def on_disconnect(namespace: str, *args: Any) -> None:
            self.disconnected.set()

    async def connect(self, node: Node, namespaces: list[str] | None = None) -> Client:
        await self.sio.connect(
            node.url, transports=["websocket"], namespaces=namespaces or ["/"], wait_timeout=5
        )
        return self

    async def wait_disconnected(self, timeout: float = 5) -> None:
        """Wait until the server disconnected this client (in any namespace)."""
        with anyio.fail_after(timeout):
            await self.disconnected.wait()

    def sid(self, namespace: str = "/") -> str:
        sid: str | None = self.sio.get_sid(namespace)
        assert sid is not None
        return sid

    def received(self, event: str, namespace: str = "/") -> list[list[Any]]:
        """Argument lists of every ``event`` received so far in ``namespace``."""
        return [args for ns, ev, args in self.events if ev == event and ns == namespace]

    async def wait_for(
        self, event: str, count: int = 1, namespace: str = "/", timeout: float = 5
    ) -> list[list[Any]]:
        """Wait until ``event`` arrived ``count`` times; return the argument lists."""
        with anyio.fail_after(timeout):
            while len(self.received(event, namespace)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.received(event, namespace)

    async def aclose(self) -> None:
        self._closed.set()
        if self.sio.connected:
            await self.sio.disconnect()


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 5, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it holds (for state that has no event to await)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def wait_until_async(
    predicate: Callable[[Any], bool], fetch: Callable[[], Awaitable[Any]], timeout: float = 10
) -> None:
    """Poll ``predicate(await fetch())`` until it holds (for state read from Redis)."""
    with anyio.fail_after(timeout):
        while not predicate(await fetch()):
            await asyncio.sleep(0.01)


async def wait_numsub(
    client: redis.asyncio.Redis, channel: str, expected: int = 1, timeout: float = 15
) -> None:
    """Wait until Redis counts ``expected`` subscribers of ``channel``."""

    async def numsub() -> int:
        return int(dict(await client.pubsub_numsub(channel))[channel.encode()])

    await wait_until_async(lambda count: count == expected, numsub, timeout)


async def barrier(sender: Any, clients: list[Client], namespace: str = "/") -> None:
    """Emit a marker to everyone and wait for it: whatever was sent before has arrived."""
    count = {id(c): len(c.received("marker", namespace)) for c in clients}
    await sender.sio.emit("marker", namespace=namespace)
    for client in clients:
        await client.wait_for("marker", count[id(client)] + 1, namespace=namespace)


# Processes


async def stop_process(proc: asyncio.subprocess.Process, grace: float = 10) -> None:
    """Close its stdin (how the test servers are told to stop), wait up to ``grace`` seconds,
    then kill it; read its pipes to their end, so no transport is left for the GC to find."""
    if proc.stdin is not None:
        proc.stdin.close()
    with anyio.move_on_after(grace):
        await proc.communicate()
    if proc.returncode is None:
        proc.kill()
    with anyio.fail_after(10):
        await proc.communicate()


def cli_script() -> str:
    """Path of the installed ``socketio-redis`` console script."""
    path = Path(sys.executable).parent / "socketio-redis"
    found = str(path) if path.exists() else shutil.which("socketio-redis")
    assert found, "the socketio-redis console script is not installed"
    return found


async def start_cli(*args: str) -> asyncio.subprocess.Process:
    """Start ``socketio-redis ARGS`` with its stdout and stderr piped."""
    return await asyncio.create_subprocess_exec(
        cli_script(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


@contextlib.asynccontextmanager
async def cli_process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``socketio-redis ARGS`` running with its pipes; stopped on exit if it still runs."""
    proc = await start_cli(*args)
    try:
        yield proc
    finally:
        await stop_process(proc, grace=0)


async def run_cli(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run ``socketio-redis ARGS`` to its end: (exit code, stdout, stderr)."""
    proc = await start_cli(*args)
    try:
        with anyio.fail_after(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            await stop_process(proc, grace=0)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@dataclass
class ServerProcess:
    """A ``tests/server_process.py`` server: ``url``, adapter ``uid``."""

    proc: asyncio.subprocess.Process
    url: str
    uid: str

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    async def aclose(self, grace: float = 10) -> None:
        await stop_process(self.proc, grace)


async def start_server_process(
    redis_url: str,
    key: str,
    *,
    admin: bool = False,
    cors: str | None = None,
    streams: bool = False,
    csr: float = 0,
) -> ServerProcess:
    """A Socket.IO server in a process of its own (see tests/server_process.py); with
    ``streams``, on AsyncStreamsRedisAdapter (stream and channel prefix ``key``), with
    ``csr`` seconds of connection-state recovery."""
    args = [redis_url, key, *(["--cors", cors] if cors else [])]
    if streams:
        args += ["--streams", *(["--csr", str(csr)] if csr else [])]
    if admin:
        args += ["--admin", f"{AUTH['username']}:{AUTH['password']}"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVER_PROCESS),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        with anyio.fail_after(30):
            line = await proc.stdout.readline()
        assert line, "the server process exited before it was ready"
    except BaseException:
        await stop_process(proc, grace=0)
        raise
    info = json.loads(line)
    return ServerProcess(proc, f"http://127.0.0.1:{info['port']}", info["uid"])


@contextlib.asynccontextmanager
async def admin_cluster(
    redis_url: str, key: str, cors: str | None = None, count: int = 2
) -> AsyncIterator[list[ServerProcess]]:
    """``count`` instrumented server processes on one Redis, stopped on exit."""
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            servers.append(await start_server_process(redis_url, key, admin=True, cors=cors))
        yield servers
    finally:
        for server in servers:
            await server.aclose()


@contextlib.asynccontextmanager
async def clients_on(servers: list[ServerProcess], per_server: int) -> AsyncIterator[list[Client]]:
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


async def connect_admin(server: ServerProcess) -> tuple[socketio.AsyncClient, list[Any]]:
    """A python-socketio client in the admin namespace, as the UI connects; its all_sockets."""
    admin = socketio.AsyncClient(reconnection=False)
    got: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
    admin.on("all_sockets", got.set_result, namespace="/admin")
    await admin.connect(server.url, namespaces=["/admin"], auth=AUTH, wait_timeout=5)
    with anyio.fail_after(10):
        return admin, await got


# A client that stops reading

QUIET_PINGS = {"server_options": {"ping_interval": 120, "ping_timeout": 120}}
PAYLOAD = "x" * 4096


async def _read_frame(reader: asyncio.StreamReader) -> str:
    _, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return (await reader.readexactly(length)).decode()


def _client_frame(text: str) -> bytes:
    data, mask = text.encode(), os.urandom(4)
    assert len(data) < 126
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bytes([0x81, 0x80 | len(data)]) + mask + masked


class SlowConsumer:
    """Connects to namespace / over websocket, then stops reading."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.eio_sid = ""

    @classmethod
    async def connect(cls, port: int) -> SlowConsumer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        with anyio.fail_after(5):
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
            consumer = cls(reader, writer)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
            opened = await _read_frame(reader)
            assert opened.startswith("0{")
            consumer.eio_sid = opened.split('"sid":"')[1].split('"')[0]
            writer.write(_client_frame("40"))
            assert (await _read_frame(reader)).startswith("40{")
        return consumer  # and from here on, nothing reads

    async def closed_by_server(self) -> bool:
        """Read what is left; True once the server has closed (EOF or reset)."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def queue_of(node: Node, eio_sid: str) -> Any:
    """python-engineio's send queue of one socket of ``node``."""
    return node.sio.eio.sockets[eio_sid].queue


def acl_log_entries(reply: list[Any]) -> list[dict[str, Any]]:
    """ACL LOG entries as {field: value}, str for text: redis-py 8 turns each entry into a
    map, older releases leave a flat list of field, value, field, value..."""
    entries = []
    for entry in reply:
        pairs = (
            entry.items() if isinstance(entry, dict) else zip(entry[::2], entry[1::2], strict=True)
        )
        entries.append({_text(k): _text(v) for k, v in pairs})
    return entries


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def plan_sizes(plan: Any) -> dict[str, int]:
    """The size of each map a NamespacePlan keeps (they must not grow without bound)."""
    names = ("_namespaces", "_routes", "_pattern_routes", "_room_refs", "_leases")
    return {name.lstrip("_"): len(getattr(plan, name)) for name in names}


class FaultyRedis(RedisServer):
    """A redis-server that a test may also freeze (SIGSTOP) and thaw (SIGCONT)."""

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open and nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen server."""
        os.kill(self.pid, signal.SIGCONT)
