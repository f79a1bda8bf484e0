"""Node's broadcast modifiers as an immutable chain: ``to(...).except_(...).volatile.emit()``.

Every modifier returns a new object, so a half-built chain can be kept and reused.
``Selection`` holds the target (namespace, rooms, except rooms, flags) and the modifiers;
the adapter's ``BroadcastOperator`` and the emitters' operators add the sending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from ._protocol.messages import check_event
from ._protocol.rooms import Room, check_room
from ._sockets import RemoteSocket

RoomArg = Room | Iterable[Room]
_S = TypeVar("_S", bound="Selection")


def rooms_of(arg: Any) -> tuple[Room, ...]:
    """Normalise None, a room, or an iterable of rooms into a tuple of rooms."""
    if arg is None:
        return ()
    if isinstance(arg, (str, int)):
        return (check_room(arg),)
    if isinstance(arg, Iterable):
        return tuple(check_room(room) for room in arg)
    check_room(arg)
    raise AssertionError("unreachable")  # pragma: no cover


def packet_data(event: str, data: Any) -> list[Any]:
    """``[event, *args]`` from python-socketio's ``data``: a tuple is several arguments,
    None is none, anything else is one."""
    args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
    return [event, *args]


def check_namespace(namespace: Any) -> str:
    """Validate a namespace and add a missing leading ``/`` (as Node's ``of()`` does)."""
    if not isinstance(namespace, str):
        raise TypeError("namespace must be a str such as '/chat'")
    return namespace if namespace.startswith("/") else "/" + namespace


def _merge(current: tuple[Room, ...], new: Iterable[Room]) -> tuple[Room, ...]:
    merged = dict.fromkeys(current)
    merged.update(dict.fromkeys(new))
    return tuple(merged)


def _flatten(args: tuple[RoomArg, ...]) -> list[Room]:
    rooms: list[Room] = []
    for arg in args:
        rooms.extend(rooms_of(arg))
    return rooms


@dataclass(frozen=True, slots=True)
class Selection:
    """Which sockets a broadcast or a socket operation targets."""

    nsp: str = "/"
    rooms: tuple[Room, ...] = ()
    except_rooms: tuple[Room, ...] = ()
    flags: tuple[tuple[str, Any], ...] = ()

    def to(self: _S, *rooms: RoomArg) -> _S:
        """Target these rooms too (a socket id is a room); several calls add up."""
        return replace(self, rooms=_merge(self.rooms, _flatten(rooms)))

    def in_(self: _S, *rooms: RoomArg) -> _S:
        """Alias of :meth:`to`."""
        return self.to(*rooms)

    def except_(self: _S, *rooms: RoomArg) -> _S:
        """Skip every socket in these rooms (a socket id is a room)."""
        return replace(self, except_rooms=_merge(self.except_rooms, _flatten(rooms)))

    @property
    def volatile(self: _S) -> _S:
        """Mark the packet volatile (Node drops it if the client is not ready)."""
        return self._flag("volatile", True)

    def compress(self: _S, value: bool) -> _S:
        """Set the compress flag that travels to Node servers."""
        if not isinstance(value, bool):
            raise TypeError("compress() takes True or False")
        return self._flag("compress", value)

    def _flag(self: _S, name: str, value: Any) -> _S:
        flags = dict(self.flags)
        flags[name] = value
        return replace(self, flags=tuple(flags.items()))


class BroadcastTarget(Protocol):
    """What a BroadcastOperator sends through: the adapter."""

    async def _broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
        local: bool,
    ) -> None: ...

    async def fetch_sockets(
        self, rooms: Any, except_rooms: Any, *, namespace: str, local: bool
    ) -> list[RemoteSocket]: ...

    async def sockets_join(
        self, rooms: Any, to: Any, except_rooms: Any, *, namespace: str, local: bool
    ) -> None: ...

    async def sockets_leave(
        self, rooms: Any, to: Any, except_rooms: Any, *, namespace: str, local: bool
    ) -> None: ...

    async def disconnect_sockets(
        self, close: bool, to: Any, except_rooms: Any, *, namespace: str, local: bool
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class BroadcastOperator(Selection):
    """A broadcast being built on an adapter; ``await op.emit(event, *args)`` sends it."""

    _target: BroadcastTarget | None = field(default=None, repr=False, compare=False)
    is_local: bool = False

    @property
    def local(self) -> BroadcastOperator:
        """Act on this server's sockets only; nothing goes to Redis (Node's ``.local``)."""
        return replace(self, is_local=True)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` with ``args`` to every matching socket in the cluster."""
        check_event(event)
        await self._adapter()._broadcast(
            self.nsp,
            [event, *args],
            list(self.rooms),
            list(self.except_rooms),
            dict(self.flags),
            self.is_local,
        )

    async def send(self, *args: Any) -> None:
        """Emit the ``message`` event."""
        await self.emit("message", *args)

    def _adapter(self) -> BroadcastTarget:
        assert self._target is not None, "create operators with adapter.to() / adapter.of()"
        return self._target

    async def fetch_sockets(self) -> list[RemoteSocket]:
        """The matching sockets (Node's ``fetchSockets()``; with ``.local``, this server's)."""
        return await self._adapter().fetch_sockets(
            self.rooms, self.except_rooms, namespace=self.nsp, local=self.is_local
        )

    async def sockets_join(self, rooms: RoomArg) -> None:
        """Make the matching sockets join ``rooms`` (Node's ``socketsJoin()``)."""
        await self._adapter().sockets_join(
            rooms, self.rooms, self.except_rooms, namespace=self.nsp, local=self.is_local
        )

    async def sockets_leave(self, rooms: RoomArg) -> None:
        """Make the matching sockets leave ``rooms`` (Node's ``socketsLeave()``)."""
        await self._adapter().sockets_leave(
            rooms, self.rooms, self.except_rooms, namespace=self.nsp, local=self.is_local
        )

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the matching sockets (Node's ``disconnectSockets()``)."""
        await self._adapter().disconnect_sockets(
            close, self.rooms, self.except_rooms, namespace=self.nsp, local=self.is_local
        )
