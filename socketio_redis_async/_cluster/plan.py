"""The subscription planner: which channels this server needs, and what each one carries.

Pure bookkeeping, no I/O: it tells a ``Subscriptions`` (the transport) what to subscribe
and unsubscribe, and routes each incoming channel to its namespace and kind. A namespace
is served (its request and response channels subscribed) while ``keeps(nsp)`` says so or
a request on it holds a lease; with channel multiplexing each room that has local
members has its own channel, subscribed by its first member and dropped with its last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._protocol.channels import Kind, NamespaceChannels
from .._protocol.rooms import Room
from .._protocol.wire import WireFormat

__all__ = ["Kind", "NamespacePlan", "Subscriptions"]


class Subscriptions(Protocol):
    """The channels a transport keeps subscribed."""

    def want(self, channel: str) -> None: ...
    def unwant(self, channel: str) -> None: ...
    def want_pattern(self, pattern: str) -> None: ...
    def unwant_pattern(self, pattern: str) -> None: ...


class NamespacePlan:
    """Channels and routes of the namespaces this server serves."""

    def __init__(
        self,
        key: str,
        uid: Callable[[], str],
        wire: WireFormat,
        subscriptions: Subscriptions,
        keeps: Callable[[str], bool],
    ) -> None:
        """The wire format names a namespace's channels, and says whether rooms have
        channels of their own (multiplexing) and which rooms do."""
        self._build = wire.channels
        self._has_channel = wire.room_has_channel
        self._key = key
        self._uid = uid
        self._multiplexing = wire.multiplexing
        self._subs = subscriptions
        self._keeps = keeps
        self._namespaces: dict[str, NamespaceChannels] = {}
        self._routes: dict[bytes, tuple[Kind, NamespaceChannels]] = {}
        self._pattern_routes: dict[bytes, NamespaceChannels] = {}
        self._room_refs: dict[str, int] = {}
        self._leases: dict[str, int] = {}

    def __contains__(self, nsp: object) -> bool:
        return nsp in self._namespaces

    def __len__(self) -> int:
        return len(self._namespaces)

    def channels_of(self, nsp: str) -> NamespaceChannels:
        """The channel names of ``nsp``, without subscribing anything."""
        channels = self._namespaces.get(nsp)
        return channels if channels is not None else self._build(self._key, nsp)

    def route(self, channel: bytes) -> tuple[Kind, NamespaceChannels] | None:
        """The kind and namespace of a subscribed channel, None if not one of ours."""
        return self._routes.get(channel)

    def pattern_route(self, pattern: bytes) -> NamespaceChannels | None:
        """The namespace of a subscribed broadcast pattern (no multiplexing)."""
        return self._pattern_routes.get(pattern)

    def leased(self, nsp: str) -> bool:
        """Whether a request on ``nsp`` is in flight."""
        return bool(self._leases.get(nsp))

    def ensure(self, nsp: str) -> NamespaceChannels:
        """Serve ``nsp``: subscribe its request, response and broadcast channels."""
        channels = self._namespaces.get(nsp)
        if channels is not None:
            return channels
        channels = self._build(self._key, nsp)
        self._namespaces[nsp] = channels
        for channel, kind in (
            (channels.request, Kind.REQUEST),
            (channels.response, Kind.RESPONSE),
            (channels.response_for(self._uid()), Kind.RESPONSE),
        ):
            self._routes[channel.encode()] = (kind, channels)
            self._subs.want(channel)
        if self._multiplexing:
            self._routes[channels.broadcast.encode()] = (Kind.BROADCAST, channels)
            self._subs.want(channels.broadcast)
        else:
            self._pattern_routes[channels.pattern.encode()] = channels
            self._subs.want_pattern(channels.pattern)
        return channels

    def hold(self, nsp: str) -> NamespaceChannels:
        """Serve ``nsp`` at least until the matching :meth:`unhold`."""
        self._leases[nsp] = self._leases.get(nsp, 0) + 1
        return self.ensure(nsp)

    def unhold(self, nsp: str) -> bool:
        """End one :meth:`hold`; True if that released the namespace."""
        leases = self._leases.get(nsp, 0) - 1
        if leases > 0:
            self._leases[nsp] = leases
            return False
        self._leases.pop(nsp, None)
        return self.release_if_idle(nsp)

    def release_if_idle(self, nsp: str) -> bool:
        """Unsubscribe ``nsp``'s channels once nothing keeps it; True if it did."""
        channels = self._namespaces.get(nsp)
        if channels is None or self.leased(nsp) or self._keeps(nsp):
            return False
        del self._namespaces[nsp]
        for channel in (channels.request, channels.response, channels.response_for(self._uid())):
            self._routes.pop(channel.encode(), None)
            self._subs.unwant(channel)
        if self._multiplexing:
            self._routes.pop(channels.broadcast.encode(), None)
            self._subs.unwant(channels.broadcast)
        else:
            self._pattern_routes.pop(channels.pattern.encode(), None)
            self._subs.unwant_pattern(channels.pattern)
        return True

    def room_created(self, nsp: str, room: Room) -> None:
        """A room got its first local member: subscribe its channel (multiplexing)."""
        if not self._multiplexing or not self._has_channel(room):
            return
        channels = self.ensure(nsp)
        channel = channels.room(room)
        refs = self._room_refs.get(channel, 0)
        self._room_refs[channel] = refs + 1
        if not refs:
            self._routes[channel.encode()] = (Kind.BROADCAST, channels)
            self._subs.want(channel)

    def room_emptied(self, nsp: str, room: Room) -> None:
        """A room lost its last local member: unsubscribe its channel (multiplexing)."""
        if not self._multiplexing or not self._has_channel(room):
            return
        channel = self.channels_of(nsp).room(room)
        refs = self._room_refs.get(channel, 1) - 1
        if refs:
            self._room_refs[channel] = refs
        else:
            self._room_refs.pop(channel, None)
            self._routes.pop(channel.encode(), None)
            self._subs.unwant(channel)

    def room_channels(self, nsp: str, rooms: list[Room]) -> list[str]:
        """The channels of ``rooms`` (to confirm after a join), [] without multiplexing."""
        if not self._multiplexing:
            return []
        channels = self.channels_of(nsp)
        return [channels.room(room) for room in rooms if self._has_channel(room)]
