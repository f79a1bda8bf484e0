"""Sockets as ``fetch_sockets`` returns them: their data, and methods that act wherever
they live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ._protocol.messages import check_event
from ._protocol.rooms import Room


class SocketOwner(Protocol):
    """What a RemoteSocket acts through: the adapter."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
    ) -> None: ...

    async def sockets_join(self, rooms: Any, to: Any = None, *, namespace: str = "/") -> None: ...

    async def sockets_leave(self, rooms: Any, to: Any = None, *, namespace: str = "/") -> None: ...

    async def disconnect_sockets(
        self, close: bool = False, to: Any = None, *, namespace: str = "/"
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class RemoteSocket:
    """A socket somewhere in the cluster, as ``fetch_sockets`` found it.

    ``emit``, ``join``, ``leave`` and ``disconnect`` work wherever the socket lives.
    """

    adapter: SocketOwner = field(repr=False, compare=False)
    namespace: str
    id: str
    handshake: dict[str, Any] = field(compare=False)
    rooms: frozenset[Room] = field(compare=False)
    data: Any = field(compare=False)

    @classmethod
    def found(cls, adapter: SocketOwner, namespace: str, socket: dict[str, Any]) -> RemoteSocket:
        """A socket as a server described it (``{id, handshake, rooms, data}``)."""
        handshake = socket.get("handshake")
        return cls(
            adapter,
            namespace,
            socket["id"],
            handshake if isinstance(handshake, dict) else {},
            frozenset(r for r in socket.get("rooms") or () if isinstance(r, (str, int))),
            socket.get("data"),
        )

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to this socket."""
        await self.adapter.emit(check_event(event), tuple(args), self.namespace, to=self.id)

    async def join(self, *rooms: Room) -> None:
        """Make this socket join ``rooms``."""
        await self.adapter.sockets_join(list(rooms), to=self.id, namespace=self.namespace)

    async def leave(self, *rooms: Room) -> None:
        """Make this socket leave ``rooms``."""
        await self.adapter.sockets_leave(list(rooms), to=self.id, namespace=self.namespace)

    async def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket; ``close`` also closes its underlying connection."""
        await self.adapter.disconnect_sockets(close, to=self.id, namespace=self.namespace)
