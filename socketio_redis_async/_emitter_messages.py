"""What an emitter publishes, and the chains that say it: each message's channel and
payload, encoded and routed by the wire format of the servers it speaks to.

Pure: no I/O. ``wire`` is the servers' protocol (classic, or sharded with their
subscription mode). An operator (``emitter.to(...)``) is an immutable selection of
sockets: it builds each message here and hands it to its emitter, which publishes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ._operator import RoomArg, Selection, rooms_of
from ._protocol import messages
from ._protocol.messages import check_event
from ._protocol.streams_wire import StreamsWire
from ._protocol.wire import ClassicWire, Outgoing, ShardedWire, WireFormat


def emitter_wire(
    sharded: bool,
    subscription_mode: str,
    streams: bool,
    stream_name: str,
    stream_count: int,
    max_len: int,
) -> WireFormat:
    """The servers' protocol, from an emitter's arguments."""
    if sharded and streams:
        raise ValueError("pass sharded=True or streams=True, not both: servers speak one protocol")
    if streams:
        return StreamsWire(stream_name=stream_name, stream_count=stream_count, max_len=max_len)
    return ShardedWire(subscription_mode) if sharded else ClassicWire()


def _no_callbacks(args: tuple[Any, ...]) -> None:
    if any(callable(arg) for arg in args):
        raise TypeError(
            "acknowledgements are not supported by emitters; use a server's "
            "emit_with_ack() or server_side_emit_with_ack() instead"
        )


def broadcast_message(
    wire: WireFormat, key: str, sel: Selection, event: str, args: tuple[Any, ...]
) -> Outgoing:
    """An emitter broadcast, and where it goes."""
    check_event(event)
    _no_callbacks(args)
    rooms, except_rooms, data = list(sel.rooms), list(sel.except_rooms), [event, *args]
    channels = wire.channels(key, sel.nsp)
    return wire.emitter_broadcast(channels, data, rooms, except_rooms, dict(sel.flags))


def _request(wire: WireFormat, key: str, nsp: str, request: dict[str, Any]) -> Outgoing:
    """A request as the emitter sends it, signed ``emitter`` where it is signed."""
    return wire.request(messages.EMITTER_UID, wire.channels(key, nsp), request)


def rooms_message(
    wire: WireFormat, key: str, sel: Selection, join: bool, rooms: RoomArg
) -> Outgoing:
    """socketsJoin (2) / socketsLeave (3) as the emitter sends them."""
    request = messages.rooms_request(
        None, join, list(sel.rooms), list(sel.except_rooms), list(rooms_of(rooms))
    )
    return _request(wire, key, sel.nsp, request)


def disconnect_message(wire: WireFormat, key: str, sel: Selection, close: bool) -> Outgoing:
    """disconnectSockets (4) as the emitter sends it."""
    if not isinstance(close, bool):
        raise TypeError("close must be True or False")
    request = messages.disconnect_request(None, list(sel.rooms), list(sel.except_rooms), close)
    return _request(wire, key, sel.nsp, request)


def server_side_message(
    wire: WireFormat, key: str, nsp: str, event: str, args: tuple[Any, ...]
) -> Outgoing:
    """serverSideEmit (6) as the emitter sends it (never with an ack)."""
    check_event(event)
    _no_callbacks(args)
    request = messages.server_side_emit_request(messages.EMITTER_UID, [event, *args])
    return _request(wire, key, nsp, request)


# -- the chains ----------------------------------------------------------------------------


class Publisher(Protocol):
    """What an :class:`EmitterOperator` hands its messages to: its ``Emitter``."""

    key: str
    _wire: WireFormat

    def _publish(self, out: Outgoing) -> int: ...


class AsyncPublisher(Protocol):
    """What an :class:`AsyncEmitterOperator` hands its messages to: its ``AsyncEmitter``."""

    key: str
    _wire: WireFormat

    async def _publish(self, out: Outgoing) -> int: ...


_NO_EMITTER = "create operators with emitter.to() / emitter.of()"


@dataclass(frozen=True, slots=True)
class EmitterOperator(Selection):
    """A chain on a synchronous :class:`Emitter`."""

    _emitter: Publisher | None = field(default=None, repr=False, compare=False)

    @property
    def _e(self) -> Publisher:
        assert self._emitter is not None, _NO_EMITTER
        return self._emitter

    def emit(self, event: str, *args: Any) -> int:
        """Broadcast; return how many Redis subscribers (servers) received it (0 for an
        entry appended to a stream: every server reads it, whenever it reads)."""
        return self._e._publish(broadcast_message(self._e._wire, self._e.key, self, event, args))

    def sockets_join(self, rooms: RoomArg) -> None:
        """Make the matching sockets join ``rooms`` on every server."""
        self._e._publish(rooms_message(self._e._wire, self._e.key, self, True, rooms))

    def sockets_leave(self, rooms: RoomArg) -> None:
        """Make the matching sockets leave ``rooms`` on every server."""
        self._e._publish(rooms_message(self._e._wire, self._e.key, self, False, rooms))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the matching sockets; ``close`` also closes their connection."""
        self._e._publish(disconnect_message(self._e._wire, self._e.key, self, close))


@dataclass(frozen=True, slots=True)
class AsyncEmitterOperator(Selection):
    """A chain on an :class:`AsyncEmitter`."""

    _emitter: AsyncPublisher | None = field(default=None, repr=False, compare=False)

    @property
    def _e(self) -> AsyncPublisher:
        assert self._emitter is not None, _NO_EMITTER
        return self._emitter

    async def emit(self, event: str, *args: Any) -> int:
        """Broadcast; return how many Redis subscribers (servers) received it (0 for an
        entry appended to a stream: every server reads it, whenever it reads)."""
        return await self._e._publish(
            broadcast_message(self._e._wire, self._e.key, self, event, args)
        )

    async def sockets_join(self, rooms: RoomArg) -> None:
        """Make the matching sockets join ``rooms`` on every server."""
        await self._e._publish(rooms_message(self._e._wire, self._e.key, self, True, rooms))

    async def sockets_leave(self, rooms: RoomArg) -> None:
        """Make the matching sockets leave ``rooms`` on every server."""
        await self._e._publish(rooms_message(self._e._wire, self._e.key, self, False, rooms))

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the matching sockets; ``close`` also closes their connection."""
        await self._e._publish(disconnect_message(self._e._wire, self._e.key, self, close))
