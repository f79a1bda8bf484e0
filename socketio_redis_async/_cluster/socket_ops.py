"""Acting on sockets wherever they are: join, leave, disconnect, cluster-wide.

Each reads one way: act on the matching local sockets, then publish a request for the
other servers. A protocol without single-socket requests (sharded) looks the socket up
with ``fetch_sockets`` first and then uses the selector form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import RequestTimeoutError
from .._protocol import answers, messages
from .._protocol.rooms import Room, check_room

if TYPE_CHECKING:
    from .cluster import Cluster
    from .queries import Queries


class SocketOps:
    """Socket operations of one engine."""

    def __init__(self, cluster: Cluster, queries: Queries) -> None:
        self._c = cluster
        self._queries = queries

    async def rooms(
        self,
        nsp: str,
        join: bool,
        selector: list[Room],
        excluded: list[Room],
        target: list[Room],
        local: bool,
    ) -> None:
        """Make the matching sockets of the cluster join or leave ``target``."""
        c = self._c
        c.local.apply_rooms(nsp, join, selector, excluded, target)
        if not local and not c.local.only_local_sid(nsp, selector):
            request = messages.rooms_request(c.uid, join, selector, excluded, target)
            await c.publish_request(nsp, request)
        if join:
            await c.transport.confirm(c.plan.room_channels(nsp, target))

    async def disconnect(
        self, nsp: str, close: bool, selector: list[Room], excluded: list[Room], local: bool
    ) -> None:
        """Disconnect the matching sockets of the cluster."""
        c = self._c
        targets = c.local.recipients(nsp, selector, excluded)
        if not local and not c.local.only_local_sid(nsp, selector):
            request = messages.disconnect_request(c.uid, selector, excluded, close)
            await c.publish_request(nsp, request)
        await c.local.disconnect(nsp, targets, close)

    async def socket_rooms(self, nsp: str, join: bool, sid: str, room: Room) -> None:
        """Make socket ``sid`` join or leave ``room``; RequestTimeoutError if no server
        holds it."""
        c = self._c
        if c.local.is_local(sid, nsp):
            c.local.apply_rooms(nsp, join, [sid], (), [room])
            return
        if not c.wire.single_socket_forms:
            await self._require_remote(nsp, sid)
            await self.rooms(nsp, join, [sid], [], [room], False)
            return
        await c.requests.gather(
            nsp,
            lambda rid: messages.socket_rooms_request(c.uid, rid, join, sid, room),
            answers.nothing,
            what="remoteJoin" if join else "remoteLeave",
            expected=1,
        )

    async def socket_disconnect(self, nsp: str, sid: str, close: bool) -> None:
        """Disconnect socket ``sid``; RequestTimeoutError if no server holds it."""
        c = self._c
        eio_sid = c.local.owner_of(sid, nsp)
        if eio_sid is not None:
            await c.local.disconnect(nsp, [(sid, eio_sid)], close)
            return
        if not c.wire.single_socket_forms:
            await self._require_remote(nsp, sid)
            await self.disconnect(nsp, close, [sid], [], False)
            return
        await c.requests.gather(
            nsp,
            lambda rid: messages.socket_disconnect_request(c.uid, rid, sid, close),
            answers.nothing,
            what="remoteDisconnect",
            expected=1,
        )

    async def _require_remote(self, nsp: str, sid: str) -> None:
        check_room(sid)
        if not await self._queries.holds(nsp, sid):
            raise RequestTimeoutError(f"no server holds socket {sid!r} in {nsp!r}", [], [])

    # -- python-socketio's room calls, for a socket on another server --------------------

    async def enter_room(self, nsp: str, sid: str, room: Room) -> None:
        """Ask the server that holds ``sid`` to add it to ``room`` (bridged servers too)."""
        c = self._c
        await c.publish_request(nsp, messages.rooms_request(c.uid, True, [sid], [], [room]))
        await c.bridged("enter_room", nsp, sid=sid, room=room)

    async def leave_room(self, nsp: str, sid: str, room: Room) -> None:
        """Ask the server that holds ``sid`` to remove it from ``room``."""
        c = self._c
        await c.publish_request(nsp, messages.rooms_request(c.uid, False, [sid], [], [room]))
        await c.bridged("leave_room", nsp, sid=sid, room=room)

    async def close_room(self, nsp: str, room: Room) -> None:
        """Make every socket of the other servers leave ``room``."""
        c = self._c
        await c.publish_request(nsp, messages.rooms_request(c.uid, False, [room], [], [room]))
        await c.bridged("close_room", nsp, room=room)

    async def disconnect_one(self, nsp: str, sid: str) -> None:
        """Ask the server that holds ``sid`` to disconnect it (bridged servers too)."""
        c = self._c
        await c.publish_request(nsp, messages.disconnect_request(c.uid, [sid], [], False))
        await c.bridged("disconnect", nsp, sid=sid)
