"""Shared helpers of the engine and facade unit tests: a cluster of real python-socketio
servers (``socketio.AsyncServer`` + ``ClusterAPI``) on one ``MemoryHub``, with real
in-process clients (``tests/inproc.py``), and no Redis, no socket, no subprocess.

Waiting is bounded and event-driven: ``settle()`` returns once every server has handled
every message the hub gave it and every task its engine spawned has finished (the
transport's listener is wrapped to count what it is handling); ``flush(client)`` then
sends the client a marker from its own server and waits for it, so an event that was not
received by then is not merely late; ``until(ready)`` re-checks ``ready()`` after each
publish, each message handled, each change of a server's sockets or rooms and each client
ack (the manager is ``ObservedAPI``, a ``ClusterAPI`` that only reports those changes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import anyio
import pytest
import socketio

from socketio_redis_async._api import ClusterAPI
from socketio_redis_async._cluster.engine import ClusterEngine
from socketio_redis_async._options import Options, build_options
from socketio_redis_async._protocol import codec, sharded, streams
from socketio_redis_async._protocol.channels import NamespaceChannels
from socketio_redis_async._protocol.streams_wire import StreamsWire
from socketio_redis_async._protocol.wire import ClassicWire, ShardedWire, WireFormat
from socketio_redis_async._transport.base import TransportHooks
from socketio_redis_async._transport.memory import MemoryHub, MemoryTransport, memory_transport
from tests.inproc import Event, InProcClient

KEY = "k"
SHARED_WIRES = ("classic", "classic-pattern", "sharded", "streams")
"""The wire formats whose behaviour is the same: parametrize shared tests over these."""
ALL_WIRES = (*SHARED_WIRES, "sharded-static", "sharded-private")
SILENT_UID = "00000000deadbeef"
"""The uid of a silent server: 16 hex characters, a server uid for both protocols."""


def make_wire(name: str) -> WireFormat:
    """A fresh wire format by test name."""
    wires: dict[str, WireFormat] = {
        "classic": ClassicWire(True),
        "classic-pattern": ClassicWire(False),
        "sharded": ShardedWire("dynamic"),
        "sharded-static": ShardedWire("static"),
        "sharded-private": ShardedWire("dynamic-private"),
        "streams": StreamsWire(stream_name="s", stream_count=2),
    }
    return wires[name]


def make_options(**overrides: Any) -> Options:
    """The adapter's options with the brief's defaults (``requests_timeout`` 1 s)."""
    values: dict[str, Any] = {
        "url": None,
        "host": None,
        "port": None,
        "key": KEY,
        "requests_timeout": 1.0,
        "ack_timeout": 5.0,
        "with_channel_multiplexing": True,
        "max_message_size": 8 * 1024 * 1024,
        "max_answer_size": 30 * 1024 * 1024,
        "health_check_interval": 2.0,
        "max_socket_backlog": 10_000,
        "publish_timeout": 5.0,
        "share_sensitive_headers": False,
        "redact_headers": None,
        "redact_query": None,
        "redis_options": None,
    }
    values.update(overrides)
    return build_options(**values)


class ObservedAPI(ClusterAPI):
    """``ClusterAPI`` that calls ``changed()`` after each change of its local sockets and
    rooms (python-socketio runs some of them in engineio's tasks, out of ``settle``'s
    sight), so a test can wait for one; the adapter's own code runs unchanged."""

    def __init__(self, *, changed: Callable[[], None], **options: Any) -> None:
        super().__init__(**options)
        self.changed = changed

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.changed()

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        self.changed()

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        super().basic_disconnect(sid, namespace, **kwargs)
        self.changed()

    async def trigger_callback(self, sid: str, id: int, data: Any) -> None:
        await super().trigger_callback(sid, id, data)
        self.changed()


class RecordingHub(MemoryHub):
    """A ``MemoryHub`` that records every PUBLISH, ``(channel, payload)`` in order, and
    calls ``on_publish()`` after each."""

    def __init__(self, on_publish: Callable[[], None]) -> None:
        super().__init__()
        self.published: list[tuple[str, bytes]] = []
        self._on_publish = on_publish

    def publish(self, channel: str, payload: bytes) -> int:
        self.published.append((channel, payload))
        receivers = super().publish(channel, payload)
        self._on_publish()
        return receivers

    def append(self, stream: str, fields: tuple[bytes, ...], max_len: int) -> bytes:
        """XADD, recorded as ``(stream, the message as its pub/sub payload)``."""
        msg = streams.decode_entry(fields)
        self.published.append(
            (stream, streams.encode_message(msg.uid, msg.nsp, msg.kind, msg.data))
        )
        entry_id = super().append(stream, fields, max_len)
        self._on_publish()
        return entry_id


@dataclasses.dataclass
class UnitServer:
    """One python-socketio server of the cluster and its adapter."""

    name: str
    wire: str
    sio: socketio.AsyncServer
    app: Any
    mgr: ClusterAPI
    handling: int = 0
    """Messages its listener is handling right now."""

    @property
    def engine(self) -> ClusterEngine:
        return self.mgr._engine

    @property
    def transport(self) -> MemoryTransport:
        return cast(MemoryTransport, self.engine.transport)

    @property
    def idle(self) -> bool:
        return self.transport.queue.empty() and not self.handling

    def channels(self, nsp: str = "/") -> NamespaceChannels:
        return self.engine.plan.channels_of(nsp)

    def sids(self, nsp: str = "/") -> set[str]:
        """Sids of the sockets connected to this server."""
        return set(self.mgr.rooms.get(nsp, {}).get(None, {}))

    def rooms(self, sid: str, nsp: str = "/") -> set[Any]:
        """The rooms of a local socket (its sid room included)."""
        return set(self.mgr.get_rooms(sid, nsp))

    def subscribed(self, channel: str) -> bool:
        return channel in self.transport.wanted

    @property
    def published(self) -> int:
        return self.mgr.stats["published"]


class UnitCluster:
    """Servers and clients on one in-memory "Redis"; everything is closed by ``aclose``."""

    def __init__(self) -> None:
        self._changed = anyio.Event()
        self.hub = RecordingHub(self._pulse)
        self.servers: list[UnitServer] = []
        self.clients: dict[InProcClient, UnitServer] = {}
        self.extra: list[MemoryTransport] = []
        self._names = itertools.count()
        self._markers = itertools.count()

    # -- building -----------------------------------------------------------------------

    async def add(
        self,
        wire: str,
        *,
        namespaces: Any = "*",
        start: bool = True,
        on_connection_change: Callable[[bool], Any] | None = None,
        **options: Any,
    ) -> UnitServer:
        """Add a server speaking ``wire`` (started unless ``start=False``: then its first
        connection starts it); ``options`` override the adapter's."""
        opts = make_options(**options)
        transport = memory_transport(self.hub, max_message_size=opts.max_message_size)
        mgr = ObservedAPI(
            changed=self._pulse,
            options=opts,
            wire=make_wire(wire),
            transport=transport,
            on_connection_change=on_connection_change,
        )
        sio = socketio.AsyncServer(async_mode="asgi", client_manager=mgr, namespaces=namespaces)
        server = UnitServer(f"s{next(self._names)}", wire, sio, socketio.ASGIApp(sio), mgr)
        self._watch(server)
        self.servers.append(server)
        if start:
            await mgr.start()
        return server

    async def start(self, count: int, wire: str, **options: Any) -> list[UnitServer]:
        """Start ``count`` servers speaking ``wire``."""
        return [await self.add(wire, **options) for _ in range(count)]

    async def connect(
        self,
        server: UnitServer,
        *,
        namespaces: Iterable[str] = ("/",),
        auth: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        on: dict[str, Any] | None = None,
    ) -> InProcClient:
        """Connect a real client to ``server``; ``on`` maps events to ack handlers
        (registered on every namespace before connecting)."""
        namespaces = list(namespaces)
        client = InProcClient(
            server.app, namespaces=namespaces, auth=auth, headers=headers, query=query
        )
        for event, handler in (on or {}).items():
            for nsp in namespaces:
                client.on(event, handler, nsp)
        await client.connect()
        self.clients[client] = server
        return client

    def silent(self, wire: str, nsp: str = "/") -> MemoryTransport:
        """A server that subscribes ``nsp``'s request channel and its own response
        channel (so NUMSUB and PUBSUB CHANNELS count it) but never answers anything."""

        async def ignore(channel: bytes, payload: bytes, pattern: bytes | None) -> None:
            return None

        hooks = TransportHooks(on_message=ignore, on_change=lambda up: None, uid=lambda: SILENT_UID)
        transport = MemoryTransport(self.hub, hooks)
        channels = make_wire(wire).channels(KEY, nsp)
        transport.want(channels.request)
        transport.want(channels.response_for(SILENT_UID))
        transport.listen()
        self.extra.append(transport)
        return transport

    def _watch(self, server: UnitServer) -> None:
        """Count the messages the server's listener is handling, and pulse when done."""
        transport = server.transport
        handle = transport._hooks.on_message

        async def on_message(channel: bytes, payload: bytes, pattern: bytes | None) -> None:
            server.handling += 1
            try:
                await handle(channel, payload, pattern)
            finally:
                server.handling -= 1
                self._pulse()

        transport._hooks = dataclasses.replace(transport._hooks, on_message=on_message)
        read_entries = transport._read_entries

        async def read_stream(stream: str) -> None:  # a stream's new entries, or none
            server.handling += 1
            try:
                await read_entries(stream)
            finally:
                server.handling -= 1
                self._pulse()

        transport._read_entries = read_stream  # type: ignore[method-assign]

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- waiting ------------------------------------------------------------------------

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until every server handled everything the hub gave it and the
        tasks its engine spawned (handlers, disconnects, ack callbacks) are done."""
        with anyio.fail_after(timeout):
            while True:
                tasks = [t for s in self.servers for t in s.engine._tasks if not t.done()]
                if tasks:
                    await asyncio.wait(tasks)
                    continue
                if all(s.idle for s in self.servers):
                    return
                await self._changed.wait()

    async def flush(self, *clients: InProcClient) -> None:
        """``settle()``, then make sure each client has read what its server sent it so
        far: its server sends it a marker (locally) and the client waits for it."""
        await self.settle()
        for client in clients:
            server = self.clients[client]
            for nsp in list(client._sids):
                marker = next(self._markers)
                await server.sio.emit("__flush__", marker, to=client.sid(nsp), namespace=nsp)
                await client.wait_until(partial(_has, client, Event("__flush__", [marker], nsp)))

    async def until(self, ready: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait (bounded) until ``ready()``, checked after each publish, each message a
        server handled, each change of a server's sockets or rooms and each client ack."""
        with anyio.fail_after(timeout):
            while not ready():
                await self._changed.wait()

    # -- reading the bus ----------------------------------------------------------------

    def mark(self) -> int:
        """A position in the hub's record of publishes, for :meth:`types_since`."""
        return len(self.hub.published)

    def types_since(self, mark: int, wire: str, nsp: str = "/") -> list[int]:
        """The message types published on ``nsp``'s request channel since ``mark``:
        classic request types (0-7), or sharded ClusterAdapter message types (3-12)."""
        wire_format = make_wire(wire)
        targets = {wire_format.channels(KEY, nsp).request}
        if isinstance(wire_format, StreamsWire):
            targets.add(wire_format.stream_of(nsp))
        found = []
        for channel, payload in self.hub.published[mark:]:
            if channel not in targets:
                continue
            if is_sharded(wire):
                found.append(sharded.decode(payload).kind)
            else:
                found.append(codec.decode_request(payload)["type"])
        return found

    def channels_since(self, mark: int) -> list[str]:
        """The channels published on since ``mark``."""
        return [channel for channel, _ in self.hub.published[mark:]]

    # -- closing ------------------------------------------------------------------------

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for client in self.clients:
                await client.aclose()
            for server in self.servers:
                await server.mgr.aclose()
                await server.sio.shutdown()
            for transport in self.extra:
                await transport.aclose()


@asynccontextmanager
async def open_cluster() -> AsyncIterator[UnitCluster]:
    """A ``UnitCluster`` closed on exit (each test module's ``cluster`` fixture)."""
    cluster = UnitCluster()
    try:
        yield cluster
    finally:
        await cluster.aclose()


def _has(client: InProcClient, event: Event) -> bool:
    return event in client.events


def received(client: InProcClient, event: str, nsp: str = "/") -> list[list[Any]]:
    """The arguments of every ``event`` the client received in ``nsp``, in order."""
    return [e.args for e in client.events if e.name == event and e.namespace == nsp]


@pytest.fixture
async def cluster() -> AsyncIterator[UnitCluster]:
    """Servers on one in-memory bus (a test file may define its own ``cluster``)."""
    async with open_cluster() as cluster:
        yield cluster


def is_sharded(wire: str) -> bool:
    """Whether a wire id (``SHARED_WIRES``...) names a ClusterAdapter protocol (sharded or
    streams): no SOCKETS/ALL_ROOMS requests, no single-socket forms."""
    return wire.startswith(("sharded", "streams"))
