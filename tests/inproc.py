"""A Socket.IO client that talks to a python-socketio ``AsyncServer`` in this process, with
no socket: it calls the ASGI app (``socketio.ASGIApp(sio)``) with hand-made HTTP
``scope``/``receive``/``send``, so the unit tier can run real servers and real clients.

Transport: Engine.IO v4 HTTP long-polling only (no websocket upgrade). A GET without a sid
opens the session; POSTs carry packets to the server; one background task keeps a GET
pending and routes what comes back (several packets per answer, separated by ``\\x1e``):
Engine.IO PING is answered PONG, Socket.IO CONNECT/CONNECT_ERROR settle ``connect``,
EVENT is recorded (and acked with what the handler registered with ``on`` returns; without
a handler there is no ack, as with a JS client without a listener), ACK settles ``call``,
DISCONNECT leaves the namespace. Leaving the last namespace, from either side, closes the
Engine.IO session, as the JavaScript client does. Text packets only: binary events and acks
(attachments) are not supported and fail the client.

Everything is bounded by ``timeout`` (the pending GET excepted: closing cancels it) and
every task the client starts is cancelled and awaited by ``aclose()``. The server's code
runs in the client's tasks: a POST returns once engineio has handled its packets (a CLOSE
synchronously, with the server's disconnect handlers; Socket.IO messages in engineio's own
background tasks). engineio answers a cancelled GET with HTTP 400 and ends the session
rather than letting the CancelledError through. Call ``await sio.shutdown()`` after a
test: engineio's client-monitoring task runs until then.

    async with InProcClient(socketio.ASGIApp(sio), auth={"token": "t"}) as client:
        await client.emit("hello", {"x": 1})
        assert await client.call("add", (1, 2)) == [3]
        event = await client.next_event()
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import anyio

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[..., Any]
T = TypeVar("T")

# Socket.IO packet types (the Engine.IO MESSAGE packet "4" carries them).
CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
MAX_PACKETS_PER_POST = 16  # engineio drops a bigger payload (only logging it)


class Event(NamedTuple):
    """An event the server sent: its name, its arguments and its namespace."""

    name: str
    args: list[Any]
    namespace: str


class ConnectRefused(Exception):
    """The server refused the connection (Engine.IO) or a namespace (CONNECT_ERROR)."""

    def __init__(self, namespace: str, data: Any) -> None:
        super().__init__(f"connection to namespace {namespace} refused: {data!r}")
        self.namespace = namespace
        self.data = data


@dataclass(frozen=True, slots=True)
class Packet:
    """One Socket.IO packet."""

    kind: int
    namespace: str = "/"
    data: Any = None
    ack_id: int | None = None

    def encode(self) -> str:
        """The packet as text, without the Engine.IO ``4`` in front."""
        text = str(self.kind)
        if self.namespace != "/":
            text += self.namespace + ","
        if self.ack_id is not None:
            text += str(self.ack_id)
        if self.data is not None:
            text += json.dumps(self.data, separators=(",", ":"))
        return text

    @classmethod
    def decode(cls, text: str) -> Packet:
        kind, rest = int(text[:1]), text[1:]
        if kind in (BINARY_EVENT, BINARY_ACK):
            raise NotImplementedError("binary packets are not supported by InProcClient")
        namespace = "/"
        if rest.startswith("/"):
            namespace, _, rest = rest.partition(",")
            namespace = namespace.partition("?")[0]
        digits = len(rest) - len(rest.lstrip("0123456789"))
        ack_id = int(rest[:digits]) if digits else None
        data = json.loads(rest[digits:]) if rest[digits:] else None
        return cls(kind, namespace, data, ack_id)


def as_args(data: Any) -> list[Any]:
    """python-socketio's rule for ``data``: None is no argument, a tuple several."""
    if data is None:
        return []
    return list(data) if isinstance(data, tuple) else [data]


class InProcClient:
    """One Socket.IO client connection to an ASGI app, over in-process long-polling."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        namespaces: Iterable[str] = ("/",),
        auth: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        path: str = "/socket.io/",
        timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.namespaces = list(namespaces)
        self.auth = auth
        self.timeout = timeout
        self.events: list[Event] = []
        """Every event received, in order (``next_event`` walks it)."""
        self.pings = 0
        """Engine.IO PINGs received (each answered with a PONG)."""
        self.polls: list[int] = []
        """How many packets each answered GET carried."""
        self.server_disconnects: list[str] = []
        """Namespaces the server disconnected, in order."""
        self.handler_errors: list[BaseException] = []
        """What the handlers registered with ``on`` raised."""
        self.handshake: dict[str, Any] = {}
        """The Engine.IO OPEN packet's data (sid, pingInterval, pingTimeout, maxPayload)."""
        self._path = path
        self._headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self._query = dict(query or {})
        self._eio_sid: str | None = None
        self._sids: dict[str, str] = {}
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._connecting: dict[str, asyncio.Future[str]] = {}
        self._acks: dict[int, asyncio.Future[list[Any]]] = {}
        self._next_ack = 0
        self._cursor = 0
        self._changed = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._error: BaseException | None = None

    # -- the API ------------------------------------------------------------------------

    async def __aenter__(self) -> InProcClient:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def connect(self) -> InProcClient:
        """Open the Engine.IO session and connect every namespace (ConnectRefused if the
        server refuses one; the client is closed then)."""
        assert self._eio_sid is None, "connect() was already called"
        status, body = await self._bounded(self._request("GET"))
        packets = body.split("\x1e")
        if status != 200 or not packets[0].startswith("0"):
            raise ConnectRefused("/", f"HTTP {status}: {body}")
        self.handshake = json.loads(packets[0][1:])
        self._eio_sid = self.handshake["sid"]
        self._poller = asyncio.get_running_loop().create_task(
            self._poll(packets[1:]), name=f"inproc poller {self._eio_sid}"
        )
        try:
            for namespace in self.namespaces:
                await self.connect_namespace(namespace, self.auth)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def connect_namespace(self, namespace: str, auth: Any = None) -> str:
        """Connect one more namespace on the session; its sid."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._connecting[namespace] = future
        try:
            await self._send(Packet(CONNECT, namespace, auth))
            return await self._bounded(future)
        finally:
            self._connecting.pop(namespace, None)

    @property
    def eio_sid(self) -> str:
        """The Engine.IO session id."""
        assert self._eio_sid is not None, "not connected"
        return self._eio_sid

    def sid(self, namespace: str = "/") -> str:
        """The Socket.IO sid of ``namespace`` (KeyError when not connected to it)."""
        return self._sids[namespace]

    def connected(self, namespace: str = "/") -> bool:
        """Whether ``namespace`` is connected (and the session open)."""
        return namespace in self._sids and not self._closed

    def on(self, event: str, handler: Handler, namespace: str = "/") -> None:
        """Call ``handler(*args)`` (sync or async) for each ``event``; when the server asked
        for an ack, its return value is the ack (None: no argument, a tuple: several)."""
        self._handlers[(namespace, event)] = handler

    async def emit(self, event: str, data: Any = None, namespace: str = "/") -> None:
        """Send an event (``data``: None is no argument, a tuple several arguments)."""
        await self._send(Packet(EVENT, namespace, [event, *as_args(data)]))

    async def call(
        self, event: str, data: Any = None, namespace: str = "/", timeout: float | None = None
    ) -> list[Any]:
        """Send an event asking for an ack; the ack's arguments."""
        ack_id, self._next_ack = self._next_ack, self._next_ack + 1
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        try:
            await self._send(Packet(EVENT, namespace, [event, *as_args(data)], ack_id))
            return await self._bounded(future, timeout)
        finally:
            self._acks.pop(ack_id, None)

    async def next_event(
        self, timeout: float | None = None, *, name: str | None = None, namespace: str | None = None
    ) -> Event:
        """The next event after the last one returned (the first whose name and namespace
        match, when given; events passed over stay in ``events``)."""

        def found() -> Event | None:
            for index in range(self._cursor, len(self.events)):
                event = self.events[index]
                if name in (None, event.name) and namespace in (None, event.namespace):
                    self._cursor = index + 1
                    return event
            return None

        return await self._until(found, timeout, f"event {name or ''}")

    async def wait_until(self, ready: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait (bounded) until ``ready()``, checked each time the client received something."""
        await self._until(lambda: True if ready() else None, timeout, "condition")

    async def wait_disconnected(self, namespace: str = "/", timeout: float | None = None) -> None:
        """Wait (bounded) until ``namespace`` is no longer connected."""
        await self._until(
            lambda: True if not self.connected(namespace) else None, timeout, "disconnection"
        )

    async def disconnect(self, namespace: str | None = None) -> None:
        """Leave ``namespace`` (every namespace when None); leaving the last one closes the
        Engine.IO session."""
        names = list(self._sids) if namespace is None else [namespace]
        left = [name for name in names if self._sids.pop(name, None) is not None]
        packets = ["4" + Packet(DISCONNECT, name).encode() for name in left]
        if self._closed or self._eio_sid is None:
            return
        if not self._sids:
            self._closed = True
            await self._post([*packets, "1"])  # "1": Engine.IO CLOSE
            await self._stop()
        elif packets:
            await self._post(packets)

    async def drop(self) -> None:
        """Close the Engine.IO session without leaving any namespace, as a lost transport
        does (the server sees ``client disconnect`` with no DISCONNECT packet)."""
        self._sids.clear()
        if not self._closed and self._eio_sid is not None:
            self._closed = True
            await self._post(["1"])
            await self._stop()

    async def aclose(self) -> None:
        """Disconnect (if still connected), then cancel and await every task. A session the
        server already ended (its answer not read yet) is not an error."""
        with anyio.CancelScope(shield=True):
            try:
                if self._error is None:
                    with contextlib.suppress(ConnectionError):
                        await self.disconnect()
            finally:
                await self._stop()

    # -- plumbing -----------------------------------------------------------------------

    async def _bounded(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        with anyio.fail_after(self.timeout if timeout is None else timeout):
            return await awaitable

    async def _until(self, ready: Callable[[], T | None], timeout: float | None, what: str) -> T:
        seconds = self.timeout if timeout is None else timeout
        try:
            with anyio.fail_after(seconds):
                while True:
                    if self._error is not None:
                        raise ConnectionError("the in-process client failed") from self._error
                    result = ready()
                    if result is not None:
                        return result
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"no {what} within {seconds:g} s") from None

    def _pulse(self) -> None:
        """Wake everything waiting in ``_until``."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _send(self, packet: Packet) -> None:
        if self._closed or self._eio_sid is None:
            raise ConnectionError("the client is not connected")
        await self._post(["4" + packet.encode()])

    async def _post(self, packets: list[str]) -> None:
        for start in range(0, len(packets), MAX_PACKETS_PER_POST):
            chunk = "\x1e".join(packets[start : start + MAX_PACKETS_PER_POST])
            status, body = await self._bounded(self._request("POST", chunk))
            if status != 200:
                raise ConnectionError(f"the server answered a POST with HTTP {status}: {body}")

    async def _request(self, method: str, body: str = "") -> tuple[int, str]:
        """One HTTP request through the ASGI app: (status, body)."""
        query = {"EIO": "4", "transport": "polling", **self._query}
        if self._eio_sid is not None:
            query["sid"] = self._eio_sid
        data = body.encode()
        headers = [(b"host", b"inproc"), *self._headers]
        if method == "POST":
            headers += [
                (b"content-type", b"text/plain;charset=UTF-8"),
                (b"content-length", str(len(data)).encode()),  # engineio reads this many bytes
            ]
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": self._path,
            "raw_path": self._path.encode(),
            "query_string": urllib.parse.urlencode(query).encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 0),
            "server": ("inproc", 80),
        }
        requests = [{"type": "http.request", "body": data, "more_body": False}]
        answer: dict[str, Any] = {"status": 0, "body": b""}

        async def receive() -> dict[str, Any]:
            return requests.pop() if requests else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return answer["status"], answer["body"].decode()

    async def _poll(self, first: list[str]) -> None:
        """Keep a GET pending and route what it brings, until the session ends."""
        try:
            packets = first
            while True:
                for text in packets:
                    await self._on_eio_packet(text)
                if self._closed:
                    return
                status, body = await self._request("GET")
                if self._closed:
                    return
                if status != 200:
                    self._session_ended()
                    return
                packets = body.split("\x1e") if body else []
                self.polls.append(len(packets))
        except Exception as exc:
            self._error = exc
            self._fail_pending(exc)
            self._pulse()

    async def _on_eio_packet(self, text: str) -> None:
        kind = text[:1]
        if kind == "2":
            self.pings += 1
            await self._post(["3" + text[1:]])
        elif kind == "4":
            await self._on_packet(Packet.decode(text[1:]))
        elif kind == "1":
            self._session_ended()
        elif kind != "6":  # NOOP
            raise ValueError(f"unexpected Engine.IO packet {text!r}")
        self._pulse()

    async def _on_packet(self, packet: Packet) -> None:
        connecting = self._connecting.get(packet.namespace)
        if packet.kind == CONNECT:
            self._sids[packet.namespace] = packet.data["sid"]
            if connecting is not None and not connecting.done():
                connecting.set_result(packet.data["sid"])
        elif packet.kind == CONNECT_ERROR:
            if connecting is not None and not connecting.done():
                connecting.set_exception(ConnectRefused(packet.namespace, packet.data))
        elif packet.kind == DISCONNECT:
            self.server_disconnects.append(packet.namespace)
            if self._sids.pop(packet.namespace, None) is not None and not self._sids:
                # Left without a namespace by the server: close the session, as the JS
                # client does (the poll loop ends with it).
                self._closed = True
                with contextlib.suppress(ConnectionError):
                    await self._post(["1"])
        elif packet.kind == EVENT:
            name, *args = packet.data
            self.events.append(Event(name, args, packet.namespace))
            handler = self._handlers.get((packet.namespace, name))
            if handler is not None:
                self._spawn(self._handle(handler, args, packet))
        elif packet.kind == ACK:
            future = self._acks.get(packet.ack_id) if packet.ack_id is not None else None
            if future is not None and not future.done():
                future.set_result(packet.data)

    async def _handle(self, handler: Handler, args: list[Any], packet: Packet) -> None:
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                result = await result
            if packet.ack_id is not None:
                await self._send(Packet(ACK, packet.namespace, as_args(result), packet.ack_id))
        except Exception as exc:
            self.handler_errors.append(exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _session_ended(self) -> None:
        """The server closed the Engine.IO session: every namespace is gone with it."""
        self._closed = True
        self.server_disconnects.extend(self._sids)
        self._sids.clear()
        self._fail_pending(ConnectionError("the server closed the session"))

    def _fail_pending(self, exc: BaseException) -> None:
        futures: list[asyncio.Future[Any]] = [*self._connecting.values(), *self._acks.values()]
        for future in futures:
            if not future.done():
                future.set_exception(exc)

    async def _stop(self) -> None:
        """Cancel the poller and every handler task, and wait for them (bounded)."""
        self._closed = True
        me = asyncio.current_task()
        tasks = [t for t in (self._poller, *self._tasks) if t is not None and t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=self.timeout)
            if stuck:
                raise RuntimeError(f"{len(stuck)} client tasks did not stop in {self.timeout} s")
        self._fail_pending(ConnectionError("the client is closed"))
        self._pulse()
