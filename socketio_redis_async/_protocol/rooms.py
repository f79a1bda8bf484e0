"""Rooms: one rule for what a room is, wherever one comes from.

Pure: no I/O. A room is a ``str`` or an ``int`` (never a ``bool``): Node matches numbers
only as numbers, so ``1`` and ``"1"`` are different rooms. A JavaScript number that is
whole arrives as an int; any other number (``1.5``) names no room a Python server can
hold, so a message carrying one is malformed. Input from the application that breaks the
rule raises ``TypeError``; input from Redis raises ``MalformedMessage``.
"""

from __future__ import annotations

import re
from typing import Any

from .._errors import MalformedMessage

Room = str | int
"""A room name that can travel on the wire."""

# An int room in a channel name: ASCII digits, as ``str(int)`` writes them, and at most
# 20 of them, since a broadcast is msgpack, which carries 64-bit integers only.
_INT_ROOM = re.compile(r"-?[1-9][0-9]{0,19}|0")


def is_room(value: Any) -> bool:
    """The rule: a ``str`` or an ``int``, not a ``bool``."""
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def check_room(room: Any) -> Room:
    """A room given by the application, or TypeError."""
    if not is_room(room):
        raise TypeError(
            f"a room must be a str or an int (rooms travel to other servers), "
            f"not {type(room).__name__}: {room!r:.40}"
        )
    return room  # type: ignore[no-any-return]


def wire_room(room: Any) -> Room:
    """A room received from Redis, or MalformedMessage."""
    if not is_room(room):
        raise MalformedMessage(f"not a room: {room!r:.40}")
    return room  # type: ignore[no-any-return]


def wire_rooms(value: Any, field: str = "rooms", required: bool = False) -> list[Room]:
    """A list of rooms received from Redis (None is empty unless ``required``), or
    MalformedMessage."""
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise MalformedMessage(f"{field} must be a list")
    for room in value:
        if not is_room(room):
            raise MalformedMessage(f"{field} holds a non-room value {room!r:.50}")
    return value


def room_to_str(room: Room) -> str:
    """Render a room the way JavaScript's ``String(room)`` does for str and int."""
    return room if isinstance(room, str) else str(room)


def int_room(text: str) -> int | None:
    """The int room whose channel name is ``text`` (``room_to_str`` reversed), or None."""
    return int(text) if _INT_ROOM.fullmatch(text) else None
