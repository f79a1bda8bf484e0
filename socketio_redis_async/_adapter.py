"""``AsyncRedisAdapter``: python-socketio's client manager on Node's Redis adapter protocol."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import secrets
import string
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import anyio
import socketio
from engineio import packet as eio_packet
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from . import _cluster as cluster
from . import _codec as codec
from ._acks import AckRequests
from ._channels import NamespaceChannels, Room
from ._errors import (
    AdapterClosedError,
    MalformedMessage,
    RedisAdapterError,
    RequestTimeoutError,
)
from ._handlers import CUSTOM_REQUEST_EVENT, HANDLERS, apply_disconnect, apply_rooms, wire_rooms
from ._operator import (
    BroadcastOperator,
    RoomArg,
    check_event,
    check_namespace,
    check_room,
    rooms_of,
)
from ._options import (
    DEFAULT_KEY,
    Options,
    check_bool,
    check_key,
    check_seconds,
    check_size,
    redact_url,
    resolve_url,
)
from ._publisher import Publisher
from ._requests import PendingRequests
from ._sockets import RemoteSocket, build_handshake
from ._subscriber import Subscriber

_BROADCAST, _REQUEST, _RESPONSE = 0, 1, 2
_ALNUM = string.ascii_letters + string.digits
_EVENT = 2  # socket.io EVENT packet type
_MESSAGE = eio_packet.MESSAGE

Recipients = list[tuple[str, str]]


_TEXT_PACKET = socketio.packet.Packet


def encode_event_text(json_module: Any, nsp: str, data: list[Any]) -> str:
    """What ``socketio.packet.Packet(EVENT, data, nsp).encode()`` returns for data without
    bytes, without building the object (python-socketio's text packet format)."""
    prefix = "2" if nsp == "/" else f"2{nsp},"
    text: str = json_module.dumps(data, separators=(",", ":"))
    return prefix + text


def _new_uid() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(8))


class AsyncRedisAdapter(socketio.AsyncManager):  # type: ignore[misc]
    """Client manager for ``socketio.AsyncServer`` that shares rooms and events over Redis.

    It speaks the wire protocol of Node's ``@socket.io/redis-adapter`` 8.x (classic mode)
    and ``@socket.io/redis-emitter`` 5.x, so Python and Node.js servers can share a cluster.

    :param url: Redis URL: ``redis://``, ``rediss://`` (TLS) or ``unix://``, with optional
        ``user:password@``. Default ``redis://localhost:6379/0``.
    :param host: Redis host; with ``port``, an alternative to ``url``.
    :param port: Redis port.
    :param key: channel prefix shared by the cluster, default ``socket.io``.
    :param pub_client: a ``redis.asyncio.Redis`` to publish with; never closed by the adapter.
    :param sub_client: a ``redis.asyncio.Redis`` whose settings the pub/sub connection uses;
        never closed by the adapter.
    :param requests_timeout: seconds to wait for other servers' answers (default 5).
    :param with_channel_multiplexing: subscribe to one channel per room that has local
        members (default True), so a server never receives traffic for rooms it does not
        hold; False PSUBSCRIBEs ``key#nsp#*`` like a classic Node server.
    :param ack_timeout: seconds an ack from a client on another server is waited for
        (default 60, python-socketio's ``call()`` default); the entry is dropped afterwards.
    :param max_message_size: largest message published or accepted, in bytes (default 8 MiB).
    :param health_check_interval: seconds of silence on the pub/sub connection before a PING
        (default 15); no answer for another interval means reconnect.
    :param share_sensitive_headers: include ``Cookie``/``Authorization`` headers in the
        handshakes that ``fetch_sockets`` answers ship over Redis (default False).
    :param logger: a ``logging.Logger``; default ``logging.getLogger("socketio_redis_async")``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        key: str = DEFAULT_KEY,
        pub_client: Redis | None = None,
        sub_client: Redis | None = None,
        requests_timeout: float = 5.0,
        with_channel_multiplexing: bool = True,
        ack_timeout: float = 60.0,
        max_message_size: int = 8 * 1024 * 1024,
        health_check_interval: float = 15.0,
        share_sensitive_headers: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__()
        for name, client in (("pub_client", pub_client), ("sub_client", sub_client)):
            if client is not None and not isinstance(client, Redis):
                raise TypeError(
                    f"{name} must be a redis.asyncio.Redis instance, not {type(client).__name__}"
                )
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError("logger must be a logging.Logger")
        self._options = Options(
            url=resolve_url(url, host, port),
            key=check_key(key),
            requests_timeout=check_seconds("requests_timeout", requests_timeout),
            ack_timeout=check_seconds("ack_timeout", ack_timeout),
            with_channel_multiplexing=check_bool(
                "with_channel_multiplexing", with_channel_multiplexing
            ),
            max_message_size=check_size("max_message_size", max_message_size),
            health_check_interval=check_seconds("health_check_interval", health_check_interval),
        )
        self._share_sensitive_headers = check_bool(
            "share_sensitive_headers", share_sensitive_headers
        )
        self.logger = logger or logging.getLogger("socketio_redis_async")
        self._where = redact_url(self._options.url)
        self._owns_pub = pub_client is None
        self._owns_sub = sub_client is None
        self._pub_client = pub_client
        self._sub_client = sub_client
        self._pid = os.getpid()
        self._uid = _new_uid()
        self._namespaces: dict[str, NamespaceChannels] = {}
        self._routes: dict[bytes, tuple[int, NamespaceChannels]] = {}
        self._pattern_routes: dict[bytes, NamespaceChannels] = {}
        self._room_refs: dict[str, int] = {}
        self._subscriber = Subscriber(
            self._open_sub_connection,
            self._on_message,
            logger=self.logger,
            where=self._where,
            health_check_interval=self._options.health_check_interval,
        )
        self._publisher = Publisher(
            self._open_pub_connection,
            max_message_size=self._options.max_message_size,
            where=self._where,
        )
        self._acks = AckRequests(self._spawn)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending = PendingRequests()
        self._server_handlers: dict[tuple[str, str], Callable[..., Any]] = {}
        self._socket_info: dict[tuple[str, str], list[Any]] = {}
        self.custom_hook: Callable[[Any], Any] | None = None
        """Answers ``custom_request(data)`` on this server; sync or async, returns the answer."""
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._dropped = 0
        self._echo = ("", b"")
        self._last_drop_log = -1e9

    # -- properties -----------------------------------------------------------------

    @property
    def uid(self) -> str:
        """This server's id on the wire; a new one is made in a forked child process."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._uid = _new_uid()
        return self._uid

    @property
    def host_id(self) -> str:
        """The same as :attr:`uid`; python-socketio's admin UI reads it."""
        return self.uid

    @property
    def prefix(self) -> str:
        """The channel prefix (the ``key`` option)."""
        return self._options.key

    @property
    def requests_timeout(self) -> float:
        """Seconds to wait for answers from other servers."""
        return self._options.requests_timeout

    @property
    def pub_client(self) -> Redis:
        """The Redis client used to publish."""
        if self._pub_client is None:
            self._pub_client = Redis.from_url(self._options.url)
        return self._pub_client

    @property
    def sub_client(self) -> Redis:
        """The Redis client whose settings the pub/sub connection uses."""
        if self._sub_client is None:
            self._sub_client = Redis.from_url(self._options.url)
        return self._sub_client

    @property
    def stats(self) -> dict[str, int]:
        """Counters for monitoring: dropped messages, reconnects, subscriptions, pending acks."""
        return {
            "dropped_messages": self._dropped,
            "handler_errors": self._subscriber.handler_errors,
            "reconnects": self._subscriber.reconnects,
            "subscribed_channels": len(self._subscriber.channels),
            "pending_acks": len(self._acks),
            "pending_requests": len(self._pending),
            "published": self._publisher.published,
            "publish_batches": self._publisher.batches,
        }

    # -- lifecycle ------------------------------------------------------------------

    def initialize(self) -> None:
        """Start the listener (python-socketio calls this on the first connection)."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        if self._task is not None and not self._task.done():
            return
        for nsp in self._server_namespaces():
            self._ensure_namespace(nsp)
        self._task = asyncio.get_running_loop().create_task(
            self._subscriber.run(), name=f"socketio-redis-async listener {self.uid}"
        )

    async def start(self) -> None:
        """Start listening and return once Redis has confirmed the subscriptions.

        Call it from the ASGI lifespan / aiohttp ``on_startup`` so that the server
        receives cross-server traffic before its first client connects.
        Raises :class:`RedisAdapterError` if Redis does not answer within
        ``requests_timeout`` (the listener keeps retrying in the background).
        """
        if self.server is None:
            raise RuntimeError(
                "pass the adapter to socketio.AsyncServer(client_manager=...) before start()"
            )
        self.server.manager_initialized = True
        self.initialize()
        if not await self._subscriber.wait(
            self._subscriber.channels, self.requests_timeout, self._subscriber.patterns
        ):
            raise RedisAdapterError(
                f"Redis at {self._where} did not confirm the subscriptions within "
                f"{self.requests_timeout:g} s; is it running? (the adapter keeps retrying)"
            )

    async def aclose(self) -> None:
        """Stop listening, drop pending acks and close the Redis clients this adapter owns."""
        if self._closed:
            return
        self._closed = True
        self._subscriber.stopping = True
        with anyio.CancelScope(shield=True):
            tasks = [*self._tasks, *([self._task] if self._task is not None else [])]
            for task in tasks:
                task.cancel()
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=10)
                if stuck:
                    self.logger.error("%d adapter tasks did not stop within 10 s", len(stuck))
            await self._publisher.aclose()
            self._acks.clear()
            self._pending.clear()
            for owned, client in (
                (self._owns_pub, self._pub_client),
                (self._owns_sub, self._sub_client),
            ):
                if owned and client is not None:
                    await client.aclose()

    async def __aenter__(self) -> AsyncRedisAdapter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- broadcast operators (Node's io.to().except()) -------------------------------

    def of(self, namespace: str) -> BroadcastOperator:
        """Start a broadcast in ``namespace``."""
        return BroadcastOperator(nsp=check_namespace(namespace), _target=self)

    def to(self, *rooms: RoomArg) -> BroadcastOperator:
        """Start a broadcast to these rooms of namespace ``/``."""
        return self.of("/").to(*rooms)

    def in_(self, *rooms: RoomArg) -> BroadcastOperator:
        """Alias of :meth:`to`."""
        return self.to(*rooms)

    def except_(self, *rooms: RoomArg) -> BroadcastOperator:
        """Start a broadcast to namespace ``/`` that skips these rooms."""
        return self.of("/").except_(*rooms)

    async def _broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
        local: bool,
    ) -> None:
        payload = None
        if not local and not self._only_local_sid(nsp, rooms):
            payload = codec.encode_broadcast(self.uid, nsp, data, rooms, except_rooms, flags)
            self._publisher.check_size(payload)
        await self._deliver(nsp, data, self._recipients(nsp, rooms, except_rooms))
        if payload is not None:
            await self._publish(self._ensure_namespace(nsp).for_rooms(rooms), payload)

    # -- python-socketio manager API -------------------------------------------------

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Callable[..., Any] | None = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        """Emit to local sockets, then publish for the other servers.

        ``to``/``room`` may be a room, a socket id or a list of them; ``skip_sid`` a socket
        id, a room or a list of them (every member of a skipped room is skipped).
        ``ignore_queue=True`` delivers to local sockets only.
        """
        rooms = list(rooms_of(to if to is not None else room))
        except_rooms = list(rooms_of(skip_sid))
        if isinstance(data, tuple):
            args = list(data)
        elif data is None:
            args = []
        else:
            args = [data]
        local = bool(kwargs.get("ignore_queue"))
        if callback is None:
            await self._broadcast(namespace, [event, *args], rooms, except_rooms, {}, local)
            return
        await self._emit_with_callback(
            namespace, [event, *args], rooms, except_rooms, callback, local
        )

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """Register a new socket; return once its own room's channel is subscribed."""
        channels = self._ensure_namespace(namespace)
        sid: str | None = await super().pre_connect(eio_sid, namespace)
        if sid is not None:
            self._socket_info[(namespace, sid)] = [time.time(), None]
        if sid is not None and self._options.with_channel_multiplexing:
            await self._confirm_subscribed([channels.broadcast, channels.room(sid)])
        return sid

    async def enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        """Add a socket to a room; for a socket on another server, ask that server."""
        room = check_room(room)
        if eio_sid is not None or self._is_local(sid, namespace):
            self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
            if self._options.with_channel_multiplexing:
                await self._confirm_subscribed([self._ensure_namespace(namespace).room(room)])
            return
        await self._remote_rooms(codec.REMOTE_JOIN, namespace, [sid], [room])

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Remove a socket from a room, on whichever server holds it."""
        if self._is_local(sid, namespace):
            self.basic_leave_room(sid, namespace, room)
            return
        await self._remote_rooms(codec.REMOTE_LEAVE, namespace, [sid], [check_room(room)])

    async def close_room(self, room: Any, namespace: str) -> None:
        """Make every socket of the cluster leave ``room``."""
        room = check_room(room)
        self.basic_close_room(room, namespace)
        await self._remote_rooms(codec.REMOTE_LEAVE, namespace, [room], [room])

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        """True for a local socket; for a remote one, ask its server and return False."""
        if self._is_local(sid, namespace):
            return bool(self.is_connected(sid, namespace))
        await self._remote_disconnect(namespace, [sid], close=False)
        return False

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a local socket, or ask the server that holds it to disconnect it."""
        if not kwargs.get("ignore_queue") and not self._is_local(sid, namespace):
            await self._remote_disconnect(namespace, [sid], close=False)
            return
        self.basic_disconnect(sid, namespace, **kwargs)

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a local socket, its rooms and its ``data``."""
        super().basic_disconnect(sid, namespace, **kwargs)
        self._socket_info.pop((namespace, sid), None)

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        """Add to a room locally; a room's first member subscribes its channel."""
        if room is not None:
            check_room(room)
        ns = self.rooms.get(namespace)
        created = room is not None and (ns is None or room not in ns)
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if created and self._options.with_channel_multiplexing:
            channel = self._ensure_namespace(namespace).room(room)
            refs = self._room_refs.get(channel, 0)
            self._room_refs[channel] = refs + 1
            if not refs:
                self._routes[channel.encode()] = (_BROADCAST, self._namespaces[namespace])
                self._subscriber.want(channel)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Leave a room locally; a room's last member unsubscribes its channel."""
        ns = self.rooms.get(namespace)
        existed = ns is not None and room in ns
        super().basic_leave_room(sid, namespace, room)
        ns = self.rooms.get(namespace)
        if (
            existed
            and room is not None
            and (ns is None or room not in ns)
            and self._options.with_channel_multiplexing
        ):
            channel = self._namespaces[namespace].room(room)
            refs = self._room_refs.get(channel, 1) - 1
            if refs:
                self._room_refs[channel] = refs
            else:
                self._room_refs.pop(channel, None)
                self._routes.pop(channel.encode(), None)
                self._subscriber.unwant(channel)

    # -- cluster-wide queries and operations (the original adapter's and Node 4.x's API) ----

    async def server_count(self, *, namespace: str = "/") -> int:
        """How many servers serve ``namespace`` (``PUBSUB NUMSUB`` on its request channel)."""
        channel = self._ensure_namespace(namespace).request
        counts = await self.pub_client.pubsub_numsub(channel)
        return int(counts[0][1]) if counts else 0

    async def all_rooms(self, *, namespace: str = "/") -> set[Room]:
        """Every room of every server, socket-id rooms included (Node's ``allRooms()``)."""
        rooms = {room for room in self.rooms.get(namespace, {}) if room is not None}
        for remote in await cluster.gather(
            self,
            namespace,
            {"type": codec.ALL_ROOMS},
            lambda r: wire_rooms(r["rooms"]),
            what="allRooms",
        ):
            rooms.update(remote)
        return rooms

    async def clients(self, rooms: RoomArg | None = None, *, namespace: str = "/") -> list[str]:
        """Sids of the sockets in any of ``rooms`` (all sockets if None), cluster-wide."""
        selector = list(rooms_of(rooms))
        sids = [sid for sid, _ in self._recipients(namespace, selector, ())]
        for remote in await cluster.gather(
            self,
            namespace,
            {"type": codec.SOCKETS, "rooms": selector},
            lambda r: list(r["sockets"]),
            what="clients",
        ):
            sids.extend(sid for sid in remote if isinstance(sid, str))
        return sids

    async def client_rooms(self, sid: str, *, namespace: str = "/") -> set[Room] | None:
        """The rooms of socket ``sid`` wherever it lives; None if no server holds it."""
        if self._is_local(sid, namespace):
            return set(self.get_rooms(sid, namespace))
        found = await self.fetch_sockets(sid, namespace=namespace)
        return set(found[0].rooms) if found else None

    async def fetch_sockets(
        self,
        rooms: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
    ) -> list[RemoteSocket]:
        """The sockets in ``rooms`` (all if None) and in no ``except_rooms``, cluster-wide.

        Each has ``id``, ``handshake``, ``rooms`` and ``data``, and ``emit``, ``join``,
        ``leave`` and ``disconnect`` methods that work wherever it lives.
        """
        selector, excluded = list(rooms_of(rooms)), list(rooms_of(except_rooms))
        found = [
            self._socket_details(namespace, sid)
            for sid, _ in self._recipients(namespace, selector, excluded)
        ]
        if not self._only_local_sid(namespace, selector):
            request = {"type": codec.REMOTE_FETCH, "opts": {"rooms": selector, "except": excluded}}
            for remote in await cluster.gather(
                self, namespace, request, lambda r: list(r["sockets"]), what="fetchSockets"
            ):
                found.extend(
                    s for s in remote if isinstance(s, dict) and isinstance(s.get("id"), str)
                )
        return [
            RemoteSocket(
                self,
                namespace,
                s["id"],
                _as_dict(s.get("handshake")),
                frozenset(r for r in s.get("rooms") or () if isinstance(r, (str, int))),
                s.get("data"),
            )
            for s in found
        ]

    async def sockets_join(
        self,
        rooms: RoomArg,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
    ) -> None:
        """Make the matching sockets of the cluster join ``rooms`` (Node's ``socketsJoin``)."""
        await self._sockets_rooms(codec.REMOTE_JOIN, rooms, to, except_rooms, namespace)

    async def sockets_leave(
        self,
        rooms: RoomArg,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
    ) -> None:
        """Make the matching sockets of the cluster leave ``rooms`` (Node's ``socketsLeave``)."""
        await self._sockets_rooms(codec.REMOTE_LEAVE, rooms, to, except_rooms, namespace)

    async def disconnect_sockets(
        self,
        close: bool = False,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
    ) -> None:
        """Disconnect the matching sockets of the cluster; ``close`` closes their connection."""
        selector, excluded = list(rooms_of(to)), list(rooms_of(except_rooms))
        targets = self._recipients(namespace, selector, excluded)
        if not self._only_local_sid(namespace, selector):
            await self._remote_disconnect(namespace, selector, close, excluded)
        await apply_disconnect(self, namespace, targets, close)

    async def remote_join(self, sid: str, room: Room, *, namespace: str = "/") -> None:
        """Make socket ``sid`` join ``room``; raise RequestTimeoutError if no server holds it."""
        await self._remote_single(
            codec.REMOTE_JOIN, "remoteJoin", sid, namespace, room=check_room(room)
        )

    async def remote_leave(self, sid: str, room: Room, *, namespace: str = "/") -> None:
        """Make socket ``sid`` leave ``room``; raise RequestTimeoutError if no server holds it."""
        await self._remote_single(
            codec.REMOTE_LEAVE, "remoteLeave", sid, namespace, room=check_room(room)
        )

    async def remote_disconnect(
        self, sid: str, close: bool = False, *, namespace: str = "/"
    ) -> None:
        """Disconnect socket ``sid``; raise RequestTimeoutError if no server holds it."""
        await self._remote_single(
            codec.REMOTE_DISCONNECT, "remoteDisconnect", sid, namespace, close=close
        )

    async def custom_request(self, data: Any, *, namespace: str = "/") -> list[Any]:
        """Every server's ``custom_hook(data)`` answer, this server's first.

        Travels as SERVER_SIDE_EMIT with ack of the event ``CUSTOM_REQUEST_EVENT``, so a
        Node server answers with ``io.on("__socketio_redis_custom_request__", (d, cb) => cb(x))``.
        """
        own = self.custom_hook(data) if self.custom_hook else None
        if inspect.isawaitable(own):
            own = await own
        request = {"type": codec.SERVER_SIDE_EMIT, "data": [CUSTOM_REQUEST_EVENT, data]}
        return [
            own,
            *await cluster.gather(
                self, namespace, request, lambda r: r["data"], what="customRequest"
            ),
        ]

    def on(
        self, event: str, handler: Callable[..., Any] | None = None, *, namespace: str = "/"
    ) -> Any:
        """Register a handler for ``server_side_emit(event, ...)`` from other servers.

        The handler gets the event's arguments; what it returns (or its coroutine returns)
        is the answer to ``server_side_emit_with_ack``. Usable as a decorator.
        """
        check_event(event)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._server_handlers[(namespace, event)] = fn
            return fn

        return register if handler is None else register(handler)

    async def server_side_emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Send an event to the other servers' handlers (never to this server's)."""
        check_event(event)
        await self._request(
            namespace, {"uid": self.uid, "type": codec.SERVER_SIDE_EMIT, "data": [event, *args]}
        )

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, namespace: str = "/", timeout: float | None = None
    ) -> list[Any]:
        """Send an event to the other servers and return each one's answer.

        Raises RequestTimeoutError (``timeout reached: only X responses received out of Y``)
        when some server does not answer within ``timeout`` (default ``requests_timeout``).
        """
        check_event(event)
        request = {"type": codec.SERVER_SIDE_EMIT, "data": [event, *args]}
        return await cluster.gather(
            self, namespace, request, lambda r: r["data"], what=None, timeout=timeout
        )

    async def emit_with_ack(
        self,
        event: str,
        data: Any = None,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        timeout: float | None = None,
        namespace: str = "/",
    ) -> list[Any]:
        """Emit to every matching client of the cluster and return all their acks.

        Node's ``io.timeout(ms).emit(ev, cb)``. Each ack is the client's first ack argument.
        Raises RequestTimeoutError("operation has timed out") with the acks received so far.
        """
        check_event(event)
        wait = check_seconds("timeout", timeout) if timeout is not None else self.requests_timeout
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        rooms, excluded = list(rooms_of(to)), list(rooms_of(except_rooms))
        packet_data = [event, *args]
        servers = (
            1
            if self._only_local_sid(namespace, rooms)
            else await self.server_count(namespace=namespace)
        )
        collector = cluster.AckCollector(max(servers, 1))
        request_id = self._acks.add(collector.on_ack, wait, on_count=collector.on_count)
        try:
            if servers > 1:
                flags = {"timeout": int(wait * 1000)}
                request = {
                    "uid": self.uid,
                    "requestId": request_id,
                    "type": codec.BROADCAST,
                    "packet": {"type": _EVENT, "data": packet_data, "nsp": namespace},
                    "opts": {"rooms": rooms, "except": excluded, "flags": flags},
                }
                await self._request(namespace, request, msgpack=True)
            recipients = self._recipients(namespace, rooms, excluded)
            await self._deliver_with_acks(namespace, packet_data, recipients, collector.on_ack)
            collector.on_count(len(recipients))
            try:
                await asyncio.wait_for(asyncio.shield(collector.done), wait)
            except asyncio.TimeoutError:
                raise RequestTimeoutError(
                    "operation has timed out", list(collector.responses)
                ) from None
            return list(collector.responses)
        finally:
            self._acks.discard(request_id)

    def set_socket_data(self, sid: str, data: Any, *, namespace: str = "/") -> None:
        """Set the ``data`` that ``fetch_sockets`` reports for a local socket (socket.data)."""
        info = self._socket_info.get((namespace, sid))
        if info is None:
            raise KeyError(
                f"socket {sid!r} is not connected to this server in namespace {namespace!r}"
            )
        info[1] = data

    def get_socket_data(self, sid: str, *, namespace: str = "/") -> Any:
        """The ``data`` of a local socket (None until set)."""
        info = self._socket_info.get((namespace, sid))
        return None if info is None else info[1]

    def _socket_details(self, namespace: str, sid: str) -> dict[str, Any]:
        issued, data = self._socket_info.get((namespace, sid), (time.time(), None))
        environ = self.server.get_environ(sid, namespace) if self.server is not None else None
        return {
            "id": sid,
            "handshake": build_handshake(
                environ, issued, None, share_sensitive_headers=self._share_sensitive_headers
            ),
            "rooms": self.get_rooms(sid, namespace),
            "data": data,
        }

    async def _sockets_rooms(
        self,
        kind: int,
        rooms: RoomArg,
        to: RoomArg | None,
        except_rooms: RoomArg | None,
        namespace: str,
    ) -> None:
        target, selector, excluded = (
            list(rooms_of(rooms)),
            list(rooms_of(to)),
            list(rooms_of(except_rooms)),
        )
        apply_rooms(self, namespace, kind == codec.REMOTE_JOIN, selector, excluded, target)
        if not self._only_local_sid(namespace, selector):
            await self._remote_rooms(kind, namespace, selector, target, excluded)
        if kind == codec.REMOTE_JOIN and self._options.with_channel_multiplexing:
            channels = self._ensure_namespace(namespace)
            await self._confirm_subscribed([channels.room(room) for room in target])

    async def _remote_single(
        self, kind: int, what: str, sid: str, namespace: str, **fields: Any
    ) -> None:
        if self._is_local(sid, namespace):
            if kind == codec.REMOTE_DISCONNECT:
                await apply_disconnect(
                    self, namespace, [(sid, self.eio_sid_from_sid(sid, namespace))], fields["close"]
                )
            else:
                apply_rooms(self, namespace, kind == codec.REMOTE_JOIN, [sid], (), [fields["room"]])
            return
        await cluster.gather(
            self,
            namespace,
            {"type": kind, "sid": sid, **fields},
            lambda r: None,
            what=what,
            expected=1,
        )

    # -- local delivery ---------------------------------------------------------------

    def _is_local(self, sid: str, namespace: str) -> bool:
        return sid in self.rooms.get(namespace, {}).get(None, ())

    def _only_local_sid(self, nsp: str, rooms: list[Room]) -> bool:
        return len(rooms) == 1 and isinstance(rooms[0], str) and self._is_local(rooms[0], nsp)

    def _recipients(
        self, nsp: str, rooms: Iterable[Room], except_rooms: Iterable[Room]
    ) -> Recipients:
        """Local (sid, eio_sid) pairs in any of ``rooms`` (all if none) and in no except room."""
        ns = self.rooms.get(nsp)
        if not ns:
            return []
        rooms = list(rooms)
        if not except_rooms and len(rooms) <= 1:
            room = ns.get(rooms[0] if rooms else None)
            return list(room.items()) if room else []
        if not rooms:
            members: dict[str, str] = dict(ns.get(None, {}))
        elif len(rooms) == 1:
            members = dict(ns.get(rooms[0], {}))
        else:
            members = {}
            for room in rooms:
                if room in ns:
                    members.update(ns[room])
        for room in except_rooms:
            for sid in ns.get(room, ()):
                members.pop(sid, None)
        return list(members.items())

    async def _deliver(
        self, nsp: str, data: list[Any], recipients: Recipients, binary: bool | None = None
    ) -> None:
        """Encode the packet once and hand the same bytes to every recipient."""
        if not recipients:
            return
        packet_class = self.server.packet_class
        if binary is False and packet_class is _TEXT_PACKET:
            encoded: Any = encode_event_text(packet_class.json, nsp, data)
        else:
            encoded = packet_class(_EVENT, namespace=nsp, data=data, binary=binary).encode()
        send = self.server._send_eio_packet
        if isinstance(encoded, list):
            # Binary: engine.io caches one encoding per packet object, and websocket and
            # polling clients need different ones, so each recipient gets its own objects.
            for _, eio_sid in recipients:
                for part in encoded:
                    await send(eio_sid, eio_packet.Packet(_MESSAGE, part))
            return
        pkt = eio_packet.Packet(_MESSAGE, encoded)
        for _, eio_sid in recipients:
            await send(eio_sid, pkt)

    async def _deliver_with_acks(
        self,
        nsp: str,
        data: list[Any],
        recipients: Recipients,
        callback: Callable[..., Any],
    ) -> None:
        for sid, eio_sid in recipients:
            ack_id = self._generate_ack_id(sid, callback)
            pkt = self.server.packet_class(_EVENT, namespace=nsp, data=data, id=ack_id)
            await self.server._send_packet(eio_sid, pkt)

    # -- publishing -------------------------------------------------------------------

    async def _publish(self, channel: str, payload: bytes) -> int:
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        return await self._publisher.publish(channel, payload)

    async def _request(
        self, namespace: str, request: dict[str, Any], msgpack: bool = False
    ) -> None:
        payload = codec.pack(request) if msgpack else codec.dump_json(request)
        await self._publish(self._ensure_namespace(namespace).request, payload)

    async def _respond(
        self,
        channels: NamespaceChannels,
        request: dict[str, Any],
        answer: dict[str, Any],
        msgpack: bool = False,
    ) -> None:
        requester = request.get("uid")
        channel = (
            channels.response_for(requester)
            if isinstance(requester, str) and requester and "#" not in requester
            else channels.response
        )
        await self._publish(channel, codec.pack(answer) if msgpack else codec.dump_json(answer))

    async def _remote_rooms(
        self,
        kind: int,
        namespace: str,
        selector: list[Room],
        rooms: list[Room],
        excluded: list[Room] | None = None,
    ) -> None:
        await self._request(
            namespace,
            {
                "uid": self.uid,
                "type": kind,
                "opts": {"rooms": selector, "except": excluded or []},
                "rooms": rooms,
            },
        )

    async def _remote_disconnect(
        self,
        namespace: str,
        selector: list[Room],
        close: bool,
        excluded: list[Room] | None = None,
    ) -> None:
        await self._request(
            namespace,
            {
                "uid": self.uid,
                "type": codec.REMOTE_DISCONNECT,
                "opts": {"rooms": selector, "except": excluded or []},
                "close": close,
            },
        )

    async def _emit_with_callback(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        callback: Callable[..., Any],
        local: bool,
    ) -> None:
        """Local sockets get per-socket ack ids; remote ones a BROADCAST (7) request."""
        request = None
        if not local and not self._only_local_sid(nsp, rooms):
            single = len(rooms) == 1 and not except_rooms
            request_id: str = self._acks.add(callback, self._options.ack_timeout, single=single)
            flags: dict[str, Any] = {"timeout": int(self._options.ack_timeout * 1000)}
            if single:
                flags["expectSingleResponse"] = True
            request = {
                "uid": self.uid,
                "requestId": request_id,
                "type": codec.BROADCAST,
                "packet": {"type": _EVENT, "data": data, "nsp": nsp},
                "opts": {"rooms": rooms, "except": except_rooms, "flags": flags},
            }
        await self._deliver_with_acks(
            nsp, data, self._recipients(nsp, rooms, except_rooms), callback
        )
        if request is not None:
            try:
                await self._request(nsp, request, msgpack=True)
            except BaseException:
                self._acks.discard(request_id)
                raise

    # -- namespaces and subscriptions -------------------------------------------------

    def _server_namespaces(self) -> set[str]:
        names = {"/"}
        server = self.server
        if server is not None:
            names.update(server.handlers)
            names.update(server.namespace_handlers)
            if isinstance(server.namespaces, (list, tuple, set)):
                names.update(server.namespaces)
        return {name for name in names if isinstance(name, str) and name != "*"}

    def _ensure_namespace(self, nsp: str) -> NamespaceChannels:
        channels = self._namespaces.get(nsp)
        if channels is not None:
            return channels
        channels = NamespaceChannels.build(self._options.key, nsp)
        self._namespaces[nsp] = channels
        own = channels.response_for(self.uid)
        for channel, kind in (
            (channels.request, _REQUEST),
            (channels.response, _RESPONSE),
            (own, _RESPONSE),
        ):
            self._routes[channel.encode()] = (kind, channels)
            self._subscriber.want(channel)
        if self._options.with_channel_multiplexing:
            self._routes[channels.broadcast.encode()] = (_BROADCAST, channels)
            self._subscriber.want(channels.broadcast)
        else:
            self._pattern_routes[channels.pattern.encode()] = channels
            self._subscriber.want_pattern(channels.pattern)
        return channels

    async def _confirm_subscribed(self, channels: list[str]) -> None:
        if self._task is None or not self._subscriber.connected:
            return
        if not await self._subscriber.wait(channels, self.requests_timeout):
            self.logger.warning(
                "Redis at %s did not confirm subscribing %s within %g s; "
                "broadcasts from other servers may be missed until it does",
                self._where,
                channels,
                self.requests_timeout,
            )

    async def _open_sub_connection(self) -> AbstractConnection:
        return await self._open_connection(self.sub_client, "sub")

    async def _open_pub_connection(self) -> AbstractConnection:
        return await self._open_connection(self.pub_client, "pub")

    async def _open_connection(self, client: Redis, role: str) -> AbstractConnection:
        """A dedicated connection with the client's settings (TLS, auth, db...).

        RESP2, raw bytes, and no socket timeout: a timeout wraps every read and write in
        a timer, which costs more than the rest of the hot path; silence on the pub/sub
        connection is caught by the subscriber's PING watchdog instead.
        """
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs.update(
            protocol=2,
            decode_responses=False,
            socket_timeout=None,
            client_name=f"socketio-redis-async:{self.uid}:{role}",
        )
        conn: AbstractConnection = pool.connection_class(**kwargs)
        await conn.connect()  # type: ignore[no-untyped-call]
        return conn

    # -- receiving --------------------------------------------------------------------

    async def _on_message(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        if pattern is not None:
            channels = self._pattern_routes.get(pattern)
            if channels is None:
                return
            room = channels.room_of(channel.decode(errors="replace"))
            if room is None or (room and not self._has_room(channels.nsp, room)):
                return
            kind = _BROADCAST
        else:
            route = self._routes.get(channel)
            if route is None:
                return
            kind, channels = route
        if len(payload) > self._options.max_message_size:
            self._drop(channel, f"{len(payload)} bytes is over max_message_size")
            return
        try:
            if kind == _BROADCAST:
                await self._on_broadcast(channels, payload)
            elif kind == _REQUEST:
                await self._on_request(channels, codec.decode_request(payload))
            else:
                await self._on_response(codec.decode_request(payload))
        except MalformedMessage as exc:
            self._drop(channel, str(exc))

    def _has_room(self, nsp: str, room: str) -> bool:
        ns = self.rooms.get(nsp, {})
        if room in ns:
            return True
        digits = room[1:] if room[:1] == "-" else room
        return digits.isdigit() and int(room) in ns

    def _drop(self, channel: bytes, reason: str) -> None:
        self._dropped += 1
        now = asyncio.get_running_loop().time()
        if now - self._last_drop_log >= 1.0:
            self._last_drop_log = now
            self.logger.warning(
                "dropped a malformed message on %r: %s (%d dropped so far)",
                channel,
                reason,
                self._dropped,
            )

    async def _on_broadcast(self, channels: NamespaceChannels, payload: bytes) -> None:
        uid = self.uid
        if self._echo[0] != uid:
            self._echo = (uid, codec.pack(uid))
        if payload.startswith(self._echo[1], 1):
            return  # our own broadcast coming back ([uid, ...]): dropped before decoding
        msg = codec.decode_broadcast(payload)
        if msg.uid == uid or msg.nsp != channels.nsp:
            return
        recipients = self._recipients(msg.nsp, msg.rooms, msg.except_rooms)
        await self._deliver(channels.nsp, msg.data, recipients, msg.binary)

    async def _on_response(self, response: dict[str, Any]) -> None:
        if not self._acks.on_response(response):
            self._pending.on_response(response)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run user code (handlers, ack callbacks) in a task the adapter owns and awaits."""
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("a handler or ack callback failed", exc_info=task.exception())

    async def _on_request(self, channels: NamespaceChannels, request: dict[str, Any]) -> None:
        kind = request.get("type")
        handler = HANDLERS.get(kind) if isinstance(kind, int) else None
        if handler is not None:
            await handler(self, channels, request)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
