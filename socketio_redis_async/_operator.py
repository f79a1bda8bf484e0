"""Node's broadcast modifiers as an immutable chain: ``to(...).except_(...).volatile.emit()``.

Every modifier returns a new operator, so a half-built chain can be kept and reused.
The operator only collects the target; the adapter (or the emitter) it was made from
does the sending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ._channels import Room
from ._codec import RESERVED_EVENTS

RoomArg = Room | Iterable[Room]


def check_room(room: Any) -> Room:
    """Validate one room name: str or int, as Node matches them."""
    if isinstance(room, bool) or not isinstance(room, (str, int)):
        raise TypeError(
            f"a room must be a str or an int (rooms travel to other servers), "
            f"not {type(room).__name__}: {room!r:.40}"
        )
    return room


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


def check_event(event: Any) -> str:
    """Validate an event name for broadcasting."""
    if not isinstance(event, str):
        raise TypeError(f"the event name must be a str, not {type(event).__name__}")
    if event in RESERVED_EVENTS:
        raise ValueError(f"{event!r} is a reserved event name; pick another name")
    return event


class BroadcastTarget(Protocol):
    """What an operator sends through: an adapter or an emitter."""

    async def _broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
        local: bool,
    ) -> None: ...


def _merge(current: tuple[Room, ...], new: Iterable[Room]) -> tuple[Room, ...]:
    merged = dict.fromkeys(current)
    merged.update(dict.fromkeys(new))
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class BroadcastOperator:
    """A broadcast being built; ``await op.emit(event, *args)`` sends it."""

    _target: BroadcastTarget = field(repr=False)
    nsp: str = "/"
    rooms: tuple[Room, ...] = ()
    except_rooms: tuple[Room, ...] = ()
    flags: tuple[tuple[str, Any], ...] = ()
    is_local: bool = False

    def to(self, *rooms: RoomArg) -> BroadcastOperator:
        """Target these rooms too (a socket id is a room); several calls add up."""
        return replace(self, rooms=_merge(self.rooms, _flatten(rooms)))

    def in_(self, *rooms: RoomArg) -> BroadcastOperator:
        """Alias of :meth:`to`."""
        return self.to(*rooms)

    def except_(self, *rooms: RoomArg) -> BroadcastOperator:
        """Skip every socket in these rooms (a socket id is a room)."""
        return replace(self, except_rooms=_merge(self.except_rooms, _flatten(rooms)))

    @property
    def volatile(self) -> BroadcastOperator:
        """Mark the packet volatile (Node drops it if the client is not ready)."""
        return self._flag("volatile", True)

    def compress(self, value: bool) -> BroadcastOperator:
        """Set the compress flag that travels to Node servers."""
        if not isinstance(value, bool):
            raise TypeError("compress() takes True or False")
        return self._flag("compress", value)

    @property
    def local(self) -> BroadcastOperator:
        """Deliver to this server's sockets only; nothing goes to Redis."""
        return replace(self, is_local=True)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` with ``args`` to every matching socket in the cluster."""
        check_event(event)
        await self._target._broadcast(
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

    def _flag(self, name: str, value: Any) -> BroadcastOperator:
        flags = dict(self.flags)
        flags[name] = value
        return replace(self, flags=tuple(flags.items()))


def _flatten(args: tuple[RoomArg, ...]) -> list[Room]:
    rooms: list[Room] = []
    for arg in args:
        rooms.extend(rooms_of(arg))
    return rooms
