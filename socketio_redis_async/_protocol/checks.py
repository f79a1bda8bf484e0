"""The checks every field received from Redis passes, shared by every protocol.

Pure: no I/O. Each raises MalformedMessage with what was wrong; the receiver drops and
counts the message.
"""

from __future__ import annotations

from typing import Any, Final

from .._errors import MalformedMessage
from .rooms import Room, wire_rooms

EVENT: Final = 2
BINARY_EVENT: Final = 5


def check_request_id(msg: dict[str, Any]) -> str | None:
    """A message's ``requestId``: absent, or a string as every server and emitter sends one
    (anything else could match no waiting request, and is malformed)."""
    request_id = msg.get("requestId")
    if request_id is None or isinstance(request_id, str):
        return request_id
    raise MalformedMessage("requestId must be a string")


def check_opts(opts: Any) -> tuple[list[Room], list[Room], dict[str, Any]]:
    """Validate the ``opts`` of any message of either protocol: a map (missing or not a
    map is malformed: Node cannot process it either) of ``{rooms, except, flags}``, each
    optional (``{}`` selects every socket, as Node's ``new Set(opts.rooms)`` does)."""
    if not isinstance(opts, dict):
        raise MalformedMessage("opts must be a map")
    flags = {} if opts.get("flags") is None else opts["flags"]
    if not isinstance(flags, dict):
        raise MalformedMessage("flags must be a map")
    return wire_rooms(opts.get("rooms")), wire_rooms(opts.get("except"), "except"), flags


def check_packet(packet: Any) -> tuple[str, list[Any]]:
    """Validate a socket.io EVENT packet; return its namespace and ``[event, *args]``."""
    if not isinstance(packet, dict):
        raise MalformedMessage("packet must be a map")
    if packet.get("type", EVENT) not in (EVENT, BINARY_EVENT):
        raise MalformedMessage(f"unsupported packet type {packet.get('type')!r:.20}")
    data = check_event_data(packet.get("data"), "packet data")
    nsp = "/" if packet.get("nsp") is None else packet["nsp"]
    if not isinstance(nsp, str):
        raise MalformedMessage("packet nsp must be a string")
    return nsp, data


def check_event_data(data: Any, what: str) -> list[Any]:
    """``[event, *args]`` as received (``what`` names it in the error), or MalformedMessage."""
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise MalformedMessage(f"{what} must be [event, ...args]")
    return data
