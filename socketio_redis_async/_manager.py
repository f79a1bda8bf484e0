"""python-socketio's manager contract, on top of the cluster API.

python-socketio calls these (``emit``, ``pre_connect``, ``enter_room``...); each acts on
the local sockets first and publishes for the other servers only when it must.
``set_server`` also watches CONNECT packets, so that ``fetch_sockets`` can report each
socket's ``handshake.auth`` as Node does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._cluster_ops import ClusterOps
from ._operator import rooms_of
from ._protocol import messages
from ._protocol.rooms import check_room


class ManagerOverrides(ClusterOps):
    """The ``socketio.AsyncManager`` methods this adapter overrides."""

    _connect_auth: dict[str, tuple[str, Any]]

    def _keeps(self, nsp: str) -> bool:
        """True while this server serves ``nsp``: it has local sockets there, handlers for
        it (server, namespace or ``adapter.on()``), or declares it."""
        if nsp in self.rooms:
            return True
        if any(name == nsp for name, _ in self._server_handlers):
            return True
        return nsp in self._server_namespaces()

    def _server_namespaces(self) -> set[str]:
        names = {"/"}
        server = self.server
        if server is not None:
            names.update(server.handlers)
            names.update(server.namespace_handlers)
            if isinstance(server.namespaces, (list, tuple, set)):
                names.update(server.namespaces)
        return {name for name in names if isinstance(name, str) and name != "*"}

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
        channels = self._plan.ensure(namespace)
        sid: str | None = await super().pre_connect(eio_sid, namespace)
        if sid is None:
            self._plan.release_if_idle(namespace)
            return None
        self._local.connected(namespace, sid, auth)
        if self._options.with_channel_multiplexing:
            await self._transport.confirm([channels.broadcast, channels.room(sid)])
        return sid

    async def enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        """Add a socket to a room; for a socket on another server, ask that server."""
        room = check_room(room)
        if eio_sid is not None or self._local.is_local(sid, namespace):
            self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
            await self._transport.confirm(self._plan.room_channels(namespace, [room]))
            return
        await self._publish_request(
            namespace, messages.rooms_request(self.uid, True, [sid], [], [room])
        )
        await self._bridged("enter_room", namespace, sid=sid, room=room)

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Remove a socket from a room, on whichever server holds it; never its own sid room."""
        if room == sid:
            return
        if self._local.is_local(sid, namespace):
            self.basic_leave_room(sid, namespace, room)
            return
        request = messages.rooms_request(self.uid, False, [sid], [], [check_room(room)])
        await self._publish_request(namespace, request)
        await self._bridged("leave_room", namespace, sid=sid, room=room)

    async def close_room(self, room: Any, namespace: str) -> None:
        """Make every socket of the cluster leave ``room``."""
        room = check_room(room)
        self.basic_close_room(room, namespace)
        await self._publish_request(
            namespace, messages.rooms_request(self.uid, False, [room], [], [room])
        )
        await self._bridged("close_room", namespace, room=room)

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        """True for a local socket; for a remote one, ask its server and return False."""
        if self._local.is_local(sid, namespace):
            return bool(self.is_connected(sid, namespace))
        await self._remote_disconnect_one(sid, namespace)
        return False

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a local socket, or ask the server that holds it to disconnect it."""
        if not kwargs.get("ignore_queue") and not self._local.is_local(sid, namespace):
            await self._remote_disconnect_one(sid, namespace)
            return
        self.basic_disconnect(sid, namespace, **kwargs)

    async def _remote_disconnect_one(self, sid: str, namespace: str) -> None:
        """Ask the server that holds ``sid`` to disconnect it (bridged servers too)."""
        request = messages.disconnect_request(self.uid, [sid], [], False)
        await self._publish_request(namespace, request)
        await self._bridged("disconnect", namespace, sid=sid)

    async def _bridged(self, method: str, namespace: str, **fields: Any) -> None:
        """Tell AsyncRedisManager servers too, in bridge mode."""
        if self._bridge is not None:
            await self._bridge.publish({"method": method, "namespace": namespace, **fields})

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a local socket, its rooms and its ``data``; a namespace's last socket
        releases the namespace's channels unless something else keeps it."""
        super().basic_disconnect(sid, namespace, **kwargs)
        self._local.forget(namespace, sid)
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
        if created:
            self._plan.room_created(namespace, room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Leave a room locally; a room's last member unsubscribes its channel."""
        ns = self.rooms.get(namespace)
        existed = ns is not None and room in ns
        super().basic_leave_room(sid, namespace, room)
        ns = self.rooms.get(namespace)
        if existed and room is not None and (ns is None or room not in ns):
            self._plan.room_emptied(namespace, room)
