"""The messages of Node's classic Redis adapter protocol: their types, builders and checks.

Pure: no I/O. Every message published is built here and every field received is checked
by one rule here, for both protocols. Broadcasts are msgpack ``[uid, packet, opts]``;
requests are JSON maps, except BROADCAST (7), which is msgpack.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from .._errors import MalformedMessage
from . import codec
from .checks import EVENT, check_event_data, check_opts, check_packet, check_request_id
from .rooms import Room, wire_room, wire_rooms


class RequestType(IntEnum):
    """Request and response types (``RequestType`` of @socket.io/redis-adapter 8.x)."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


EMITTER_UID: Final = "emitter"
"""The uid Node's emitter signs its broadcasts with."""
RESERVED_EVENTS: Final = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
CUSTOM_REQUEST_EVENT: Final = "__socketio_redis_custom_request__"
"""The server-side event ``custom_request()`` travels as (SERVER_SIDE_EMIT with ack)."""


def check_event(event: Any) -> str:
    """An event name the application emits, or TypeError/ValueError."""
    if not isinstance(event, str):
        raise TypeError(f"the event name must be a str, not {type(event).__name__}")
    if event in RESERVED_EVENTS:
        raise ValueError(f"{event!r} is a reserved event name; pick another name")
    return event


def new_request_id() -> str:
    """A random request id, opaque to every peer."""
    return codec.random_id(12)


def new_uid() -> str:
    """A random server uid."""
    return codec.random_id(8)


# -- broadcasts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A validated broadcast: ``data`` is ``[event, *args]``."""

    uid: str
    nsp: str
    data: list[Any]
    rooms: list[Room]
    except_rooms: list[Room]
    flags: dict[str, Any]
    binary: bool | None = None
    """False when the data certainly holds no bytes; None when it may."""


def encode_broadcast(
    uid: str,
    nsp: str,
    data: list[Any],
    rooms: list[Room],
    except_rooms: list[Room],
    flags: dict[str, Any],
) -> bytes:
    """A server's broadcast: ``[uid, {type: 2, data, nsp}, {rooms, except, flags}]``."""
    return codec.pack([uid, *broadcast_parts(nsp, data, rooms, except_rooms, flags)])


def broadcast_parts(
    nsp: str, data: list[Any], rooms: list[Room], except_rooms: list[Room], flags: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A broadcast's packet ``{type: 2, data, nsp}`` and options ``{rooms, except, flags}``."""
    packet = {"type": EVENT, "data": data, "nsp": nsp}
    return packet, {"rooms": rooms, "except": except_rooms, "flags": flags}


def encode_emitter_broadcast(
    nsp: str, data: list[Any], rooms: list[Room], except_rooms: list[Room], flags: dict[str, Any]
) -> bytes:
    """An emitter's broadcast, in @socket.io/redis-emitter's field order."""
    opts = {"rooms": rooms, "flags": flags, "except": except_rooms}
    return codec.pack([EMITTER_UID, {"type": EVENT, "data": data, "nsp": nsp}, opts])


def decode_broadcast(payload: bytes) -> Broadcast:
    """Decode and validate a broadcast, or raise MalformedMessage."""
    msg, holds_bytes = codec.unpack_marked(payload)
    if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[0], str):
        raise MalformedMessage("a broadcast must be [uid, packet, opts]")
    nsp, data = check_packet(msg[1])
    rooms, except_rooms, flags = check_opts(msg[2])
    return Broadcast(msg[0], nsp, data, rooms, except_rooms, flags, None if holds_bytes else False)


# -- requests: one builder per type ---------------------------------------------------------
# ``uid`` is None for an emitter's requests (Node's emitter sends none). The requests
# layer adds ``requestId`` (and ``zlib``) to those that wait for answers.


def _opts(selector: list[Room], excluded: list[Room]) -> dict[str, Any]:
    return {"rooms": selector, "except": excluded}


def _signed(uid: str | None, request_id: str | None, kind: RequestType) -> dict[str, Any]:
    head = {"uid": uid, "requestId": request_id, "type": int(kind)}  # in Node's order
    return {key: value for key, value in head.items() if value is not None}


def sockets_request(uid: str, request_id: str, rooms: list[Room]) -> dict[str, Any]:
    """SOCKETS (0): the sids of each server's sockets in ``rooms`` (all if empty)."""
    return {**_signed(uid, request_id, RequestType.SOCKETS), "rooms": rooms}


def all_rooms_request(uid: str, request_id: str) -> dict[str, Any]:
    """ALL_ROOMS (1): every room of each server."""
    return _signed(uid, request_id, RequestType.ALL_ROOMS)


def rooms_request(
    uid: str | None, join: bool, selector: list[Room], excluded: list[Room], rooms: list[Room]
) -> dict[str, Any]:
    """REMOTE_JOIN (2) / REMOTE_LEAVE (3): the matching sockets join or leave ``rooms``."""
    kind = RequestType.REMOTE_JOIN if join else RequestType.REMOTE_LEAVE
    return {**_signed(uid, None, kind), "opts": _opts(selector, excluded), "rooms": rooms}


def socket_rooms_request(
    uid: str, request_id: str, join: bool, sid: str, room: Room
) -> dict[str, Any]:
    """REMOTE_JOIN (2) / REMOTE_LEAVE (3) for one socket (6.x/7.x form: its server answers)."""
    kind = RequestType.REMOTE_JOIN if join else RequestType.REMOTE_LEAVE
    return {**_signed(uid, request_id, kind), "sid": sid, "room": room}


def disconnect_request(
    uid: str | None, selector: list[Room], excluded: list[Room], close: bool
) -> dict[str, Any]:
    """REMOTE_DISCONNECT (4): disconnect the matching sockets."""
    kind = RequestType.REMOTE_DISCONNECT
    return {**_signed(uid, None, kind), "opts": _opts(selector, excluded), "close": close}


def socket_disconnect_request(uid: str, request_id: str, sid: str, close: bool) -> dict[str, Any]:
    """REMOTE_DISCONNECT (4) for one socket (6.x/7.x form: its server answers)."""
    return {**_signed(uid, request_id, RequestType.REMOTE_DISCONNECT), "sid": sid, "close": close}


def fetch_request(
    uid: str | None, request_id: str, selector: list[Room], excluded: list[Room]
) -> dict[str, Any]:
    """REMOTE_FETCH (5): ``{id, handshake, rooms, data}`` of the matching sockets."""
    return {**_signed(uid, request_id, RequestType.REMOTE_FETCH), "opts": _opts(selector, excluded)}


def server_side_emit_request(
    uid: str, data: list[Any], request_id: str | None = None
) -> dict[str, Any]:
    """SERVER_SIDE_EMIT (6): ``data`` is ``[event, *args]``; with a request id, answered."""
    return {**_signed(uid, request_id, RequestType.SERVER_SIDE_EMIT), "data": data}


def broadcast_request(
    uid: str,
    request_id: str,
    nsp: str,
    data: list[Any],
    rooms: list[Room],
    except_rooms: list[Room],
    flags: dict[str, Any],
) -> dict[str, Any]:
    """BROADCAST (7): a broadcast whose receivers report counts and acks (msgpack)."""
    packet, opts = broadcast_parts(nsp, data, rooms, except_rooms, flags)
    return {**_signed(uid, request_id, RequestType.BROADCAST), "packet": packet, "opts": opts}


def encode_request(request: dict[str, Any]) -> bytes:
    """A request's bytes: msgpack for BROADCAST (7), JSON for every other type."""
    if request.get("type") == RequestType.BROADCAST:
        return codec.pack(request)
    return codec.dump_json(request)


# -- requests received --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A validated request from another server or an emitter: ``selector``/``excluded``
    are the ``opts`` rooms; ``sid`` is set (``selector`` None) in the 6.x/7.x single-socket
    form of types 2-4."""

    kind: RequestType
    uid: str | None
    request_id: str | None
    selector: list[Room] | None = None
    excluded: list[Room] | None = None
    rooms: list[Room] | None = None
    sid: str | None = None
    close: bool = False
    data: list[Any] | None = None
    nsp: str | None = None
    flags: dict[str, Any] | None = None
    accepts_zlib: bool = False
    """Whether the requester (a Python server, classic protocol) takes compressed answers."""


def parse_request(raw: dict[str, Any]) -> Request | None:
    """Validate a decoded request; None for a type no server answers (responses, unknown),
    MalformedMessage for a known type with invalid fields."""
    kind = raw.get("type")
    if type(kind) is not int or not 0 <= kind <= RequestType.BROADCAST:
        return None
    kind = RequestType(kind)
    uid = raw.get("uid") if isinstance(raw.get("uid"), str) else None
    head: dict[str, Any] = {"kind": kind, "uid": uid, "request_id": check_request_id(raw)}
    head["accepts_zlib"] = raw.get("zlib") is True
    if kind == RequestType.SOCKETS:
        return Request(**head, rooms=wire_rooms(raw.get("rooms")))
    if kind == RequestType.ALL_ROOMS:
        return Request(**head)
    if kind in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE, RequestType.REMOTE_DISCONNECT):
        close = raw.get("close") is True
        if raw.get("opts") is None:  # Node's ``if (request.opts)``: the single-socket form
            sid = raw.get("sid")
            if not isinstance(sid, str):
                return None  # no socket to look for
            room = None if kind == RequestType.REMOTE_DISCONNECT else [wire_room(raw.get("room"))]
            return Request(**head, sid=sid, rooms=room, close=close)
        selector, excluded, _ = check_opts(raw["opts"])
        disconnect = kind == RequestType.REMOTE_DISCONNECT
        rooms = None if disconnect else wire_rooms(raw.get("rooms"), required=True)
        return Request(**head, selector=selector, excluded=excluded, rooms=rooms, close=close)
    if kind == RequestType.REMOTE_FETCH:
        selector, excluded, _ = check_opts(raw.get("opts"))
        return Request(**head, selector=selector, excluded=excluded)
    if kind == RequestType.SERVER_SIDE_EMIT:
        return Request(**head, data=check_event_data(raw.get("data"), "server-side emit data"))
    if head["request_id"] is None:
        return None  # BROADCAST (7) without a request id: nothing to answer
    nsp, data = check_packet(raw.get("packet"))
    selector, excluded, flags = check_opts(raw.get("opts"))
    return Request(**head, selector=selector, excluded=excluded, data=data, nsp=nsp, flags=flags)
