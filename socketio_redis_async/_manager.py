"""``ClusterManager``: the python-socketio facade over the cluster engine.

python-socketio calls the manager contract here (``emit``, ``pre_connect``,
``enter_room``...); each acts on local sockets and lets the engine (``_cluster.engine``)
tell the other servers. Node's cluster API (``fetch_sockets``...) is ``_api.ClusterAPI``,
built on this class; the public adapters only choose a wire format and a transport.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import socketio

from ._cluster.engine import ClusterEngine
from ._health import AdapterHealth, ConnectionCallback
from ._local.connects import Connects, Leaving, watch_connects
from ._operator import packet_data, rooms_of
from ._options import Options
from ._protocol.rooms import check_room
from ._protocol.wire import WireFormat
from ._recovery import host as recovery_host
from ._recovery import resume
from ._recovery.recovery import Recovery
from ._transport.base import TransportFactory
from ._transport.histogram import LatencyHistogram

_Self = TypeVar("_Self", bound="ClusterManager")


class ClusterManager(socketio.AsyncManager):  # type: ignore[misc]
    """A ``socketio.AsyncManager`` whose rooms and events span every server of a cluster."""

    def __init__(
        self,
        *,
        options: Options,
        wire: WireFormat,
        transport: TransportFactory,
        logger: logging.Logger | None = None,
        on_connection_change: ConnectionCallback | None = None,
        bridge_channel: str | None = None,
    ) -> None:
        super().__init__()
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError("logger must be a logging.Logger")
        if on_connection_change is not None and not callable(on_connection_change):
            raise TypeError("on_connection_change must be a function taking one bool")
        self.logger = logger or logging.getLogger("socketio_redis_async")
        self._options = options
        self._connects: Connects = {}
        self._leaving: Leaving = set()
        self._recovery: Recovery | None = None  # connection-state recovery, when turned on
        self._engine = ClusterEngine(
            host=self,
            options=options,
            wire=wire,
            transport=transport,
            served=self._server_namespaces,
            logger=self.logger,
            on_connection_change=on_connection_change,
            bridge_channel=bridge_channel,
        )

    # -- what it is ---------------------------------------------------------------------

    @property
    def uid(self) -> str:
        """This server's id on the wire; a new one is made in a forked child process."""
        return self._engine.uid

    @property
    def host_id(self) -> str:
        """The same as :attr:`uid`; python-socketio's admin UI reads it."""
        return self._engine.uid

    @property
    def prefix(self) -> str:
        """The channel prefix (``key``, or the sharded adapter's ``channel_prefix``)."""
        return self._options.key

    @property
    def requests_timeout(self) -> float:
        """Seconds to wait for answers from other servers."""
        return self._options.requests_timeout

    @property
    def custom_hook(self) -> Callable[[Any], Any] | None:
        """Answers ``custom_request(data)`` on this server; sync or async."""
        return self._engine.custom_hook

    @custom_hook.setter
    def custom_hook(self, hook: Callable[[Any], Any] | None) -> None:
        self._engine.custom_hook = hook

    @property
    def publish_latency(self) -> LatencyHistogram:
        """Seconds from queueing each publish to Redis answering it (a live histogram)."""
        return self._engine.transport.latency

    def health(self) -> AdapterHealth:
        """A snapshot of the adapter's link to Redis, for health checks and dashboards."""
        return self._engine.transport.health()

    # -- lifecycle ----------------------------------------------------------------------

    def initialize(self) -> None:
        """Start the listener (python-socketio calls this on the first connection)."""
        self._engine.initialize()

    async def start(self) -> None:
        """Start listening and return once Redis has confirmed the subscriptions.

        Call it from the ASGI lifespan / aiohttp ``on_startup``, so the server receives
        cross-server traffic before its first client connects. Raises
        :class:`AccessDeniedError` as soon as Redis refuses the credentials or an ACL
        permission, :class:`RedisCommandError` if Redis does not answer within
        ``requests_timeout``; either way the listener keeps retrying in the background.
        """
        if self.server is None:
            raise RuntimeError(
                "pass the adapter to socketio.AsyncServer(client_manager=...) before start()"
            )
        self.server.manager_initialized = True
        self.initialize()
        await self._engine.start()

    async def aclose(self) -> None:
        """Stop listening, drop pending acks and close the Redis clients this adapter owns."""
        if self._recovery is not None:
            await self._recovery.aclose()
        await self._engine.aclose()

    async def __aenter__(self: _Self) -> _Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _server_namespaces(self) -> set[str]:
        names = {"/"}
        server = self.server
        if server is not None:
            names.update(server.handlers)
            names.update(server.namespace_handlers)
            if isinstance(server.namespaces, (list, tuple, set)):
                names.update(server.namespaces)
        return {name for name in names if isinstance(name, str) and name != "*"}

    # -- python-socketio's manager contract ---------------------------------------------

    def set_server(self, server: Any) -> None:
        """Attach; watch CONNECTs (``handshake.auth``); check the hooks of recovery."""
        if self._recovery is not None:
            recovery_host.check(server, self._recovery.pid_of)
        super().set_server(server)
        watch_connects(server, self._connects, self.logger, self._leaving)
        if self._options.direct_writes:
            self._engine.delivery.direct.install(server)

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
        packet = packet_data(event, data)
        local = bool(kwargs.get("ignore_queue"))
        broadcasts = self._engine.broadcasts
        if callback is None:
            await broadcasts.broadcast(namespace, packet, rooms, except_rooms, {}, local)
        else:
            await broadcasts.with_callback(namespace, packet, rooms, except_rooms, callback, local)

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """Register a new socket; return once its own room's channel is subscribed."""
        connect = self._connects.get(eio_sid)
        auth = connect[1] if connect is not None and connect[0] == namespace else None
        engine = self._engine
        channels = engine.plan.ensure(namespace)
        recovery = self._recovery
        restore = await recovery.restore(namespace, auth) if recovery is not None else None
        sid: str | None = None
        if restore is not None and recovery is not None:
            sid = await resume.resume(
                self, engine.local, engine.sockets.disconnect_one, recovery, eio_sid, auth, restore
            )
            restore = restore if sid is not None else None
        if sid is None:
            sid = await super().pre_connect(eio_sid, namespace)
            if sid is not None:
                engine.local.connected(namespace, sid, auth)
        if sid is None:
            engine.release_if_idle(namespace)
            return None
        if engine.wire.multiplexing:
            own = engine.plan.room_channels(namespace, [sid])
            await engine.transport.confirm([channels.broadcast, *own])
        if recovery is not None:
            await recovery.connected(namespace, sid, restore)
        return sid

    async def enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        """Add a socket to a room; for a socket on another server, ask that server."""
        room = check_room(room)
        engine = self._engine
        if eio_sid is not None or engine.local.is_local(sid, namespace):
            self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
            await engine.transport.confirm(engine.plan.room_channels(namespace, [room]))
        else:
            await engine.sockets.enter_room(namespace, sid, room)

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Remove a socket from a room, on whichever server holds it; never its own sid room."""
        if room == sid:
            return
        if self._engine.local.is_local(sid, namespace):
            self.basic_leave_room(sid, namespace, room)
        else:
            await self._engine.sockets.leave_room(namespace, sid, check_room(room))

    async def close_room(self, room: Any, namespace: str) -> None:
        """Make every socket of the cluster leave ``room``."""
        room = check_room(room)
        self.basic_close_room(room, namespace)
        await self._engine.sockets.close_room(namespace, room)

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        """True for a local socket; for a remote one, ask its server and return False."""
        if self._engine.local.is_local(sid, namespace):
            self._engine.local.closing.add((namespace, sid))  # by the server: not recoverable
            return bool(self.is_connected(sid, namespace))
        await self._engine.sockets.disconnect_one(namespace, sid)
        return False

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a local socket, or ask the server that holds it to disconnect it."""
        if not kwargs.get("ignore_queue") and not self._engine.local.is_local(sid, namespace):
            await self._engine.sockets.disconnect_one(namespace, sid)
            return
        if self._recovery is not None:
            await self._recovery.disconnected(namespace, sid, self._recoverable(sid, namespace))
        self.basic_disconnect(sid, namespace, **kwargs)

    def _recoverable(self, sid: str, namespace: str) -> bool:
        """Lost, not closed on purpose by the client (a DISCONNECT packet), the server, or
        a connect handler that refused it."""
        eio_sid = self.eio_sid_from_sid(sid, namespace)
        on_purpose = (eio_sid, namespace) in self._leaving or self.is_pre_connected(sid, namespace)
        return not (on_purpose or (namespace, sid) in self._engine.local.closing)

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a local socket, its rooms and its ``data``; a namespace's last socket
        releases the namespace's channels unless something else keeps it."""
        super().basic_disconnect(sid, namespace, **kwargs)
        self._engine.local.forget(namespace, sid)
        self._engine.release_if_idle(namespace)

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        """Add to a room locally; a room's first member subscribes its channel."""
        if room is not None:
            check_room(room)
        ns = self.rooms.get(namespace)
        created = room is not None and (ns is None or room not in ns)
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if created:
            self._engine.plan.room_created(namespace, room)
        if self._recovery is not None:
            self._recovery.changed(namespace, sid)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Leave a room locally; a room's last member unsubscribes its channel."""
        ns = self.rooms.get(namespace)
        existed = ns is not None and room in ns
        super().basic_leave_room(sid, namespace, room)
        if self._recovery is not None:
            self._recovery.changed(namespace, sid)
        ns = self.rooms.get(namespace)
        if existed and room is not None and (ns is None or room not in ns):
            self._engine.plan.room_emptied(namespace, room)
