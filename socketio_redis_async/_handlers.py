"""Answering the requests other servers (Python or Node) publish on ``K-request#N#``.

One function per request type, dispatched through ``HANDLERS``. Types 0, 1, 5 and 8 are
always answered, even when empty, because requesters count answers against NUMSUB.
Python answers carry an extra ``uid`` field (Node ignores it) so that a Python
requester can tell which servers stayed silent.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio

from . import _codec as codec
from ._channels import NamespaceChannels, Room
from ._errors import MalformedMessage

if TYPE_CHECKING:
    from ._core import AdapterCore

Handler = Callable[["AdapterCore", NamespaceChannels, dict[str, Any]], Awaitable[None]]

CUSTOM_REQUEST_EVENT = "__socketio_redis_custom_request__"
"""The server-side event ``custom_request()`` travels as (SERVER_SIDE_EMIT with ack)."""


def wire_room(room: Any) -> Room:
    """Validate a room received from Redis."""
    if isinstance(room, bool) or not isinstance(room, (str, int)):
        raise MalformedMessage(f"not a room: {room!r:.40}")
    return room


def wire_rooms(value: Any) -> list[Room]:
    """Validate a list of rooms received from Redis."""
    if not isinstance(value, list):
        raise MalformedMessage("rooms must be a list")
    return [wire_room(room) for room in value]


def apply_rooms(
    adapter: AdapterCore,
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
    for sid, _ in adapter._recipients(nsp, selector, excluded):
        for room in rooms:
            if not join:
                if room != sid:
                    adapter.basic_leave_room(sid, nsp, room)
            elif sid == room or not adapter.is_sid_room(nsp, room):
                adapter.basic_enter_room(sid, nsp, room)


async def apply_disconnect(
    adapter: AdapterCore, nsp: str, targets: list[tuple[str, str]], close: bool
) -> None:
    """Disconnect local sockets; ``close`` also closes their Engine.IO connection."""
    for sid, eio_sid in targets:
        if close:
            await close_connection(adapter, eio_sid)
        else:
            await adapter.server.disconnect(sid, namespace=nsp, ignore_queue=True)


async def close_connection(adapter: AdapterCore, eio_sid: str) -> None:
    """Disconnect every namespace of an Engine.IO connection, then close the connection.

    socket.io-client ignores the Engine.IO CLOSE packet on websocket, so without the
    socket.io DISCONNECT packets it would only notice at its ping timeout; with them it
    closes at once with "io server disconnect", as it does with a Node server.
    """
    server = adapter.server
    for namespace in list(adapter.get_namespaces()):
        sid = adapter.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None:
            await server.disconnect(sid, namespace=namespace, ignore_queue=True)
    # python-engineio waits until the connection's queue is written out, which a client
    # that stopped reading never lets happen; the connection is closed either way.
    with anyio.move_on_after(adapter.requests_timeout):
        await server.eio.disconnect(eio_sid)


def _opts(request: dict[str, Any]) -> tuple[list[Room], list[Room]]:
    rooms, excluded, _ = codec.check_opts(request.get("opts"))
    return rooms, excluded


def _foreign(adapter: AdapterCore, request: dict[str, Any]) -> bool:
    """True unless this server sent the request itself."""
    return request.get("uid") != adapter.uid and request.get("requestId") not in adapter._pending


async def _answer(
    adapter: AdapterCore,
    channels: NamespaceChannels,
    request: dict[str, Any],
    answer: dict[str, Any],
    msgpack: bool = False,
) -> None:
    await adapter._respond(channels, request, {**answer, "uid": adapter.uid}, msgpack=msgpack)


async def handle_sockets(
    adapter: AdapterCore, channels: NamespaceChannels, request: dict[str, Any]
) -> None:
    """SOCKETS (0): the sids of local sockets in ``rooms`` (all if empty)."""
    if not _foreign(adapter, request):
        return
    rooms = wire_rooms(request.get("rooms") or [])
    sids = [sid for sid, _ in adapter._recipients(channels.nsp, rooms, ())]
    await _answer(
        adapter, channels, request, {"requestId": request.get("requestId"), "sockets": sids}
    )


async def handle_all_rooms(
    adapter: AdapterCore, channels: NamespaceChannels, request: dict[str, Any]
) -> None:
    """ALL_ROOMS (1): every local room name, socket-id rooms included."""
    if not _foreign(adapter, request):
        return
    rooms = [room for room in adapter.rooms.get(channels.nsp, {}) if room is not None]
    await _answer(
        adapter, channels, request, {"requestId": request.get("requestId"), "rooms": rooms}
    )


async def handle_rooms(
    adapter: AdapterCore, channels: NamespaceChannels, request: dict[str, Any]
) -> None:
    """REMOTE_JOIN (2) / REMOTE_LEAVE (3), selector form or legacy single-sid form."""
    join = request["type"] == codec.REMOTE_JOIN
    nsp = channels.nsp
    if "opts" not in request:  # legacy 6.x/7.x form {requestId, sid, room}: owner answers
        sid = request.get("sid")
        if not isinstance(sid, str) or not adapter._is_local(sid, nsp):
            return
        apply_rooms(adapter, nsp, join, [sid], (), [wire_room(request.get("room"))])
        await _answer(adapter, channels, request, {"requestId": request.get("requestId")})
        return
    if request.get("uid") == adapter.uid:
        return  # applied locally before it was published
    rooms = wire_rooms(request.get("rooms"))
    selector, excluded = _opts(request)
    apply_rooms(adapter, nsp, join, selector, excluded, rooms)


async def handle_disconnect(
    adapter: AdapterCore, channels: NamespaceChannels, request: dict[str, Any]
) -> None:
    """REMOTE_DISCONNECT (4), selector form or legacy single-sid form."""
    nsp = channels.nsp
    close = request.get("close") is True
    if "opts" not in request:
        sid = request.get("sid")
        if not isinstance(sid, str) or not adapter._is_local(sid, nsp):
            return
        await _answer(adapter, channels, request, {"requestId": request.get("requestId")})
        targets = [(sid, adapter.eio_sid_from_sid(sid, nsp))]
    else:
        if request.get("uid") == adapter.uid:
            return
        selector, excluded = _opts(request)
        targets = adapter._recipients(nsp, selector, excluded)
    if targets:
        # The app's disconnect handler runs in a task of its own: if it asks the cluster
        # something, the answers it waits for come through this listener.
        adapter._spawn(apply_disconnect(adapter, nsp, targets, close))


async def handle_fetch(
    adapter: AdapterCore, channels: NamespaceChannels, request: dict[str, Any]
) -> None:
    """REMOTE_FETCH (5): ``{id, handshake, rooms, data}`` of the matching local sockets."""
    if not _foreign(adapter, request):
        return
    selector, excluded = _opts(request)
    sockets = adapter._sockets_details(
        channels.nsp, adapter._recipients(channels.nsp, selector, excluded)
    )
    await _answer(
        adapter, channels, request, {"requestId": request.get("requestId"), "sockets": sockets}
    )


async def handle_server_side_emit(
    adapter: AdapterCore, channels: NamespaceChannels, request: dict[str, Any]
) -> None:
    """SERVER_SIDE_EMIT (6): run the handler; with a requestId, answer once with its result."""
    if request.get("uid") == adapter.uid:
        return
    data = request.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise MalformedMessage("server-side emit data must be [event, ...args]")
    event, args = data[0], data[1:]
    if event == CUSTOM_REQUEST_EVENT:
        handler = adapter.custom_hook
    else:
        handler = adapter._server_handlers.get((channels.nsp, event))
    if handler is None:
        return
    # User code runs in a task of its own, so a handler that asks the cluster something
    # (which needs this listener to read the answers) cannot deadlock it.
    adapter._spawn(_run_server_handler(adapter, channels, request, event, handler, args))


async def _run_server_handler(
    adapter: AdapterCore,
    channels: NamespaceChannels,
    request: dict[str, Any],
    event: str,
    handler: Callable[..., Any],
    args: list[Any],
) -> None:
    try:
        result = handler(*args)
        if inspect.isawaitable(result):
            result = await result
    except Exception:
        adapter.logger.exception("server-side handler for %r raised; no answer is sent", event)
        return
    request_id = request.get("requestId")
    if request_id is not None:
        answer = {
            "type": codec.SERVER_SIDE_EMIT,
            "requestId": request_id,
            "data": result,
            "uid": adapter.uid,
        }
        await adapter._publish_answer(channels.response, request, answer)


async def handle_broadcast(
    adapter: AdapterCore, channels: NamespaceChannels, request: dict[str, Any]
) -> None:
    """BROADCAST (7): deliver with acks; report the client count (8), then each ack (9)."""
    request_id = request.get("requestId")
    if (
        not isinstance(request_id, str)
        or request_id in adapter._acks
        or request.get("uid") == adapter.uid
    ):
        return
    nsp, data = codec.check_packet(request.get("packet"))
    if nsp != channels.nsp:
        return
    rooms, excluded, flags = codec.check_opts(request.get("opts"))
    recipients = adapter._recipients(nsp, rooms, excluded)
    count = {
        "type": codec.BROADCAST_CLIENT_COUNT,
        "requestId": request_id,
        "clientCount": len(recipients),
    }
    await _answer(adapter, channels, request, count)
    if not recipients:
        return

    async def ack(*args: Any) -> None:
        answer = {
            "type": codec.BROADCAST_ACK,
            "requestId": request_id,
            "packet": args[0] if args else None,
        }
        try:
            await _answer(adapter, channels, request, answer, msgpack=True)
        except Exception as exc:
            adapter.logger.error(
                "could not send an ack back to server %s: %s", request.get("uid"), exc
            )

    ack_ids = await adapter._deliver_with_acks(nsp, data, recipients, ack)
    # The requester stops waiting after its timeout; a client that never acks must not
    # keep its callback here until it disconnects.
    adapter._expire_acks(ack_ids, _ack_wait(adapter, flags))


def _ack_wait(adapter: AdapterCore, flags: dict[str, Any]) -> float:
    """Seconds the requester waits for acks: ``flags.timeout`` (ms), else ``ack_timeout``."""
    timeout = flags.get("timeout")
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and 0 < timeout < 1e12:
        return float(timeout) / 1000
    return adapter._options.ack_timeout


HANDLERS: dict[int, Handler] = {
    codec.SOCKETS: handle_sockets,
    codec.ALL_ROOMS: handle_all_rooms,
    codec.REMOTE_JOIN: handle_rooms,
    codec.REMOTE_LEAVE: handle_rooms,
    codec.REMOTE_DISCONNECT: handle_disconnect,
    codec.REMOTE_FETCH: handle_fetch,
    codec.SERVER_SIDE_EMIT: handle_server_side_emit,
    codec.BROADCAST: handle_broadcast,
}
