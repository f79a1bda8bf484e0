"""Node's sharded adapter protocol (``createShardedAdapter``, @socket.io/redis-adapter 8.3).

Pure: no I/O. Every message is a ClusterAdapter message ``{uid, nsp, type, data}``:
JSON, or msgpack when a type that may carry bytes does carry them. Channels::

    K#N#        every server: broadcasts and requests (SHARDNUMSUB counts servers here)
    K#N#U#      answers to server U (16 hex characters)
    K#N#<room># broadcasts to exactly one room, in the ``dynamic`` subscription modes

A request decodes straight into ``messages.Request`` and an answer into the answer map
of ``answers``, each field checked by the classic protocol's validators, so that the
responders and the requests layer serve both protocols unchanged.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final, Literal

from .._errors import MalformedMessage
from . import checks, codec
from .channels import NamespaceChannels, glob_escape
from .messages import Broadcast, Request, RequestType, broadcast_parts
from .rooms import Room, wire_rooms

Mode = Literal["static", "dynamic", "dynamic-private"]
MODES: Final = ("static", "dynamic", "dynamic-private")


class MessageType(IntEnum):
    """ClusterAdapter ``MessageType`` (socket.io-adapter 2.5); 1, 2 and 13 are unused here."""

    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12


_MAY_HOLD_BYTES: Final = frozenset({3, 8, 9, 10, 12})
ANSWERS: Final = frozenset({8, 10, 11, 12})
UID_LENGTH: Final = 16


def new_uid() -> str:
    """A server uid as Node's ClusterAdapter makes them: 8 random bytes in hex."""
    return secrets.token_hex(UID_LENGTH // 2)


def is_uid(text: str) -> bool:
    """Whether ``text`` has the shape of a sharded server uid."""
    return len(text) == UID_LENGTH and all(c in "0123456789abcdef" for c in text)


def looks_like_socket_id(room: Room) -> bool:
    """Node's test for a socket-id room: a string of 20 characters."""
    return isinstance(room, str) and len(room) == 20


def check_mode(mode: Any) -> Mode:
    """A subscription mode, or ValueError/TypeError saying which ones exist."""
    if not isinstance(mode, str):
        raise TypeError(f"subscription_mode must be a str, not {type(mode).__name__}")
    if mode not in MODES:
        raise ValueError(f"subscription_mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode  # type: ignore[return-value]


def room_has_channel(mode: Mode, room: Room) -> bool:
    """Whether ``room`` has a channel of its own in ``mode``."""
    return mode == "dynamic-private" or (mode == "dynamic" and not looks_like_socket_id(room))


def channels(key: str, nsp: str) -> NamespaceChannels:
    """The channels of ``nsp``, in the classic channel set's terms: requests, broadcasts
    and answers share ``K#N#``, and ``room()``/``response_for()`` append ``<name>#``."""
    main = f"{key}#{nsp}#"  # the broadcast channel and its pattern, then requests and answers
    return NamespaceChannels(key, nsp, main, glob_escape(main) + "*", request=main, response=main)


def broadcast_channel(chans: NamespaceChannels, mode: Mode, rooms: list[Room]) -> str:
    """Where a broadcast without acks goes (Node's ``computeChannel``)."""
    if len(rooms) == 1 and room_has_channel(mode, rooms[0]):
        return chans.room(rooms[0])
    return chans.broadcast


# -- encoding ------------------------------------------------------------------------------


def has_bytes(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` holds bytes anywhere (Node's ``hasBinary``)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    if depth > codec.MAX_DEPTH:
        return False
    if isinstance(value, (list, tuple)):
        return any(has_bytes(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return any(has_bytes(item, depth + 1) for item in value.values())
    return False


def encode(uid: str, nsp: str, kind: MessageType, data: dict[str, Any]) -> bytes:
    """A message's bytes: msgpack if it may and does hold bytes, JSON otherwise."""
    message = {"uid": uid, "nsp": nsp, "type": int(kind), "data": data}
    if kind in _MAY_HOLD_BYTES:
        try:  # the common case first: plain JSON data (bytes make json.dumps raise)
            return json.dumps(message, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            if has_bytes(data):
                return codec.pack(message)
    return codec.dump_json(message)


def encode_broadcast(
    uid: str,
    nsp: str,
    data: list[Any],
    rooms: list[Room],
    except_rooms: list[Room],
    flags: dict[str, Any],
) -> bytes:
    """A broadcast without acks."""
    packet, opts = broadcast_parts(nsp, data, rooms, except_rooms, flags)
    return encode(uid, nsp, MessageType.BROADCAST, {"packet": packet, "opts": opts})


def encode_request(uid: str, nsp: str, request: dict[str, Any]) -> bytes:
    """A classic request map (see ``messages``) as the sharded message that does the same."""
    kind, body = request_message(request)
    return encode(uid, nsp, kind, body)


def request_message(request: dict[str, Any]) -> tuple[MessageType, dict[str, Any]]:
    """A classic request map as the ClusterAdapter type and data that do the same; SOCKETS,
    ALL_ROOMS and single-socket forms have none (ValueError: the engine builds those)."""
    kind, request_id, opts = request.get("type"), request.get("requestId"), request.get("opts")
    if isinstance(opts, dict):
        opts = {"rooms": opts.get("rooms", []), "except": opts.get("except", []), "flags": {}}
    if kind in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE) and opts is not None:
        join = kind == RequestType.REMOTE_JOIN
        sharded = MessageType.SOCKETS_JOIN if join else MessageType.SOCKETS_LEAVE
        return sharded, {"opts": opts, "rooms": request["rooms"]}
    if kind == RequestType.REMOTE_DISCONNECT and opts is not None:
        return MessageType.DISCONNECT_SOCKETS, {"opts": opts, "close": request.get("close") is True}
    if kind == RequestType.REMOTE_FETCH:
        return MessageType.FETCH_SOCKETS, {"opts": opts, "requestId": request_id}
    if kind == RequestType.SERVER_SIDE_EMIT:
        body = {"packet": request["data"]}
        if request_id is not None:
            body["requestId"] = request_id
        return MessageType.SERVER_SIDE_EMIT, body
    if kind == RequestType.BROADCAST:
        body = {"packet": request["packet"], "opts": request["opts"], "requestId": request_id}
        return MessageType.BROADCAST, body
    raise ValueError(f"request type {kind!r} has no equivalent in the sharded protocol")


def answer_message(
    value: dict[str, Any], answering: RequestType
) -> tuple[MessageType, dict[str, Any]]:
    """A classic answer map (see ``answers``) to a request of type ``answering``, as the
    sharded answer's type and data. An ``error`` field is kept (Node ignores it)."""
    body: dict[str, Any] = {"requestId": value.get("requestId")}
    if "error" in value:
        body["error"] = value["error"]
    if answering == RequestType.REMOTE_FETCH:
        body["sockets"] = value.get("sockets", [])
        return MessageType.FETCH_SOCKETS_RESPONSE, body
    if answering == RequestType.SERVER_SIDE_EMIT:
        body["packet"] = value.get("data")
        return MessageType.SERVER_SIDE_EMIT_RESPONSE, body
    if value.get("type") == RequestType.BROADCAST_CLIENT_COUNT:
        body["clientCount"] = value["clientCount"]
        return MessageType.BROADCAST_CLIENT_COUNT, body
    if value.get("type") == RequestType.BROADCAST_ACK:
        body["packet"] = value.get("packet")
        return MessageType.BROADCAST_ACK, body
    raise ValueError(f"requests of type {answering!r} are not answered in the sharded protocol")


def encode_answer(
    uid: str, nsp: str, value: dict[str, Any], answering: RequestType, limit: int, pack: Any = None
) -> tuple[bytes, str | None]:
    """An answer's bytes (``pack(uid, nsp, type, data)``, default ``encode``), at most
    ``limit`` of them, and the error if it was too large: then it has empty lists and an
    ``error`` (a Python requester raises AnswerTooLargeError; a Node one counts an empty
    answer); a too large ack is the caller's data: ValueError."""
    encode_ = pack or encode
    kind, body = answer_message(value, answering)
    payload = encode_(uid, nsp, kind, body)
    if len(payload) <= limit:
        return payload, None
    if kind == MessageType.BROADCAST_ACK:
        raise ValueError(f"the ack is {len(payload)} bytes, over max_answer_size={limit}")
    error = (
        f"answer too large: {len(payload)} bytes is over max_answer_size={limit} on server {uid}"
    )
    shaped = {key: [] if isinstance(field, list) else field for key, field in body.items()}
    if kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
        shaped["packet"] = None
    shaped["error"] = error
    return encode_(uid, nsp, kind, shaped), error


# -- decoding ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A validated sharded message."""

    uid: str
    nsp: str
    kind: int
    data: dict[str, Any]
    binary: bool


def decode(payload: bytes) -> Message:
    """Decode and validate the envelope, or raise MalformedMessage."""
    value = codec.decode_request(payload)
    uid, nsp, kind, data = (value.get(k) for k in ("uid", "nsp", "type", "data"))
    if not isinstance(uid, str) or not isinstance(nsp, str):
        raise MalformedMessage("a sharded message needs a string uid and nsp")
    if type(kind) is not int:
        raise MalformedMessage(f"a sharded message type must be an integer, not {kind!r:.20}")
    if not isinstance(data, dict):
        raise MalformedMessage("a sharded message needs a data map")
    return Message(uid, nsp, kind, data, payload[:1] != b"{")


def as_broadcast(msg: Message) -> Broadcast | None:
    """A BROADCAST (3) without acks as the broadcast to deliver; None for any other."""
    if msg.kind != MessageType.BROADCAST or "requestId" in msg.data:
        return None
    nsp, data = checks.check_packet(msg.data.get("packet"))
    rooms, except_rooms, flags = checks.check_opts(msg.data.get("opts"))
    return Broadcast(msg.uid, nsp, data, rooms, except_rooms, flags, None if msg.binary else False)


def as_answer(msg: Message) -> dict[str, Any] | None:
    """An answer (8, 10, 11, 12) in the classic shape the requests layer reads."""
    data, head = msg.data, {"requestId": checks.check_request_id(msg.data), "uid": msg.uid}
    if "error" in data:
        head["error"] = data["error"]
    if msg.kind == MessageType.FETCH_SOCKETS_RESPONSE:
        return {**head, "sockets": data.get("sockets")}
    if msg.kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
        return {**head, "type": int(RequestType.SERVER_SIDE_EMIT), "data": data.get("packet")}
    if msg.kind == MessageType.BROADCAST_CLIENT_COUNT:
        count = int(RequestType.BROADCAST_CLIENT_COUNT)
        return {**head, "type": count, "clientCount": data.get("clientCount")}
    if msg.kind == MessageType.BROADCAST_ACK:
        return {**head, "type": int(RequestType.BROADCAST_ACK), "packet": data.get("packet")}
    return None


_REQUESTS: Final[dict[int, RequestType]] = {
    MessageType.BROADCAST: RequestType.BROADCAST,  # with acks (a requestId)
    MessageType.SOCKETS_JOIN: RequestType.REMOTE_JOIN,
    MessageType.SOCKETS_LEAVE: RequestType.REMOTE_LEAVE,
    MessageType.DISCONNECT_SOCKETS: RequestType.REMOTE_DISCONNECT,
    MessageType.FETCH_SOCKETS: RequestType.REMOTE_FETCH,
    MessageType.SERVER_SIDE_EMIT: RequestType.SERVER_SIDE_EMIT,
}


def as_request(msg: Message) -> Request | None:
    """A request (3 with acks, 4-7, 9) as the ``messages.Request`` that does the same (never
    ``accepts_zlib``), each field checked once by the shared validators; None for others."""
    data, kind = msg.data, _REQUESTS.get(msg.kind)
    if kind is None or (kind == RequestType.BROADCAST and "requestId" not in data):
        return None
    head: dict[str, Any] = {"uid": msg.uid, "request_id": checks.check_request_id(data)}
    if kind == RequestType.SERVER_SIDE_EMIT:
        emitted = checks.check_event_data(data.get("packet"), "server-side emit data")
        return Request(kind, **head, data=emitted)
    selector, excluded, flags = checks.check_opts(data.get("opts"))
    head.update(selector=selector, excluded=excluded)
    if kind in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE):
        return Request(kind, **head, rooms=wire_rooms(data.get("rooms"), required=True))
    if kind == RequestType.REMOTE_DISCONNECT:
        return Request(kind, **head, close=data.get("close") is True)
    if kind == RequestType.REMOTE_FETCH:
        return Request(kind, **head)
    if head["request_id"] is None:
        raise MalformedMessage("a broadcast with acks needs a string requestId")
    nsp, packet = checks.check_packet(data.get("packet"))
    return Request(kind, **head, data=packet, nsp=nsp, flags=flags)
