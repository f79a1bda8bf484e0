"""Answers to requests: their builders, compression, the size limit, and their reading.

Pure: no I/O. Answers are JSON, except BROADCAST_ACK (9), which is msgpack. Python
answers carry an extra ``uid`` field (Node ignores it) so that a Python requester can
tell which servers stayed silent. A Python requester sends ``zlib: true``; a large JSON
answer to it travels compressed, as msgpack ``{type?, requestId, uid, zlib: <bytes>}``.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

from .._errors import MalformedMessage
from . import codec
from .channels import NamespaceChannels
from .messages import RequestType
from .rooms import Room, wire_rooms

ZLIB: Final = "zlib"
"""Request field by which a Python requester accepts zlib-compressed answers (Node
requesters never send it, so they always get plain answers)."""
COMPRESS_FROM: Final = 64 * 1024
"""Answers smaller than this (in JSON bytes) are sent plain."""
_KEPT: Final = ("type", "requestId", "uid")


def answer(request_id: Any, uid: str, **fields: Any) -> dict[str, Any]:
    """``{requestId, **fields, uid}``: an answer to types 0-5."""
    return {"requestId": request_id, **fields, "uid": uid}


def server_side_answer(request_id: Any, uid: str, data: Any) -> dict[str, Any]:
    """The answer to a SERVER_SIDE_EMIT (6) with ack: the handler's result."""
    return {
        "type": int(RequestType.SERVER_SIDE_EMIT),
        "requestId": request_id,
        "data": data,
        "uid": uid,
    }


def client_count_answer(request_id: str, uid: str, count: int) -> dict[str, Any]:
    """BROADCAST_CLIENT_COUNT (8): how many local clients a BROADCAST (7) reached."""
    kind = int(RequestType.BROADCAST_CLIENT_COUNT)
    return {"type": kind, "requestId": request_id, "clientCount": count, "uid": uid}


def ack_answer(request_id: str, uid: str, packet: Any) -> dict[str, Any]:
    """BROADCAST_ACK (9): one client's ack (its first argument), sent as msgpack."""
    kind = int(RequestType.BROADCAST_ACK)
    return {"type": kind, "requestId": request_id, "packet": packet, "uid": uid}


def channel_for(channels: NamespaceChannels, requester: str | None, value: dict[str, Any]) -> str:
    """Where an answer goes: the requester's own response channel when it has one (a
    Python or Node >= 7.1 server), else the namespace's; always the latter for type 6,
    as Node sends it."""
    if value.get("type") == RequestType.SERVER_SIDE_EMIT or not requester or "#" in requester:
        return channels.response
    return channels.response_for(requester)


def encode_answer(
    value: dict[str, Any], *, accepts_zlib: bool, limit: int
) -> tuple[bytes, str | None]:
    """The bytes of an answer, at most ``limit`` of them, and the error if it was too large.

    An answer still over the limit once compressed (where the requester accepts that) is
    replaced by ``{type?, requestId, <list fields empty>, uid, error}``: a Python requester
    raises AnswerTooLargeError, a Node requester counts an empty answer instead of waiting
    for a timeout. An ack over the limit raises ValueError: acks are the caller's data.
    """
    msgpack = value.get("type") == RequestType.BROADCAST_ACK
    payload = codec.pack(value) if msgpack else codec.dump_json(value)
    if not msgpack and accepts_zlib and len(payload) >= COMPRESS_FROM:
        payload = compress(value, payload)
    if len(payload) <= limit:
        return payload, None
    if msgpack:
        raise ValueError(f"the ack is {len(payload)} bytes, over max_answer_size={limit}")
    error = (
        f"answer too large: {len(payload)} bytes is over max_answer_size={limit} "
        f"on server {value.get('uid')}"
    )
    shaped = {
        key: field
        if key in ("type", "requestId", "uid")
        else []
        if isinstance(field, list)
        else None
        for key, field in value.items()
    }
    shaped["error"] = error
    return codec.dump_json(shaped), error


def compress(value: dict[str, Any], payload: bytes) -> bytes:
    """``payload`` (the JSON answer) as msgpack ``{type?, requestId, uid, zlib: <bytes>}``."""
    head = {key: value[key] for key in ("type", "requestId", "uid") if key in value}
    return codec.pack({**head, ZLIB: zlib.compress(payload, 1)})


def expand(response: dict[str, Any], limit: int) -> dict[str, Any]:
    """The answer a compressed one carries, at most ``limit`` bytes of JSON once expanded."""
    data = response[ZLIB]
    try:
        inflater = zlib.decompressobj()
        payload = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise MalformedMessage(f"invalid compressed answer: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise MalformedMessage(f"compressed answer over {limit} bytes once expanded")
    return codec.decode_request(payload)


# -- reading answers: each raises KeyError/TypeError/MalformedMessage if unusable -----------


def sids_of(value: dict[str, Any]) -> list[str]:
    """The sids a SOCKETS (0) answer lists."""
    return [sid for sid in value["sockets"] if isinstance(sid, str)]


def rooms_of(value: dict[str, Any]) -> list[Room]:
    """The rooms an ALL_ROOMS (1) answer lists."""
    return wire_rooms(value["rooms"])


def sockets_of(value: dict[str, Any]) -> list[dict[str, Any]]:
    """The socket descriptions a REMOTE_FETCH (5) answer lists."""
    found = value["sockets"]
    if not isinstance(found, list):
        raise TypeError("sockets must be a list")
    return [s for s in found if isinstance(s, dict) and isinstance(s.get("id"), str)]


def data_of(value: dict[str, Any]) -> Any:
    """The result a SERVER_SIDE_EMIT (6) answer carries."""
    return value["data"]


def nothing(value: dict[str, Any]) -> None:
    """An answer whose arrival is all that counts (single-socket types 2-4)."""
    return None
