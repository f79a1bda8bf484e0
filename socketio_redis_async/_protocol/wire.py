"""Wire formats: one object per protocol, between the bytes on a channel and the messages
the cluster engine works on.

Pure: no I/O. A wire format names a namespace's channels, encodes broadcasts, requests
and answers, and decodes what arrives on a channel straight into the neutral model:

* a broadcast is a ``messages.Broadcast``;
* a request is a ``messages.Request``;
* an answer is the classic answer map (``answers``), the one shape the requests layer
  reads (``requestId``, ``uid``, ``type`` and the answer's field).

Requests are built as classic request maps (``messages.*_request``, a superset of what
both protocols can ask) and each wire format encodes them. What a protocol cannot ask
(the sharded one has no ``SOCKETS``/``ALL_ROOMS`` and no single-socket forms) is said by
``requests`` and ``single_socket_forms``, and the engine answers it from what the protocol
has. ``ClassicWire`` is Node's ``createAdapter`` protocol, ``ShardedWire`` its
``createShardedAdapter`` one; a new transport with a new format adds one class here.
The cluster engine, both emitters and the CLI speak through a wire format only.
"""

from __future__ import annotations

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
    def broadcast_channel(self, channels: NamespaceChannels, rooms: list[Room]) -> str: ...
    def answer_channel(self, channels: NamespaceChannels, uid: str) -> str:
        """Where answers reach requester ``uid`` when it is no server (the CLI): classic
        requests from it are unsigned, sharded ones carry ``uid`` in their envelope."""

    def encode_broadcast(
        self,
        uid: str,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> bytes: ...

    def encode_emitter_broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> bytes: ...

    def encode_request(self, uid: str, nsp: str, request: dict[str, Any]) -> bytes: ...

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

    def monitor_subscriptions(self, key: str, nsp: str) -> tuple[list[str], list[str]]:
        """``(channels, patterns)`` that ``monitor`` subscribes to see the traffic."""

    def describe(self, key: str, channel: str, payload: bytes) -> dict[str, Any]:
        """A readable summary for ``monitor``; never raises."""


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

    def broadcast_channel(self, channels: NamespaceChannels, rooms: list[Room]) -> str:
        return channels.for_rooms(rooms)

    def answer_channel(self, channels: NamespaceChannels, uid: str) -> str:
        return channels.response

    encode_broadcast = staticmethod(messages.encode_broadcast)
    encode_emitter_broadcast = staticmethod(messages.encode_emitter_broadcast)

    def encode_request(self, uid: str, nsp: str, request: dict[str, Any]) -> bytes:
        return messages.encode_request(request)

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

    def broadcast_channel(self, channels: NamespaceChannels, rooms: list[Room]) -> str:
        return sharded.broadcast_channel(channels, self.mode, rooms)

    def answer_channel(self, channels: NamespaceChannels, uid: str) -> str:
        return channels.response_for(uid)

    encode_broadcast = staticmethod(sharded.encode_broadcast)

    def encode_emitter_broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> bytes:
        return sharded.encode_broadcast(messages.EMITTER_UID, nsp, data, rooms, except_rooms, flags)

    encode_request = staticmethod(sharded.encode_request)

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
        if msg.uid == own_uid or msg.nsp != nsp:
            return None  # our own, or another namespace's (Node drops these too)
        if msg.kind in sharded.ANSWERS:
            return sharded.as_answer(msg)
        broadcast = sharded.as_broadcast(msg)
        if broadcast is not None:
            return broadcast
        request = sharded.as_request(msg)
        if request is None:
            raise MalformedMessage(f"unknown sharded message type {msg.kind}")
        return request

    def monitor_subscriptions(self, key: str, nsp: str) -> tuple[list[str], list[str]]:
        """The namespace's main channel (no patterns in sharded pub/sub): its broadcasts
        to several rooms or none, and its requests; not room channels, not answers."""
        return [self.channels(key, nsp).request], []

    def describe(self, key: str, channel: str, payload: bytes) -> dict[str, Any]:
        return traffic.describe_sharded(channel, payload)
