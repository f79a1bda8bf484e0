"""This server's sockets, as the responders and the cluster API see them (``LocalView``).

It reads python-socketio's own bookkeeping (``manager.rooms``: namespace -> room ->
{sid: eio_sid}, the ``None`` room holding every socket) and keeps what Node reports
that python-socketio does not: when a socket connected, its ``data`` and its auth.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from .._protocol.rooms import Room, int_room
from .delivery import Delivery, Recipients
from .handshake import build_handshake
from .host import Host


class LocalSockets:
    """The local sockets of one python-socketio manager (implements ``LocalView``)."""

    def __init__(
        self,
        manager: Host,
        delivery: Delivery,
        *,
        redact_headers: frozenset[str],
        redact_query: frozenset[str],
        close_timeout: float,
    ) -> None:
        self._manager = manager
        self.delivery = delivery
        self._redact_headers = redact_headers
        self._redact_query = redact_query
        self._close_timeout = close_timeout
        self.info: dict[tuple[str, str], list[Any]] = {}
        """(namespace, sid) -> [issued, data, auth] of each local socket."""
        self.closing: set[tuple[str, str]] = set()
        """(namespace, sid) of each socket the server is disconnecting."""

    def recipients(self, nsp: str, rooms: Iterable[Room], excluded: Iterable[Room]) -> Recipients:
        """Local (sid, eio_sid) pairs in any of ``rooms`` (all if none) and in no excluded room."""
        ns = self._manager.rooms.get(nsp)
        if not ns:
            return []
        rooms = list(rooms)
        if not excluded and len(rooms) <= 1:
            only = ns.get(rooms[0] if rooms else None)
            return list(only.items()) if only else []
        if not rooms:
            members: dict[str, str] = dict(ns.get(None, {}))
        elif len(rooms) == 1:
            members = dict(ns.get(rooms[0], {}))
        else:
            members = {}
            for room in rooms:
                if room in ns:
                    members.update(ns[room])
        for room in excluded:
            for sid in ns.get(room, ()):
                members.pop(sid, None)
        return list(members.items())

    def room_names(self, nsp: str) -> list[Room]:
        """Every local room of ``nsp``, socket-id rooms included."""
        return [room for room in self._manager.rooms.get(nsp, {}) if room is not None]

    def owner_of(self, sid: str, nsp: str) -> str | None:
        """The eio sid of local socket ``sid``, None if it is not local."""
        eio_sid: str | None = self._manager.rooms.get(nsp, {}).get(None, {}).get(sid)
        return eio_sid

    def is_local(self, sid: str, nsp: str) -> bool:
        return self.owner_of(sid, nsp) is not None

    def only_local_sid(self, nsp: str, rooms: list[Room]) -> bool:
        """Whether ``rooms`` is exactly one socket id of this server (nothing to publish)."""
        return len(rooms) == 1 and isinstance(rooms[0], str) and self.is_local(rooms[0], nsp)

    def has_room(self, nsp: str, room: str) -> bool:
        """Whether ``nsp`` has a local room named ``room`` as a channel spells it."""
        ns = self._manager.rooms.get(nsp, {})
        if room in ns:
            return True
        number = int_room(room)
        return number is not None and number in ns

    def connected(self, nsp: str, sid: str, auth: Any) -> None:
        self.info[(nsp, sid)] = [time.time(), None, auth]

    def forget(self, nsp: str, sid: str) -> None:
        self.info.pop((nsp, sid), None)
        self.closing.discard((nsp, sid))

    def describe(self, nsp: str, recipients: Recipients) -> list[dict[str, Any]]:
        """``{id, handshake, rooms, data}`` of local sockets, as fetch_sockets reports them.

        Rooms come from one pass over the namespace's rooms (python-socketio's
        ``get_rooms`` scans them all for each socket: quadratic for big answers).
        """
        rooms: dict[str, list[Room]] = {sid: [] for sid, _ in recipients}
        for name, members in self._manager.rooms.get(nsp, {}).items():
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
        server = self._manager.server
        environs = server.environ if server is not None else {}
        details = []
        for sid, eio_sid in recipients:
            issued, data, auth = self.info.get((nsp, sid), (time.time(), None, None))
            handshake = build_handshake(
                environs.get(eio_sid),
                issued,
                auth,
                redact_headers=self._redact_headers,
                redact_query=self._redact_query,
            )
            details.append({"id": sid, "handshake": handshake, "rooms": rooms[sid], "data": data})
        return details

    def apply_rooms(
        self,
        nsp: str,
        join: bool,
        selector: Iterable[Room],
        excluded: Iterable[Room],
        rooms: list[Room],
    ) -> None:
        """Make the matching local sockets join or leave ``rooms`` (Node's addSockets/delSockets).

        A socket never joins another socket's sid room, nor leaves its own: emits to its sid
        would be lost until it disconnects.
        """
        manager = self._manager
        for sid, _ in self.recipients(nsp, selector, excluded):
            for room in rooms:
                if not join:
                    if room != sid:
                        manager.basic_leave_room(sid, nsp, room)
                elif sid == room or not manager.is_sid_room(nsp, room):
                    manager.basic_enter_room(sid, nsp, room)

    async def disconnect(self, nsp: str, targets: Recipients, close: bool) -> None:
        """Disconnect local sockets; ``close`` also closes their Engine.IO connection."""
        for sid, eio_sid in targets:
            if close:
                await self._close_connection(eio_sid)
            else:
                await self.server_disconnect(nsp, sid)

    async def server_disconnect(self, nsp: str, sid: str) -> None:
        """python-socketio's ``disconnect(sid)``, noted in ``closing`` while it runs (a
        disconnect by the server cannot be recovered)."""
        self.closing.add((nsp, sid))
        try:
            await self._manager.server.disconnect(sid, namespace=nsp, ignore_queue=True)
        finally:
            self.closing.discard((nsp, sid))

    async def _close_connection(self, eio_sid: str) -> None:
        """Disconnect every namespace of an Engine.IO connection, then close the connection.

        socket.io-client ignores the Engine.IO CLOSE packet on websocket, so without the
        socket.io DISCONNECT packets it would only notice at its ping timeout; with them it
        closes at once with "io server disconnect", as it does with a Node server.
        """
        manager = self._manager
        server = manager.server
        for namespace in list(manager.get_namespaces()):
            sid = manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None:
                await self.server_disconnect(namespace, sid)
        # python-engineio waits until the connection's queue is written out, which a client
        # that stopped reading never lets happen; the connection is closed either way.
        with anyio.move_on_after(self._close_timeout):
            await server.eio.disconnect(eio_sid)

    async def deliver_with_acks(
        self,
        nsp: str,
        data: list[Any],
        recipients: Recipients,
        callback: Callable[..., Any],
        expire_after: float,
    ) -> None:
        """Send with an ack id per recipient; forget the callbacks after ``expire_after`` s."""
        await self.delivery.deliver_with_acks(nsp, data, recipients, callback, expire_after)
