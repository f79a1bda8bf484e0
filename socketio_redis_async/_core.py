"""The adapter's machinery: options, lifecycle, subscriptions, publishing, delivery, receiving.

``AdapterCore`` holds what every feature builds on; ``AsyncRedisAdapter`` (``_adapter``)
adds python-socketio's manager API and the cluster-wide API on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import anyio
import socketio
from engineio import packet as eio_packet
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from . import _bridge as bridge
from . import _codec as codec
from ._access import access_error, acl_user, client_location, set_client_name
from ._acks import AckRequests
from ._backlog import (
    CHECK_EVERY,
    DEFAULT_MAX_SOCKET_BACKLOG,
    VOLATILE_BACKLOG,
    abort_connection,
    backlog,
    check_backlog,
)
from ._bridge import Bridge
from ._bridge import check_channel as check_bridge_channel
from ._channels import NamespaceChannels, Room, int_room
from ._clients import async_client
from ._commands import aclose_client, drop_connection, redis_call
from ._errors import (
    AccessDeniedError,
    AdapterClosedError,
    MalformedMessage,
    RedisCommandError,
)
from ._handlers import HANDLERS
from ._health import AdapterHealth, ConnectionCallback, health_of, notify
from ._histogram import LatencyHistogram
from ._operator import (
    check_room,
)
from ._options import (
    DEFAULT_KEY,
    Options,
    check_bool,
    check_key,
    check_names,
    check_seconds,
    check_size,
    redact_url,
    resolve_url,
)
from ._publisher import Publisher
from ._requests import COMPRESS_FROM, ZLIB, PendingRequests, compress_answer, expand_answer
from ._sockets import DEFAULT_REDACTED_HEADERS, DEFAULT_REDACTED_QUERY, build_handshake
from ._subscriber import Subscriber

_BROADCAST, _REQUEST, _RESPONSE = 0, 1, 2
EVENT_TYPE = 2  # socket.io EVENT packet type
_MESSAGE = eio_packet.MESSAGE

Recipients = list[tuple[str, str]]
_WRITER_TURNS = 8  # loop turns python-engineio's writer needs to take a queued batch


_TEXT_PACKET = socketio.packet.Packet


def encode_event_text(json_module: Any, nsp: str, data: list[Any]) -> str:
    """What ``socketio.packet.Packet(EVENT, data, nsp).encode()`` returns for data without
    bytes, without building the object (python-socketio's text packet format)."""
    prefix = "2" if nsp == "/" else f"2{nsp},"
    text: str = json_module.dumps(data, separators=(",", ":"))
    return prefix + text


_Self = TypeVar("_Self", bound="AdapterCore")


def _new_uid() -> str:
    return codec.random_id(8)


class AdapterCore(socketio.AsyncManager):  # type: ignore[misc]
    """State and machinery shared by every feature of :class:`AsyncRedisAdapter`."""

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
        max_answer_size: int = 30 * 1024 * 1024,
        health_check_interval: float = 2.0,
        share_sensitive_headers: bool = False,
        max_socket_backlog: int | None = DEFAULT_MAX_SOCKET_BACKLOG,
        redact_headers: Iterable[str] | None = None,
        redact_query: Iterable[str] | None = None,
        logger: logging.Logger | None = None,
        publish_timeout: float = 5.0,
        on_connection_change: ConnectionCallback | None = None,
        bridge_channel: str | None = None,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, client in (("pub_client", pub_client), ("sub_client", sub_client)):
            if client is not None and not isinstance(client, Redis):
                raise TypeError(
                    f"{name} must be a redis.asyncio.Redis instance, not {type(client).__name__}"
                )
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError("logger must be a logging.Logger")
        if on_connection_change is not None and not callable(on_connection_change):
            raise TypeError("on_connection_change must be a function taking one bool")
        options_ok = isinstance(redis_options, dict) and all(type(k) is str for k in redis_options)
        if redis_options is not None and not options_ok:
            raise TypeError("redis_options must be a dict of redis.asyncio.Redis keyword arguments")
        self._redis_options = dict(redis_options or {})
        self._options = Options(
            url=resolve_url(url, host, port),
            key=check_key(key),
            requests_timeout=check_seconds("requests_timeout", requests_timeout),
            ack_timeout=check_seconds("ack_timeout", ack_timeout),
            with_channel_multiplexing=check_bool(
                "with_channel_multiplexing", with_channel_multiplexing
            ),
            max_message_size=check_size("max_message_size", max_message_size),
            max_answer_size=max(check_size("max_answer_size", max_answer_size), max_message_size),
            health_check_interval=check_seconds("health_check_interval", health_check_interval),
            max_socket_backlog=check_backlog(max_socket_backlog),
            publish_timeout=check_seconds("publish_timeout", publish_timeout),
        )
        if check_bool("share_sensitive_headers", share_sensitive_headers):
            if redact_headers is not None:
                raise ValueError(
                    "pass either share_sensitive_headers=True or redact_headers, not both "
                    "(share_sensitive_headers=True is the same as redact_headers=[])"
                )
            redact_headers = ()
        self._redact_headers = (
            DEFAULT_REDACTED_HEADERS
            if redact_headers is None
            else check_names("redact_headers", redact_headers, headers=True)
        )
        self._redact_query = (
            DEFAULT_REDACTED_QUERY
            if redact_query is None
            else check_names("redact_query", redact_query, headers=False)
        )
        self.logger = logger or logging.getLogger("socketio_redis_async")
        # Messages name the Redis actually used: the clients passed in, or the URL.
        self._where = client_location(sub_client) if sub_client else redact_url(self._options.url)
        pub_where = client_location(pub_client) if pub_client else self._where
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
        self._on_connection_change = on_connection_change
        self._leases: dict[str, int] = {}
        self._live_seen: dict[str, tuple[float, list[str]]] = {}
        self._subscriber = Subscriber(
            self._open_sub_connection,
            self._on_message,
            logger=self.logger,
            where=self._where,
            health_check_interval=self._options.health_check_interval,
            on_change=self._connection_changed,
            explain=self._access_error,
        )
        self._publisher = Publisher(
            self._open_pub_connection,
            max_message_size=self._options.max_message_size,
            where=pub_where,
            timeout=self._options.publish_timeout,
            ready=self._subscriber.ready,
        )
        self._acks = AckRequests(self._spawn)
        channel = check_bridge_channel(bridge_channel)
        if channel is not None and channel.startswith(f"{self._options.key}#"):
            raise ValueError(
                f"bridge_channel {channel!r} is one of this adapter's own channels (key "
                f"{self._options.key!r}); pass the AsyncRedisManager's channel, e.g. 'socketio'"
            )
        self._bridge = None if channel is None else Bridge(self, channel, self.logger)
        if channel is not None:
            self._subscriber.want(channel)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending = PendingRequests(self._on_unusable_answer)
        self._server_handlers: dict[tuple[str, str], Callable[..., Any]] = {}
        self._socket_info: dict[tuple[str, str], list[Any]] = {}
        """(namespace, sid) -> [issued, data, auth] of each local socket."""
        self._connect_auth: dict[str, tuple[str, Any]] = {}
        self.custom_hook: Callable[[Any], Any] | None = None
        """Answers ``custom_request(data)`` on this server; sync or async, returns the answer."""
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._dropped = 0
        self._echo = ("", b"")
        self._last_drop_log = -1e9
        self._slow: set[str] = set()
        self._backlog_countdown = 1
        self._slow_consumers = 0
        self._volatile_skipped = 0
        self._last_slow_log = -1e9
        self._may_name = True  # False once Redis refused CLIENT SETNAME (an ACL without CLIENT)
        self._last_unusable_log = -1e9
        self._ack_expiry: dict[int, asyncio.TimerHandle] = {}
        self._expiry_ids = itertools.count()

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
            self._pub_client = async_client(self._options.url, **self._redis_options)
        return self._pub_client

    @property
    def sub_client(self) -> Redis:
        """The Redis client whose settings the pub/sub connection uses."""
        if self._sub_client is None:
            self._sub_client = async_client(self._options.url, **self._redis_options)
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
            "unusable_answers": self._pending.unusable,
            "published": self._publisher.published,
            "publish_batches": self._publisher.batches,
            "slow_consumers_disconnected": self._slow_consumers,
            "volatile_skipped": self._volatile_skipped,
            "publish_failures": self._publisher.failures,
            "publish_backlog_bytes": self._publisher.backlog_bytes,
        }

    def set_server(self, server: Any) -> None:
        """Attach to the server; also watch CONNECT packets for ``handshake.auth``.

        python-socketio hands the CONNECT payload (the client's ``auth``) only to the
        app's ``connect`` handler. The adapter registers its own Engine.IO ``message``
        handler, which notes the payload of a CONNECT and calls python-socketio's
        handler, so ``pre_connect`` can keep it for ``fetch_sockets``.
        """
        super().set_server(server)
        eio = getattr(server, "eio", None)
        handlers = getattr(eio, "handlers", None)
        original = handlers.get("message") if isinstance(handlers, dict) else None
        if eio is None or original is None or not inspect.iscoroutinefunction(original):
            self.logger.warning(
                "cannot see this server's CONNECT packets; handshake.auth will be {}"
            )
            return

        async def on_message(eio_sid: str, data: Any) -> Any:
            if not (isinstance(data, str) and data[:1] == "0"):
                return await original(eio_sid, data)
            try:
                pkt = server.packet_class(encoded_packet=data)
            except Exception:  # malformed: python-socketio's handler deals with it
                return await original(eio_sid, data)
            self._connect_auth[eio_sid] = (pkt.namespace or "/", pkt.data)
            try:
                return await original(eio_sid, data)
            finally:
                self._connect_auth.pop(eio_sid, None)

        eio.on("message", on_message)

    @property
    def publish_latency(self) -> LatencyHistogram:
        """Seconds from queueing each PUBLISH to Redis answering it (a live histogram)."""
        return self._publisher.latency

    def health(self) -> AdapterHealth:
        """A snapshot of the adapter's link to Redis, for health checks and dashboards."""
        return health_of(self._subscriber, self._publisher, self._options.health_check_interval)

    def _connection_changed(self, subscribed: bool) -> None:
        if self._on_connection_change is not None:
            self._spawn(notify(self._on_connection_change, subscribed))

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
        Raises :class:`AccessDeniedError` as soon as Redis refuses the credentials or an ACL
        permission, and :class:`RedisCommandError` if Redis does not answer within
        ``requests_timeout``; either way the listener keeps retrying in the background.
        """
        if self.server is None:
            raise RuntimeError(
                "pass the adapter to socketio.AsyncServer(client_manager=...) before start()"
            )
        self.server.manager_initialized = True
        denial = self._subscriber.next_denial()
        try:
            self.initialize()
            confirmed: asyncio.Future[bool] = asyncio.ensure_future(
                self._subscriber.wait(
                    self._subscriber.channels, self.requests_timeout, self._subscriber.patterns
                )
            )
            try:
                either: list[asyncio.Future[Any]] = [confirmed, denial]
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                confirmed.cancel()
            if denial.done() and not denial.cancelled():
                raise denial.result()
            if not confirmed.result():
                raise self._subscriber.denied or RedisCommandError(
                    f"Redis at {self._where} did not confirm the subscriptions within "
                    f"{self.requests_timeout:g} s; is it running? (the adapter keeps retrying)"
                )
        finally:
            self._subscriber.forget_denial(denial)

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
            for timer in self._ack_expiry.values():
                timer.cancel()
            self._ack_expiry.clear()
            for owned, client in (
                (self._owns_pub, self._pub_client),
                (self._owns_sub, self._sub_client),
            ):
                if owned and client is not None:
                    await aclose_client(client, self.requests_timeout)

    async def __aenter__(self: _Self) -> _Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

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
        recipients = self._recipients(nsp, rooms, except_rooms)
        await self._deliver(nsp, data, recipients, volatile=flags.get("volatile") is True)
        if payload is not None:
            await self._publish(self._channels_of(nsp).for_rooms(rooms), payload)
            if self._bridge is not None:
                await self._bridge.publish(bridge.emit_message(nsp, data, rooms, except_rooms))

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a local socket, its rooms and its ``data``; a namespace's last socket
        releases the namespace's channels unless something else keeps it."""
        super().basic_disconnect(sid, namespace, **kwargs)
        self._socket_info.pop((namespace, sid), None)
        self._release_if_idle(namespace)

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
            channel = self._channels_of(namespace).room(room)
            refs = self._room_refs.get(channel, 1) - 1
            if refs:
                self._room_refs[channel] = refs
            else:
                self._room_refs.pop(channel, None)
                self._routes.pop(channel.encode(), None)
                self._subscriber.unwant(channel)

    async def server_count(self, *, namespace: str = "/") -> int:
        """How many servers serve ``namespace`` (``PUBSUB NUMSUB`` on its request channel).

        This server counts only if it serves ``namespace`` (local sockets or handlers).
        """
        served = self._keeps(namespace)
        async with self._serving(namespace):
            count = await self._numsub(namespace)
        return count if served else count - 1

    async def _numsub(self, namespace: str) -> int:
        """``PUBSUB NUMSUB`` of the request channel; this server included while serving."""
        counts = await redis_call(
            self.pub_client.pubsub_numsub(self._channels_of(namespace).request),
            what="PUBSUB NUMSUB failed",
            where=self._where,
            timeout=self.requests_timeout,
        )
        return int(counts[0][1]) if counts else 0

    def _sockets_details(self, namespace: str, recipients: Recipients) -> list[dict[str, Any]]:
        """``{id, handshake, rooms, data}`` of local sockets, as fetch_sockets reports them.

        Rooms come from one pass over the namespace's rooms (python-socketio's
        ``get_rooms`` scans them all for each socket: quadratic for big answers).
        """
        rooms: dict[str, list[Room]] = {sid: [] for sid, _ in recipients}
        for name, members in self.rooms.get(namespace, {}).items():
            if name is None or not members:
                continue
            if len(members) <= len(rooms):
                for sid in members:
                    if sid in rooms:
                        rooms[sid].append(name)
            else:
                for sid, in_rooms in rooms.items():
                    if sid in members:
                        in_rooms.append(name)
        environs = self.server.environ if self.server is not None else {}
        details = []
        for sid, eio_sid in recipients:
            issued, data, auth = self._socket_info.get((namespace, sid), (time.time(), None, None))
            handshake = build_handshake(
                environs.get(eio_sid),
                issued,
                auth,
                redact_headers=self._redact_headers,
                redact_query=self._redact_query,
            )
            details.append({"id": sid, "handshake": handshake, "rooms": rooms[sid], "data": data})
        return details

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
        self,
        nsp: str,
        data: list[Any],
        recipients: Recipients,
        binary: bool | None = None,
        volatile: bool = False,
    ) -> None:
        """Encode the packet once and hand the same bytes to every recipient.

        Slow consumers are left out and disconnected; a volatile packet also skips
        connections that are behind (Node drops it when the transport is not writable).
        """
        if recipients and (volatile or self._backlog_due()):
            recipients = await self._writable(recipients, volatile)
        if not recipients:
            return
        packet_class = self.server.packet_class
        if binary is False and packet_class is _TEXT_PACKET:
            encoded: Any = encode_event_text(packet_class.json, nsp, data)
        else:
            encoded = packet_class(EVENT_TYPE, namespace=nsp, data=data, binary=binary).encode()
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

    def _backlog_due(self) -> bool:
        """Whether this delivery checks the recipients' backlog (every CHECK_EVERY-th)."""
        if self._options.max_socket_backlog is None:
            return False
        self._backlog_countdown -= 1
        if self._backlog_countdown > 0:
            return False
        self._backlog_countdown = CHECK_EVERY
        return True

    async def _writable(self, recipients: Recipients, volatile: bool) -> Recipients:
        """The recipients minus slow consumers (disconnected) and, for a volatile packet,
        minus the connections that are behind."""
        limit = self._options.max_socket_backlog
        if volatile:
            floor = VOLATILE_BACKLOG if limit is None else min(limit, VOLATILE_BACKLOG)
        else:
            assert limit is not None
            floor = limit
        get = self.server.eio.sockets.get
        behind = {eio for _, eio in recipients if backlog(get(eio)) >= floor}
        if not behind:
            return recipients
        skip = set()
        for eio_sid in behind:
            waiting = backlog(get(eio_sid))
            if eio_sid in self._slow:
                skip.add(eio_sid)  # being disconnected
            elif limit is not None and waiting >= limit:
                waiting = await self._settle(get, eio_sid, limit)
                if waiting >= limit:
                    self._slow_consumer(eio_sid, waiting)
                    skip.add(eio_sid)
            if volatile and eio_sid not in skip and waiting >= VOLATILE_BACKLOG:
                self._volatile_skipped += 1
                skip.add(eio_sid)
        return [pair for pair in recipients if pair[1] not in skip]

    @staticmethod
    async def _settle(get: Callable[[str], Any], eio_sid: str, limit: int) -> int:
        """The backlog once the connection's writer had a chance to run.

        A burst from this very task (emits that never yield) fills even a healthy
        queue; its writer empties it within a few loop turns, a blocked one never does.
        """
        waiting = limit
        for _ in range(_WRITER_TURNS):
            await asyncio.sleep(0)
            waiting = backlog(get(eio_sid))
            if waiting < limit:
                break
        return waiting

    def _slow_consumer(self, eio_sid: str, waiting: int) -> None:
        """Disconnect a connection whose client does not read what it is sent."""
        if eio_sid in self._slow:
            return
        self._slow.add(eio_sid)
        self._slow_consumers += 1
        now = asyncio.get_running_loop().time()
        if now - self._last_slow_log >= 1.0:
            self._last_slow_log = now
            self.logger.warning(
                "disconnecting slow consumer %s: %d packets waiting (max_socket_backlog=%s); "
                "%d disconnected so far",
                eio_sid,
                waiting,
                self._options.max_socket_backlog,
                self._slow_consumers,
            )
        self._spawn(self._abort_slow(eio_sid))

    async def _abort_slow(self, eio_sid: str) -> None:
        try:
            await abort_connection(self.server, eio_sid)
        finally:
            self._slow.discard(eio_sid)

    async def _deliver_with_acks(
        self,
        nsp: str,
        data: list[Any],
        recipients: Recipients,
        callback: Callable[..., Any],
    ) -> list[tuple[str, int]]:
        """Send with a fresh ack id per recipient; return the ``(sid, ack_id)`` pairs."""
        ack_ids = []
        for sid, eio_sid in recipients:
            ack_id = self._generate_ack_id(sid, callback)
            ack_ids.append((sid, ack_id))
            pkt = self.server.packet_class(EVENT_TYPE, namespace=nsp, data=data, id=ack_id)
            await self.server._send_packet(eio_sid, pkt)
        return ack_ids

    def _expire_acks(self, ack_ids: list[tuple[str, int]], timeout: float) -> None:
        """Forget these ack callbacks after ``timeout`` seconds if the clients never acked."""
        if not ack_ids:
            return
        key = next(self._expiry_ids)
        self._ack_expiry[key] = asyncio.get_running_loop().call_later(
            timeout, self._forget_acks, key, ack_ids
        )

    def _forget_acks(self, key: int, ack_ids: list[tuple[str, int]]) -> None:
        self._ack_expiry.pop(key, None)
        for sid, ack_id in ack_ids:
            callbacks = self.callbacks.get(sid)
            if callbacks is not None:
                callbacks.pop(ack_id, None)

    async def _publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        return await self._publisher.publish(channel, payload, limit)

    async def _publish_answer(
        self,
        channel: str,
        request: dict[str, Any],
        answer: dict[str, Any],
        msgpack: bool = False,
    ) -> None:
        """Publish an answer to another server's request, up to ``max_answer_size``.

        A large JSON answer to a requester that accepts it (a Python one) is compressed.
        An answer still over the limit is replaced by ``{..., "error": "answer too large:
        ..."}`` with its list fields empty: a Python requester raises AnswerTooLargeError,
        a Node requester counts an empty answer instead of waiting for a timeout.
        """
        limit = self._options.max_answer_size
        payload = codec.pack(answer) if msgpack else codec.dump_json(answer)
        if not msgpack and len(payload) >= COMPRESS_FROM and request.get(ZLIB) is True:
            payload = compress_answer(answer, payload)
        if len(payload) > limit:
            if answer.get("type") == codec.BROADCAST_ACK:
                raise ValueError(f"the ack is {len(payload)} bytes, over max_answer_size={limit}")
            error = (
                f"answer too large: {len(payload)} bytes is over max_answer_size={limit} "
                f"on server {self.uid}"
            )
            self.logger.warning(
                "%s; sent an error answer instead (raise max_answer_size, and Redis' "
                "client-output-buffer-limit for pubsub, to allow larger answers)",
                error,
            )
            answer = {
                key: value
                if key in ("type", "requestId")
                else []
                if isinstance(value, list)
                else None
                for key, value in answer.items()
            }
            answer.update(uid=self.uid, error=error)
            payload = codec.pack(answer) if msgpack else codec.dump_json(answer)
        await self._publish(channel, payload, limit)

    async def _request(
        self, namespace: str, request: dict[str, Any], msgpack: bool = False
    ) -> None:
        payload = codec.pack(request) if msgpack else codec.dump_json(request)
        await self._publish(self._channels_of(namespace).request, payload)

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
        await self._publish_answer(channel, request, answer, msgpack)

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

    def _server_namespaces(self) -> set[str]:
        names = {"/"}
        server = self.server
        if server is not None:
            names.update(server.handlers)
            names.update(server.namespace_handlers)
            if isinstance(server.namespaces, (list, tuple, set)):
                names.update(server.namespaces)
        return {name for name in names if isinstance(name, str) and name != "*"}

    def _channels_of(self, nsp: str) -> NamespaceChannels:
        """The channel names of ``nsp``, without subscribing anything."""
        channels = self._namespaces.get(nsp)
        return channels if channels is not None else NamespaceChannels.build(self.prefix, nsp)

    def _keeps(self, nsp: str) -> bool:
        """True while this server serves ``nsp``: it has local sockets there, handlers for
        it (server, namespace or ``adapter.on()``), declares it, or awaits a request on it."""
        if nsp in self.rooms or self._leases.get(nsp):
            return True
        if any(name == nsp for name, _ in self._server_handlers):
            return True
        return nsp in self._server_namespaces()

    def _hold(self, nsp: str) -> NamespaceChannels:
        """Serve ``nsp`` at least until the matching :meth:`_unhold`."""
        self._leases[nsp] = self._leases.get(nsp, 0) + 1
        return self._ensure_namespace(nsp)

    def _unhold(self, nsp: str) -> None:
        leases = self._leases.get(nsp, 0) - 1
        if leases > 0:
            self._leases[nsp] = leases
            return
        self._leases.pop(nsp, None)
        self._release_if_idle(nsp)

    @contextlib.asynccontextmanager
    async def _serving(self, nsp: str) -> AsyncIterator[NamespaceChannels]:
        """Serve ``nsp`` while a request on it is in flight: its request channel counts
        this server in NUMSUB exactly once, and its response channels hear the answers."""
        channels = self._hold(nsp)
        try:
            await self._confirm_subscribed(
                [channels.request, channels.response, channels.response_for(self.uid)]
            )
            yield channels
        finally:
            self._unhold(nsp)

    def _release_if_idle(self, nsp: str) -> None:
        """Unsubscribe ``nsp``'s channels once nothing keeps it (see :meth:`_keeps`)."""
        channels = self._namespaces.get(nsp)
        if channels is None or self._keeps(nsp):
            return
        del self._namespaces[nsp]
        self._live_seen.pop(nsp, None)
        for channel in (channels.request, channels.response, channels.response_for(self.uid)):
            self._routes.pop(channel.encode(), None)
            self._subscriber.unwant(channel)
        if self._options.with_channel_multiplexing:
            self._routes.pop(channels.broadcast.encode(), None)
            self._subscriber.unwant(channels.broadcast)
        else:
            self._pattern_routes.pop(channels.pattern.encode(), None)
            self._subscriber.unwant_pattern(channels.pattern)

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
        # Wait while the listener starts up or is connected; not while Redis is known to
        # be unreachable (a join must not stall for the whole outage).
        if self._task is None or self._subscriber.failing:
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
        # The client name is set afterwards, best effort: an ACL user may lack CLIENT.
        kwargs.update(protocol=2, decode_responses=False, socket_timeout=None, client_name=None)
        conn: AbstractConnection = pool.connection_class(**kwargs)
        try:
            # Bounded, the handshake included: a frozen Redis accepts TCP but never answers.
            await redis_call(
                self._handshake(conn, role),
                what=f"cannot open the {role} connection",
                where=self._where,
                timeout=self.requests_timeout,
            )
        except BaseException:
            await drop_connection(conn)
            raise
        return conn

    async def _handshake(self, conn: AbstractConnection, role: str) -> None:
        await conn.connect()  # type: ignore[no-untyped-call]
        if self._may_name:  # once refused, not asked again (each refusal is in ACL LOG)
            name = f"socketio-redis-async:{self.uid}:{role}"
            self._may_name = await set_client_name(conn, name, self.requests_timeout)

    def _access_error(self, exc: BaseException) -> AccessDeniedError | None:
        user = acl_user(self.sub_client.connection_pool.connection_kwargs)
        return access_error(exc, user=user, where=self._where, key=self._options.key)

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
                if self._bridge is not None and channel == self._bridge.channel.encode():
                    await self._on_bridge(channel, payload)
                return
            kind, channels = route
        limit = (
            self._options.max_answer_size if kind == _RESPONSE else self._options.max_message_size
        )
        if len(payload) > limit:
            self._drop(channel, f"{len(payload)} bytes is over the {limit} bytes allowed")
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

    async def _on_bridge(self, channel: bytes, payload: bytes) -> None:
        """A message on python-socketio's AsyncRedisManager channel (bridge mode)."""
        limit = self._options.max_message_size
        if len(payload) > limit:
            self._drop(channel, f"{len(payload)} bytes is over the {limit} bytes allowed")
            return
        assert self._bridge is not None
        try:
            await self._bridge.on_message(payload)
        except MalformedMessage as exc:
            self._drop(channel, str(exc))

    def _has_room(self, nsp: str, room: str) -> bool:
        ns = self.rooms.get(nsp, {})
        if room in ns:
            return True
        number = int_room(room)
        return number is not None and number in ns

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

    def _on_unusable_answer(self, answer: dict[str, Any], exc: Exception) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_unusable_log >= 1.0:
            self._last_unusable_log = now
            self.logger.warning(
                "ignored an unusable answer from server %s to request %s (%s: %s); "
                "%d unusable answers so far",
                str(answer.get("uid", "(unsigned)"))[:40],
                str(answer.get("requestId"))[:40],
                type(exc).__name__,
                str(exc)[:100],
                self._pending.unusable,
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
        volatile = msg.flags.get("volatile") is True
        await self._deliver(channels.nsp, msg.data, recipients, msg.binary, volatile)

    async def _on_response(self, response: dict[str, Any]) -> None:
        if isinstance(response.get(ZLIB), bytes):
            response = expand_answer(response, 8 * self._options.max_answer_size)
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
