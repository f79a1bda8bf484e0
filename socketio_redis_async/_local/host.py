"""What this package needs from python-socketio: the ``Host`` (the manager it serves).

python-socketio keeps each server's rooms in its manager (``rooms``: namespace -> room ->
{sid: eio_sid}, the ``None`` room holding every socket) and owns the sending of packets.
The local view and the delivery read and act through this narrow interface, which the
adapter (a ``socketio.AsyncManager``) implements; unit tests may implement it too.
``server`` is python-socketio's ``AsyncServer``, an untyped library object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .._protocol.rooms import Room

Rooms = dict[str, dict[Room | None, dict[str, str]]]
"""namespace -> room (None: every socket) -> {sid: eio_sid}."""


class Host(Protocol):
    """The python-socketio manager whose sockets are this server's local sockets."""

    rooms: Rooms
    callbacks: dict[str, dict[int, Callable[..., Any]]]

    @property
    def server(self) -> Any:
        """python-socketio's ``AsyncServer`` (None until attached)."""

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None: ...

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None: ...

    def basic_close_room(self, room: Any, namespace: str) -> None: ...

    def is_sid_room(self, namespace: str, room: Any) -> bool: ...

    def get_namespaces(self) -> Any: ...

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> str | None: ...

    def _generate_ack_id(self, sid: str, callback: Callable[..., Any]) -> int: ...

    async def trigger_callback(self, sid: str, id: int, data: Any) -> None: ...
