"""What python-socketio's manager does for a recovered socket, in place of a new one.

``register`` is python-socketio's ``pre_connect`` with the old sid, rooms and data;
``replay`` writes the missed packets to the connection. The manager calls them one after
the other with no await in between, so that no live packet reaches the socket before its
replay, and none is in both (see ``Recovery.missed``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from socketio import packet

from .._local.host import Host
from .._local.sockets import LocalSockets
from .recovery import Recovery
from .sessions import Restore, Session


async def resume(
    host: Host,
    local: LocalSockets,
    disconnect_remote: Callable[[str, str], Awaitable[None]],
    recovery: Recovery,
    eio_sid: str,
    auth: Any,
    restore: Restore,
) -> str | None:
    """Register a recovered socket: its old connection closed first (here, or wherever
    it may still be), then, with no await in between, its sid, rooms and data, and the
    packets it missed. Its sid; None if Redis failed meanwhile (the caller makes a new
    session) or if this connection is already in the namespace."""
    nsp, sid = restore.nsp, restore.session.sid
    if local.is_local(sid, nsp):
        await local.server_disconnect(nsp, sid)
    else:
        with contextlib.suppress(Exception):  # if Redis refused it: gone at its ping timeout
            await disconnect_remote(nsp, sid)
    if not await recovery.catch_up(restore):  # what came while this awaited
        return None
    if not register(host, eio_sid, nsp, restore.session):
        return None
    local.connected(nsp, sid, auth)
    local.info[(nsp, sid)][1] = restore.session.data
    await replay(host.server, eio_sid, nsp, recovery.missed(restore))
    return sid


def register(host: Host, eio_sid: str, nsp: str, session: Session) -> bool:
    """Enter the old sid, for ``eio_sid``, into the session's rooms (False if that
    connection is already in ``nsp``)."""
    sid = session.sid
    ns = host.rooms.get(nsp, {})
    if eio_sid in ns.get(None, {}).values():
        return False
    host.basic_enter_room(sid, nsp, None, eio_sid=eio_sid)
    host.basic_enter_room(sid, nsp, sid, eio_sid=eio_sid)
    for room in session.rooms:
        if room != sid:
            host.basic_enter_room(sid, nsp, room, eio_sid=eio_sid)
    pending: dict[str, list[str]] = host.pending_connect  # type: ignore[attr-defined]
    pending.setdefault(nsp, []).append(sid)
    return True


async def replay(server: Any, eio_sid: str, nsp: str, packets: list[list[Any]]) -> None:
    """Write the missed packets, in order, before the CONNECT answer (as Node does; the
    client holds them until it is connected). Engine.IO queues them without waiting."""
    for data in packets:
        await server._send_packet(eio_sid, server.packet_class(packet.EVENT, data, nsp))
