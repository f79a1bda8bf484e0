"""The in-process Socket.IO client (tests/inproc.py) against a plain python-socketio
``AsyncServer`` with its default manager: what it proves holds without any socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import socketio

from tests.inproc import ConnectRefused, Event, InProcClient, Packet

pytestmark = [pytest.mark.anyio, pytest.mark.unit]  # unit: no Redis, no subprocess


class Server:
    """A python-socketio server and what its handlers saw."""

    def __init__(self, **options: Any) -> None:
        self.sio = socketio.AsyncServer(async_mode="asgi", namespaces="*", **options)
        self.app = socketio.ASGIApp(self.sio)
        self.connects: list[tuple[str, str, Any]] = []
        self.environs: list[dict[str, Any]] = []
        self.received: list[tuple[str, str, Any]] = []
        self.disconnects: list[tuple[str, str, str]] = []
        self.changed = anyio.Event()

        @self.sio.on("connect", namespace="*")
        async def connect(namespace: str, sid: str, environ: dict[str, Any], auth: Any) -> None:
            if auth == {"token": "bad"}:
                raise socketio.exceptions.ConnectionRefusedError("bad token")
            self.connects.append((namespace, sid, auth))
            self.environs.append(environ)
            self._pulse()

        @self.sio.on("hello", namespace="*")
        async def hello(namespace: str, sid: str, data: Any) -> None:
            self.received.append((namespace, sid, data))
            self._pulse()

        @self.sio.on("add", namespace="*")
        async def add(namespace: str, sid: str, a: int, b: int) -> tuple[int, str]:
            return a + b, namespace

        @self.sio.on("disconnect", namespace="*")
        async def disconnect(namespace: str, sid: str, reason: str) -> None:
            self.disconnects.append((namespace, sid, reason))
            self._pulse()

    def _pulse(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def until(self, ready: Any) -> None:
        """Wait (bounded) until ``ready()`` holds, checked after each handler ran."""
        with anyio.fail_after(5):
            while not ready():
                await self.changed.wait()

    def client(self, **options: Any) -> InProcClient:
        return InProcClient(self.app, **options)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server()
    yield server
    await server.sio.shutdown()  # ends engineio's client-monitoring task


async def test_connect_gets_a_sid_and_the_server_sees_the_auth(server: Server):
    """Connecting opens a session, the connect handler gets the auth, and the client knows
    the same sid as the server."""
    async with server.client(auth={"token": "t"}) as client:
        sid = client.sid()
        assert client.connected() and client.eio_sid != sid
        assert server.connects == [("/", sid, {"token": "t"})]
        assert server.sio.manager.is_connected(sid, "/")


async def test_headers_and_query_reach_the_environ(server: Server):
    """The headers and query parameters given to the client are in the WSGI-style environ
    the connect handler gets."""
    client = server.client(headers={"X-Test": "yes"}, query={"room": "a b"})
    async with client:
        environ = server.environs[0]
        assert environ["HTTP_X_TEST"] == "yes" and "room=a+b" in environ["QUERY_STRING"]
        assert client.handshake["sid"] == client.eio_sid


async def test_a_refused_connection_raises_and_leaves_nothing(server: Server):
    """A connect handler raising ConnectionRefusedError fails connect() with its data, and
    the server keeps no session."""
    client = server.client(auth={"token": "bad"})
    with pytest.raises(ConnectRefused, match="bad token") as refused:
        await client.connect()
    assert refused.value.data == {"message": "bad token"}
    assert not client.connected() and server.connects == []
    assert all(s.closed for s in server.sio.eio.sockets.values())


async def test_a_client_emit_reaches_the_server_handler(server: Server):
    """An event emitted by the client runs the server's handler with its data."""
    async with server.client() as client:
        await client.emit("hello", {"x": [1, "two"]})
        await server.until(lambda: server.received)
        assert server.received == [("/", client.sid(), {"x": [1, "two"]})]


async def test_a_room_emit_reaches_only_its_members(server: Server):
    """A server emit to a room reaches the member, not the other client (which gets the
    next event, so nothing was just late)."""
    async with server.client() as member, server.client() as other:
        await server.sio.enter_room(member.sid(), "room")
        await server.sio.emit("news", {"n": 1}, room="room")
        await server.sio.emit("marker", to=other.sid())
        assert await member.next_event() == Event("news", [{"n": 1}], "/")
        assert await other.next_event() == Event("marker", [], "/")
        assert [e.name for e in other.events] == ["marker"]


async def test_several_packets_in_one_poll_are_all_delivered(server: Server):
    """Events queued together come back in one GET and are all delivered, in order."""
    async with server.client() as client:
        sid = client.sid()
        await asyncio.gather(*(server.sio.emit("n", i, to=sid) for i in range(5)))
        for i in range(5):
            assert await client.next_event() == Event("n", [i], "/")
        assert max(client.polls) == 5  # the CONNECT answer came alone


async def test_the_server_call_gets_the_client_ack(server: Server):
    """sio.call() to the client returns what the client's handler returned, sync or async,
    one value or several."""
    async with server.client() as client:

        async def double(x: int) -> int:
            return 2 * x

        client.on("double", double)
        client.on("pair", lambda a, b: (b, a))
        sid = client.sid()
        assert await server.sio.call("double", 21, to=sid, timeout=5) == 42
        assert await server.sio.call("pair", (1, 2), to=sid, timeout=5) == (2, 1)
        assert client.handler_errors == []


async def test_the_client_call_gets_the_server_ack(server: Server):
    """client.call() returns the arguments of the server handler's ack."""
    async with server.client() as client:
        assert await client.call("add", (2, 3)) == [5, "/"]


async def test_the_client_disconnect_reaches_the_server(server: Server):
    """disconnect() runs the server's disconnect handler (client reason) and closes the
    session; the client is no longer connected."""
    client = await server.client().connect()
    sid = client.sid()
    await client.disconnect()
    await server.until(lambda: server.disconnects)
    assert server.disconnects == [("/", sid, server.sio.reason.CLIENT_DISCONNECT)]
    assert not client.connected() and not server.sio.manager.is_connected(sid, "/")
    with pytest.raises(ConnectionError):
        await client.emit("hello", 1)
    await client.aclose()


async def test_the_server_disconnect_reaches_the_client(server: Server):
    """sio.disconnect(sid) disconnects the client's namespace; leaving its last one, the
    client closes the session."""
    async with server.client() as client:
        sid = client.sid()
        await server.sio.disconnect(sid)
        await client.wait_disconnected()
        assert client.server_disconnects == ["/"] and not client.connected()
        assert server.disconnects == [("/", sid, server.sio.reason.SERVER_DISCONNECT)]
        sockets = server.sio.eio.sockets
        await client.wait_until(
            lambda: client.eio_sid not in sockets or sockets[client.eio_sid].closed
        )


async def test_the_server_closing_the_session_ends_every_namespace(server: Server):
    """An Engine.IO close from the server (its CLOSE packet) disconnects every namespace
    and fails nothing but later sends."""
    async with server.client(namespaces=["/", "/chat"]) as client:
        await server.sio.eio.disconnect(client.eio_sid)
        await client.wait_disconnected("/")
        assert sorted(client.server_disconnects) == ["/", "/chat"]
        assert not client.connected("/chat")
        with pytest.raises(ConnectionError):
            await client.emit("hello", 1)


async def test_two_clients_on_one_server(server: Server):
    """Two clients get different sids, both receive a broadcast, and each one's emit is
    seen from its own sid."""
    async with server.client() as a, server.client() as b:
        assert a.sid() != b.sid() and a.eio_sid != b.eio_sid
        await server.sio.emit("all", "hi")
        assert await a.next_event() == await b.next_event() == Event("all", ["hi"], "/")
        await a.emit("hello", "from a")
        await b.emit("hello", "from b")
        await server.until(lambda: len(server.received) == 2)
        assert sorted(server.received) == sorted(
            [("/", a.sid(), "from a"), ("/", b.sid(), "from b")]
        )


async def test_namespaces_are_connected_and_left_separately(server: Server):
    """A client on two namespaces has a sid in each; events keep their namespace; leaving
    one keeps the other."""
    async with server.client(namespaces=["/", "/chat"]) as client:
        assert client.sid("/") != client.sid("/chat")
        assert await client.call("add", (1, 1), namespace="/chat") == [2, "/chat"]
        await server.sio.emit("news", 1, namespace="/chat")
        assert await client.next_event(namespace="/chat") == Event("news", [1], "/chat")
        await client.disconnect("/chat")
        await server.until(lambda: server.disconnects)
        assert server.disconnects[0][0] == "/chat" and client.connected("/")
        assert await client.call("add", (1, 2)) == [3, "/"]


async def test_pings_are_answered_and_the_session_lives_on():
    """With a short ping interval the server pings repeatedly; each PONG keeps the session,
    which still carries events afterwards."""
    server = Server(ping_interval=0.02, ping_timeout=5)
    try:
        async with server.client() as client:
            await client.wait_until(lambda: client.pings >= 3)
            assert await client.call("add", (1, 2)) == [3, "/"]
    finally:
        await server.sio.shutdown()


def test_packets_encode_and_decode():
    """The codec reads and writes namespaces, ack ids and data as python-socketio does."""
    packet = Packet(3, "/chat", [1, "x"], 12)
    assert packet.encode() == '3/chat,12[1,"x"]'
    assert Packet.decode(packet.encode()) == packet
    assert Packet.decode("0") == Packet(0)
    assert Packet.decode('2["a",1]') == Packet(2, "/", ["a", 1])
    assert Packet.decode("1/chat,") == Packet(1, "/chat")
    with pytest.raises(NotImplementedError):
        Packet.decode('51-["a",{"_placeholder":true,"num":0}]')
