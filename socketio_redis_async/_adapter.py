"""``AsyncRedisAdapter``: python-socketio's client manager on Node's Redis adapter protocol."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from . import _bridge as bridge
from . import _cluster as cluster
from . import _codec as codec
from ._channels import Room
from ._core import AdapterCore
from ._errors import RequestTimeoutError
from ._handlers import CUSTOM_REQUEST_EVENT, apply_disconnect, apply_rooms, wire_rooms
from ._operator import (
    BroadcastOperator,
    RoomArg,
    check_event,
    check_namespace,
    check_room,
    rooms_of,
)
from ._options import check_bool, check_seconds
from ._sockets import RemoteSocket


class AsyncRedisAdapter(AdapterCore):
    """Client manager for ``socketio.AsyncServer`` that shares rooms and events over Redis.

    It speaks the wire protocol of Node's ``@socket.io/redis-adapter`` 8.x (classic mode)
    and ``@socket.io/redis-emitter`` 5.x, so Python and Node.js servers can share a cluster.

    :param url: Redis URL: ``redis://``, ``rediss://`` (TLS) or ``unix://``, with optional
        ``user:password@`` (percent-encoded) or ``?password=``; errors and logs show it
        with ``***`` instead of any credential. Default ``redis://localhost:6379/0``.
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
    :param max_message_size: largest broadcast or request published or accepted, in bytes
        (default 8 MiB). At most four times this many bytes may wait to be published;
        past that an emit fails at once with PublishError.
    :param max_answer_size: largest answer to another server's request (``fetch_sockets``,
        ``all_rooms``...) published or accepted, in bytes (default 30 MiB: about 50k
        sockets of python-socketio clients, 44k of browsers, in one ``fetch_sockets``
        answer; never less than ``max_message_size``). A larger answer is replaced by an
        error that the requester raises as :class:`AnswerTooLargeError`. Redis disconnects
        a subscriber whose pending output passes ``client-output-buffer-limit pubsub``
        (32 MiB hard by default), and the answers of every server arrive at once: for
        bigger queries raise that limit and this option together.
    :param health_check_interval: seconds of silence on the pub/sub connection before a PING
        (default 2); no answer for another interval means the link is dead: it is logged
        and re-established.
    :param redact_headers: names of the headers left out of the handshakes that
        ``fetch_sockets`` reports (case-insensitive); default
        :data:`DEFAULT_REDACTED_HEADERS` (``Cookie``, ``Authorization``, ``X-Api-Key``...).
        A list replaces the default; extend it with ``DEFAULT_REDACTED_HEADERS | {...}``.
    :param redact_query: names of the query parameters left out of those handshakes'
        ``query`` and ``url`` (case-insensitive); default :data:`DEFAULT_REDACTED_QUERY`
        (``token``, ``access_token``, ``api_key``...).
    :param share_sensitive_headers: the older switch: True is ``redact_headers=[]``.
    :param max_socket_backlog: packets that may wait for one client connection (default
        10,000); a connection still this far behind after its writer had a turn belongs to
        a client that stopped reading, and is disconnected. None means no limit.
    :param logger: a ``logging.Logger``; default ``logging.getLogger("socketio_redis_async")``.
    :param publish_timeout: seconds an emit may wait for Redis to accept its PUBLISH
        (default 5); past that it fails with PublishError and the connection is re-opened.
    :param on_connection_change: ``callback(subscribed)``, sync or async, run in a task the
        adapter owns: ``False`` when the pub/sub link to Redis is lost or cannot be made
        (messages from other servers are being missed), ``True`` once it is back and every
        subscription is confirmed (re-sync what may have been missed). See ``health()``.
    :param redis_options: keyword arguments for the Redis clients created from ``url``
        (python-socketio ``AsyncRedisManager``'s ``redis_options``).
    :param bridge_channel: while a fleet moves over from ``AsyncRedisManager``, its
        ``channel`` (python-socketio's default is ``"socketio"``): this server also applies
        the messages of those servers and publishes its own operations there for them.
    """

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
        connect = self._connect_auth.get(eio_sid)
        auth = connect[1] if connect is not None and connect[0] == namespace else None
        channels = self._ensure_namespace(namespace)
        sid: str | None = await super().pre_connect(eio_sid, namespace)
        if sid is None:
            self._release_if_idle(namespace)
        else:
            self._socket_info[(namespace, sid)] = [time.time(), None, auth]
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
                await self._confirm_subscribed([self._channels_of(namespace).room(room)])
            return
        await self._remote_rooms(codec.REMOTE_JOIN, namespace, [sid], [room])
        await self._bridged("enter_room", namespace, sid=sid, room=room)

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Remove a socket from a room, on whichever server holds it; never its own sid room."""
        if room == sid:
            return
        if self._is_local(sid, namespace):
            self.basic_leave_room(sid, namespace, room)
            return
        await self._remote_rooms(codec.REMOTE_LEAVE, namespace, [sid], [check_room(room)])
        await self._bridged("leave_room", namespace, sid=sid, room=room)

    async def close_room(self, room: Any, namespace: str) -> None:
        """Make every socket of the cluster leave ``room``."""
        room = check_room(room)
        self.basic_close_room(room, namespace)
        await self._remote_rooms(codec.REMOTE_LEAVE, namespace, [room], [room])
        await self._bridged("close_room", namespace, room=room)

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        """True for a local socket; for a remote one, ask its server and return False."""
        if self._is_local(sid, namespace):
            return bool(self.is_connected(sid, namespace))
        await self._remote_disconnect(namespace, [sid], close=False)
        await self._bridged("disconnect", namespace, sid=sid)
        return False

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a local socket, or ask the server that holds it to disconnect it."""
        if not kwargs.get("ignore_queue") and not self._is_local(sid, namespace):
            await self._remote_disconnect(namespace, [sid], close=False)
            await self._bridged("disconnect", namespace, sid=sid)
            return
        self.basic_disconnect(sid, namespace, **kwargs)

    async def _bridged(self, method: str, namespace: str, **fields: Any) -> None:
        """Tell AsyncRedisManager servers too, in bridge mode."""
        if self._bridge is not None:
            await self._bridge.publish({"method": method, "namespace": namespace, **fields})

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
        local: bool = False,
    ) -> list[RemoteSocket]:
        """The sockets in ``rooms`` (all if None) and in no ``except_rooms``, cluster-wide.

        Each has ``id``, ``handshake``, ``rooms`` and ``data``, and ``emit``, ``join``,
        ``leave`` and ``disconnect`` methods that work wherever it lives.
        ``local=True`` returns this server's sockets only (Node's ``io.local.fetchSockets()``).
        Raises RequestTimeoutError if a server does not answer in time, AnswerTooLargeError
        if a server's answer would exceed its ``max_answer_size``.
        """
        check_bool("local", local)
        selector, excluded = list(rooms_of(rooms)), list(rooms_of(except_rooms))
        found = self._sockets_details(namespace, self._recipients(namespace, selector, excluded))
        if not local and not self._only_local_sid(namespace, selector):
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
        local: bool = False,
    ) -> None:
        """Make the matching sockets of the cluster join ``rooms`` (Node's ``socketsJoin``).

        ``local=True`` acts on this server's sockets only."""
        await self._sockets_rooms(codec.REMOTE_JOIN, rooms, to, except_rooms, namespace, local)

    async def sockets_leave(
        self,
        rooms: RoomArg,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> None:
        """Make the matching sockets of the cluster leave ``rooms`` (Node's ``socketsLeave``).

        ``local=True`` acts on this server's sockets only."""
        await self._sockets_rooms(codec.REMOTE_LEAVE, rooms, to, except_rooms, namespace, local)

    async def disconnect_sockets(
        self,
        close: bool = False,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> None:
        """Disconnect the matching sockets of the cluster; ``close`` closes their connection.

        ``local=True`` acts on this server's sockets only."""
        check_bool("local", local)
        selector, excluded = list(rooms_of(to)), list(rooms_of(except_rooms))
        targets = self._recipients(namespace, selector, excluded)
        if not local and not self._only_local_sid(namespace, selector):
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
            self._ensure_namespace(namespace)  # kept while it has handlers
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
        async with self._serving(namespace):
            return await self._emit_with_ack(namespace, packet_data, rooms, excluded, wait)

    async def _emit_with_ack(
        self,
        namespace: str,
        packet_data: list[Any],
        rooms: list[Room],
        excluded: list[Room],
        wait: float,
    ) -> list[Any]:
        servers = 1 if self._only_local_sid(namespace, rooms) else await self._numsub(namespace)
        if servers > 1:
            await cluster.remember_live(self, namespace)
        collector = cluster.AckCollector(max(servers, 1))
        request_id = self._acks.add(collector.on_ack, wait, on_count=collector.on_count)
        try:
            if servers > 1:
                flags = {"timeout": int(wait * 1000)}
                request = codec.broadcast_request(
                    self.uid, request_id, namespace, packet_data, rooms, excluded, flags
                )
                await self._request(namespace, request, msgpack=True)
            recipients = self._recipients(namespace, rooms, excluded)
            await self._deliver_with_acks(namespace, packet_data, recipients, collector.on_ack)
            collector.on_count(len(recipients), self.uid)
            try:
                await asyncio.wait_for(asyncio.shield(collector.done), wait)
            except asyncio.TimeoutError:
                silent = []
                if collector.reported < collector.servers:
                    silent = await cluster.silent_servers(self, namespace, collector.reporters)
                raise RequestTimeoutError(
                    "operation has timed out", list(collector.responses), silent
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

    async def _sockets_rooms(
        self,
        kind: int,
        rooms: RoomArg,
        to: RoomArg | None,
        except_rooms: RoomArg | None,
        namespace: str,
        local: bool,
    ) -> None:
        check_bool("local", local)
        target, selector, excluded = (
            list(rooms_of(rooms)),
            list(rooms_of(to)),
            list(rooms_of(except_rooms)),
        )
        apply_rooms(self, namespace, kind == codec.REMOTE_JOIN, selector, excluded, target)
        if not local and not self._only_local_sid(namespace, selector):
            await self._remote_rooms(kind, namespace, selector, target, excluded)
        if kind == codec.REMOTE_JOIN and self._options.with_channel_multiplexing:
            channels = self._channels_of(namespace)
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
            # The acks come back on this namespace's response channels: serve it until the
            # entry expires.
            channels = self._hold(nsp)
            request_id: str = self._acks.add(
                callback,
                self._options.ack_timeout,
                single=single,
                on_discard=lambda: self._unhold(nsp),
            )
            flags: dict[str, Any] = {"timeout": int(self._options.ack_timeout * 1000)}
            if single:
                flags["expectSingleResponse"] = True
            request = codec.broadcast_request(
                self.uid, request_id, nsp, data, rooms, except_rooms, flags
            )
        await self._deliver_with_acks(
            nsp, data, self._recipients(nsp, rooms, except_rooms), callback
        )
        if request is not None:
            try:
                await self._confirm_subscribed([channels.response, channels.response_for(self.uid)])
                await self._request(nsp, request, msgpack=True)
            except BaseException:
                self._acks.discard(request_id)
                raise
            if self._bridge is not None and len(rooms) == 1 and isinstance(rooms[0], str):
                # python-socketio's callback: the old server acks with a `callback` message
                # addressed to this server; the entry expires like a local one.
                ack_id = self._generate_ack_id(rooms[0], callback)
                self._expire_acks([(rooms[0], ack_id)], self._options.ack_timeout)
                await self._bridge.publish(
                    bridge.emit_message(nsp, data, rooms, except_rooms, [rooms[0], nsp, ack_id])
                )


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
