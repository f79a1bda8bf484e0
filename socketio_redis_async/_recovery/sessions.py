"""Recovery sessions and replay rules. Pure: no I/O.

A session is stored as Node's streams adapter stores it, so that Node and Python servers
restore each other's: ``base64(msgpack({sid, pid, rooms, data}))`` under
``session_key_prefix + pid``. Python servers add ``offset`` (the stream position when the
socket connected), which Node ignores, so a client that never got a packet with an offset
still recovers. An offset is a stream entry id, ``<ms>-<seq>``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgpack

from .._errors import MalformedMessage
from .._protocol.messages import Broadcast
from .._protocol.rooms import Room, is_room

_OFFSET = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def new_pid() -> str:
    """A private session id: 20 URL-safe characters, as Node's ``base64id`` makes them."""
    return secrets.token_urlsafe(15)


def is_offset(value: Any) -> bool:
    """Whether ``value`` is a stream entry id (``<ms>-<seq>``), as Node checks it."""
    return isinstance(value, str) and _OFFSET.fullmatch(value) is not None


def offset_key(offset: str | bytes) -> tuple[int, int]:
    """An entry id as a pair of ints, for comparing ids."""
    text = offset.decode() if isinstance(offset, bytes) else offset
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(slots=True)
class Session:
    """What a recovered socket gets back."""

    sid: str
    pid: str
    rooms: list[Room]
    data: Any = None
    offset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields another server stored that this one does not use (kept when re-stored)."""


def encode_session(session: Session) -> bytes:
    """The stored value; TypeError if ``data`` is not msgpack-able."""
    value: dict[str, Any] = {
        **session.extra,
        "sid": session.sid,
        "pid": session.pid,
        "rooms": list(session.rooms),
        "data": session.data,
    }
    if session.offset is not None:
        value["offset"] = session.offset
    try:
        packed = msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(
            f"a recovery session's data must be msgpack-able (dicts, lists, str, bytes, "
            f"numbers, bools, None): {exc}"
        ) from None
    return base64.b64encode(packed)


def decode_session(raw: bytes) -> Session:
    """A stored value as a ``Session``; MalformedMessage if it is not one."""
    try:
        value = msgpack.unpackb(base64.b64decode(raw, validate=True), raw=False)
    except (binascii.Error, ValueError, msgpack.UnpackException) as exc:
        raise MalformedMessage(f"a stored session is not base64(msgpack): {exc}") from None
    if not isinstance(value, dict):
        raise MalformedMessage("a stored session must be a map")
    sid, pid, rooms = value.get("sid"), value.get("pid"), value.get("rooms")
    if not isinstance(sid, str) or not isinstance(pid, str) or not isinstance(rooms, list):
        raise MalformedMessage("a stored session needs sid and pid strings and a rooms list")
    if not all(is_room(room) for room in rooms):
        raise MalformedMessage("a stored session's rooms must be strings or integers")
    offset = value.get("offset")
    extra = {k: v for k, v in value.items() if k not in _KNOWN}
    return Session(sid, pid, rooms, value.get("data"), offset if is_offset(offset) else None, extra)


_KNOWN = frozenset({"sid", "pid", "rooms", "data", "offset"})


def replays_to(msg: Broadcast, nsp: str, rooms: set[Room]) -> bool:
    """Whether a broadcast read back from the stream is one the session's socket missed:
    same namespace, sent to all or to one of its rooms, not to a room it is excepted
    from. Volatile packets and packets waiting for acks are not replayed (they carry no
    offset either)."""
    if msg.nsp != nsp or msg.flags.get("volatile") is True:
        return False
    if msg.rooms and rooms.isdisjoint(msg.rooms):
        return False
    return rooms.isdisjoint(msg.except_rooms)


def with_offset(data: list[Any], offset: str | bytes) -> list[Any]:
    """A packet's ``[event, *args]`` with the offset appended, where Node appends it."""
    return [*data, offset.decode() if isinstance(offset, bytes) else offset]


class RecoveryFailed(Exception):
    """Why a session could not be restored (the reason is a metric label)."""


@dataclass(slots=True)
class Restore:
    """A session taken from Redis, and the entries after the client's offset."""

    session: Session
    nsp: str
    stream: str
    cursor: str
    """The last entry read."""
    entries: list[tuple[bytes, str, Broadcast]] = field(default_factory=list)
    scanned: int = 0
