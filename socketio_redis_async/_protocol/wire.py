"""Wire formats: one object per protocol, between the bytes on Redis and the messages
the cluster engine works on.

Pure: no I/O. A wire format names a namespace's channels, turns broadcasts, requests and
answers into an ``Outgoing`` (a channel and payload, or a stream entry), and decodes what
arrives straight into the neutral model: a ``messages.Broadcast``, a ``messages.Request``,
or the classic answer map (``answers``) the requests layer reads.

Requests are built as classic request maps (``messages.*_request``, a superset of what
every protocol can ask); what a protocol cannot ask is said by ``requests`` and
``single_socket_forms``, and the engine answers it from what the protocol has.
``ClassicWire`` is Node's ``createAdapter`` protocol, ``ShardedWire`` its
``createShardedAdapter`` one, ``streams_wire.StreamsWire`` the streams adapter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from .._errors import MalformedMessage
from . import answers, codec, messages, sharded, traffic
from .channels import Kind, NamespaceChannels, glob_escape
from .messages import Broadcast, Request, RequestType
from .rooms import Room

Incoming = Broadcast | Request | dict[str, Any]
"""What a channel carries, decoded: a broadcast, a request, or an answer map."""

PublishCommand = Literal["PUBLISH", "SPUBLISH"]
ALL_REQUESTS: Final = frozenset(t for t in RequestType if t <= RequestType.BROADCAST)
"""Types 0-7: 8 and 9 (BROADCAST_CLIENT_COUNT, BROADCAST_ACK) are answers."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Published on channel ``target``, or appended to stream ``target`` (``fields`` set)."""

    target: str
    payload: bytes
    """The pub/sub payload; for a stream entry, its largest field (to check its size)."""
    fields: tuple[bytes, ...] | None = None
    max_len: int = 0


class WireFormat(Protocol):
    """A protocol's encoding, decoding and channel naming."""

    name: str
    """``"classic"`` or ``"sharded"``: for messages and metrics."""
    multiplexing: bool
    """Whether rooms have channels of their own (else the classic pattern subscription)."""
    requests: frozenset[RequestType]
    """The request types this protocol can send."""
    single_socket_forms: bool
    """Whether remote join/leave/disconnect of one socket is a request its server answers."""
    publish_command: PublishCommand
    """How a message is published: PUBLISH reaches every node's subscribers from any node;
    SPUBLISH only the shard owning the channel (a cluster publisher must go there)."""

    def new_uid(self) -> str: ...
    def is_server_uid(self, text: str) -> bool: ...
    def channels(self, key: str, nsp: str) -> NamespaceChannels: ...
    def room_has_channel(self, room: Room) -> bool: ...
    def answer_channel(self, channels: NamespaceChannels, uid: str) -> str:
        """Where answers reach requester ``uid`` when it is no server (the CLI): classic
        requests from it are unsigned, the others carry ``uid`` in their envelope."""

    def broadcast(
        self,
        uid: str,
        channels: NamespaceChannels,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> Outgoing:
        """A broadcast without acks from server ``uid``, and where it goes."""

    def emitter_broadcast(
        self,
        channels: NamespaceChannels,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> Outgoing:
        """A broadcast as the protocol's emitter sends it."""

    def request(self, uid: str, channels: NamespaceChannels, request: dict[str, Any]) -> Outgoing:
        """A classic request map as this protocol's message, and where it goes."""

    def encode_answer(
        self,
        uid: str,
        channels: NamespaceChannels,
        request: Request,
        value: dict[str, Any],
        limit: int,
    ) -> tuple[str, bytes, str | None]:
        """``(channel, payload, error if the answer was too large and was replaced)``."""

    def decode(self, kind: Kind, nsp: str, payload: bytes, own_uid: str) -> Incoming | None:
        """What ``payload`` on a ``kind`` channel of ``nsp`` carries; None for this
        server's own broadcasts, another namespace's, and types nobody answers. As in
        Node, a sharded message from this server is always None, while a classic request
        from it is passed on (the responders decide by its type). Raises MalformedMessage."""

    def decode_entry(self, fields: list[bytes], own_uid: str) -> tuple[str, Incoming | None]:
        """A stream entry's namespace and what it carries (None as in ``decode``).
        Raises MalformedMessage, as every protocol without streams does for any entry."""

    def monitor_subscriptions(self, key: str, nsp: str) -> tuple[list[str], list[str]]:
        """``(channels, patterns)`` that ``monitor`` subscribes to see the traffic."""

    def describe(self, key: str, channel: str, payload: bytes) -> dict[str, Any]:
        """A readable summary for ``monitor``; never raises."""


def cluster_incoming(msg: sharded.Message, own_uid: str) -> Incoming | None:
    """What a ClusterAdapter message carries; None for this server's own (Node drops them
    too) and for types nobody answers. Raises MalformedMessage for an unknown type."""
    if msg.uid == own_uid:
        return None
    if msg.kind in sharded.ANSWERS:
        return sharded.as_answer(msg)
    broadcast = sharded.as_broadcast(msg)
    if broadcast is not None:
        return broadcast
    request = sharded.as_request(msg)
    if request is None:
        raise MalformedMessage(f"unknown cluster message type {msg.kind}")
    return request


def _no_entries(fields: list[bytes], own_uid: str) -> tuple[str, Incoming | None]:
    raise MalformedMessage("this protocol has no stream entries")


class ClassicWire:
    """Node's classic Redis adapter protocol (msgpack broadcasts, JSON requests)."""

    name = "classic"
    requests = ALL_REQUESTS
    single_socket_forms = True
    publish_command: PublishCommand = "PUBLISH"

    def __init__(self, multiplexing: bool = True) -> None:
        self.multiplexing = multiplexing
        self._echo = ("", b"")

    new_uid = staticmethod(messages.new_uid)

    def is_server_uid(self, text: str) -> bool:
        return bool(text)

    def channels(self, key: str, nsp: str) -> NamespaceChannels:
        return NamespaceChannels.build(key, nsp)

    def room_has_channel(self, room: Room) -> bool:
        return True

    def answer_channel(self, channels: NamespaceChannels, uid: str) -> str:
        return channels.response

    def broadcast(
        self,
        uid: str,
        channels: NamespaceChannels,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> Outgoing:
        payload = messages.encode_broadcast(uid, channels.nsp, data, rooms, except_rooms, flags)
        return Outgoing(channels.for_rooms(rooms), payload)

    def emitter_broadcast(
        self,
        channels: NamespaceChannels,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> Outgoing:
        payload = messages.encode_emitter_broadcast(channels.nsp, data, rooms, except_rooms, flags)
        return Outgoing(channels.for_rooms(rooms), payload)

    def request(self, uid: str, channels: NamespaceChannels, request: dict[str, Any]) -> Outgoing:
        return Outgoing(channels.request, messages.encode_request(request))

    def encode_answer(
        self,
        uid: str,
        channels: NamespaceChannels,
        request: Request,
        value: dict[str, Any],
        limit: int,
    ) -> tuple[str, bytes, str | None]:
        payload, error = answers.encode_answer(
            value, accepts_zlib=request.accepts_zlib, limit=limit
        )
        return answers.channel_for(channels, request.uid, value), payload, error

    def decode(self, kind: Kind, nsp: str, payload: bytes, own_uid: str) -> Incoming | None:
        if kind == Kind.REQUEST:
            return messages.parse_request(codec.decode_request(payload))
        if kind == Kind.RESPONSE:
            return codec.decode_request(payload)
        if self._echo[0] != own_uid:
            self._echo = (own_uid, codec.pack(own_uid))
        if payload.startswith(self._echo[1], 1):
            return None  # our own broadcast coming back ([uid, ...]): not even decoded
        msg = messages.decode_broadcast(payload)
        return None if msg.uid == own_uid or msg.nsp != nsp else msg

    decode_entry = staticmethod(_no_entries)

    def monitor_subscriptions(self, key: str, nsp: str) -> tuple[list[str], list[str]]:
        """Every namespace's broadcasts, requests and answers, through patterns."""
        key = glob_escape(key)
        return [], [f"{key}#*", f"{key}-request#*", f"{key}-response#*"]

    def describe(self, key: str, channel: str, payload: bytes) -> dict[str, Any]:
        return traffic.describe(key, channel, payload)


class ShardedWire:
    """Node's sharded adapter protocol (ClusterAdapter messages, SPUBLISH channels)."""

    name = "sharded"
    multiplexing = True
    requests = ALL_REQUESTS - {RequestType.SOCKETS, RequestType.ALL_ROOMS}
    single_socket_forms = False
    publish_command: PublishCommand = "SPUBLISH"

    def __init__(self, mode: str = "dynamic") -> None:
        self.mode = sharded.check_mode(mode)

    new_uid = staticmethod(sharded.new_uid)
    is_server_uid = staticmethod(sharded.is_uid)

    def channels(self, key: str, nsp: str) -> NamespaceChannels:
        return sharded.channels(key, nsp)

    def room_has_channel(self, room: Room) -> bool:
        return sharded.room_has_channel(self.mode, room)

    def answer_channel(self, channels: NamespaceChannels, uid: str) -> str:
        return channels.response_for(uid)

    def broadcast(
        self,
        uid: str,
        channels: NamespaceChannels,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> Outgoing:
        payload = sharded.encode_broadcast(uid, channels.nsp, data, rooms, except_rooms, flags)
        return Outgoing(sharded.broadcast_channel(channels, self.mode, rooms), payload)

    def emitter_broadcast(
        self,
        channels: NamespaceChannels,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> Outgoing:
        return self.broadcast(messages.EMITTER_UID, channels, data, rooms, except_rooms, flags)

    def request(self, uid: str, channels: NamespaceChannels, request: dict[str, Any]) -> Outgoing:
        return Outgoing(channels.request, sharded.encode_request(uid, channels.nsp, request))

    def encode_answer(
        self,
        uid: str,
        channels: NamespaceChannels,
        request: Request,
        value: dict[str, Any],
        limit: int,
    ) -> tuple[str, bytes, str | None]:
        payload, error = sharded.encode_answer(uid, channels.nsp, value, request.kind, limit)
        return channels.response_for(request.uid or ""), payload, error

    def decode(self, kind: Kind, nsp: str, payload: bytes, own_uid: str) -> Incoming | None:
        msg = sharded.decode(payload)
        return None if msg.nsp != nsp else cluster_incoming(msg, own_uid)

    decode_entry = staticmethod(_no_entries)

    def monitor_subscriptions(self, key: str, nsp: str) -> tuple[list[str], list[str]]:
        """The namespace's main channel (no patterns in sharded pub/sub): its broadcasts
        to several rooms or none, and its requests; not room channels, not answers."""
        return [self.channels(key, nsp).request], []

    def describe(self, key: str, channel: str, payload: bytes) -> dict[str, Any]:
        return traffic.describe_sharded(channel, payload)
