"""What an emitter publishes: each message's channel and payload, classic or sharded.

Pure: no I/O. ``mode`` is None for the classic protocol, else the subscription mode of the
sharded servers (it decides which broadcasts go to a room's own channel).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from ._operator import RoomArg, Selection, rooms_of
from ._protocol import messages
from ._protocol import sharded as _sharded
from ._protocol.channels import NamespaceChannels
from ._protocol.messages import check_event


def _no_callbacks(args: tuple[Any, ...]) -> None:
    if any(callable(arg) for arg in args):
        raise TypeError(
            "acknowledgements are not supported by emitters; use a server's "
            "emit_with_ack() or server_side_emit_with_ack() instead"
        )


Mode: TypeAlias = "_sharded.Mode | None"


def broadcast_message(
    key: str, sel: Selection, event: str, args: tuple[Any, ...], mode: Mode = None
) -> tuple[str, bytes]:
    """The channel and payload of an emitter broadcast."""
    check_event(event)
    _no_callbacks(args)
    rooms, except_rooms, data = list(sel.rooms), list(sel.except_rooms), [event, *args]
    if mode is not None:
        uid = messages.EMITTER_UID
        flags = dict(sel.flags)
        payload = _sharded.encode_broadcast(uid, sel.nsp, data, rooms, except_rooms, flags)
        return _sharded.broadcast_channel(_sharded.channels(key, sel.nsp), mode, rooms), payload
    payload = messages.encode_emitter_broadcast(sel.nsp, data, rooms, except_rooms, dict(sel.flags))
    return NamespaceChannels.build(key, sel.nsp).for_rooms(rooms), payload


def _request(key: str, nsp: str, request: dict[str, Any], mode: Mode) -> tuple[str, bytes]:
    if mode is not None:
        payload = _sharded.encode_request(messages.EMITTER_UID, nsp, request)
        return _sharded.channels(key, nsp).request, payload
    return NamespaceChannels.build(key, nsp).request, messages.encode_request(request)


def rooms_message(
    key: str, sel: Selection, join: bool, rooms: RoomArg, mode: Mode = None
) -> tuple[str, bytes]:
    """socketsJoin (2) / socketsLeave (3) as the emitter sends them."""
    request = messages.rooms_request(
        None, join, list(sel.rooms), list(sel.except_rooms), list(rooms_of(rooms))
    )
    return _request(key, sel.nsp, request, mode)


def disconnect_message(
    key: str, sel: Selection, close: bool, mode: Mode = None
) -> tuple[str, bytes]:
    """disconnectSockets (4) as the emitter sends it."""
    if not isinstance(close, bool):
        raise TypeError("close must be True or False")
    request = messages.disconnect_request(None, list(sel.rooms), list(sel.except_rooms), close)
    return _request(key, sel.nsp, request, mode)


def server_side_message(
    key: str, nsp: str, event: str, args: tuple[Any, ...], mode: Mode = None
) -> tuple[str, bytes]:
    """serverSideEmit (6) as the emitter sends it (never with an ack)."""
    check_event(event)
    _no_callbacks(args)
    request = messages.server_side_emit_request(messages.EMITTER_UID, [event, *args])
    return _request(key, nsp, request, mode)
