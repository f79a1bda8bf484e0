"""``StreamsWire``: the wire format of Node's Redis Streams adapter (0.3.1).

Pure: no I/O. Broadcasts without acks, joins, leaves and disconnects (and everything an
emitter sends) become stream entries; requests that wait for answers, and the answers,
go over pub/sub as msgpack (see ``streams``). Channels are the sharded protocol's
``K#N#`` and ``K#N#<uid>#`` (no room channels: broadcasts travel in the stream).
"""

from __future__ import annotations

from typing import Any

from .._errors import MalformedMessage
from . import messages, sharded, streams, traffic
from .channels import Kind, NamespaceChannels
from .messages import Request, RequestType, broadcast_parts
from .rooms import Room
from .wire import ALL_REQUESTS, Incoming, Outgoing, PublishCommand, cluster_incoming


def _positive(name: str, value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


class StreamsWire:
    """Node's ``@socket.io/redis-streams-adapter`` protocol."""

    name = "streams"
    multiplexing = True
    requests = ALL_REQUESTS - {RequestType.SOCKETS, RequestType.ALL_ROOMS}
    single_socket_forms = False

    def __init__(
        self,
        *,
        stream_name: str = "socket.io",
        stream_count: int = 1,
        max_len: int = 10_000,
        only_plaintext: bool = False,
        sharded_pubsub: bool = False,
    ) -> None:
        if not isinstance(stream_name, str) or not stream_name:
            raise TypeError("stream_name must be a non-empty str (Node's default: 'socket.io')")
        for flag, value in (("only_plaintext", only_plaintext), ("sharded", sharded_pubsub)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False")
        self.stream_name = stream_name
        self.stream_count = _positive("stream_count", stream_count)
        self.max_len = _positive("max_len", max_len)
        self.only_plaintext = only_plaintext
        self.publish_command: PublishCommand = "SPUBLISH" if sharded_pubsub else "PUBLISH"
        self.streams = streams.all_streams(stream_name, self.stream_count)
        """Every stream this format writes to; a server reads them all."""
        self._stream_of: dict[str, str] = {}

    new_uid = staticmethod(sharded.new_uid)
    is_server_uid = staticmethod(sharded.is_uid)

    def channels(self, key: str, nsp: str) -> NamespaceChannels:
        return sharded.channels(key, nsp)

    def room_has_channel(self, room: Room) -> bool:
        return False

    def answer_channel(self, channels: NamespaceChannels, uid: str) -> str:
        return channels.response_for(uid)

    def stream_of(self, nsp: str) -> str:
        """The stream ``nsp``'s entries go to (Node's naming, negative hashes included)."""
        stream = self._stream_of.get(nsp)
        if stream is None:
            stream = streams.stream_for(self.stream_name, self.stream_count, nsp)
            if len(self._stream_of) < 10_000:
                self._stream_of[nsp] = stream
        return stream

    def _out(
        self, uid: str, channels: NamespaceChannels, kind: int, data: dict[str, Any]
    ) -> Outgoing:
        nsp = channels.nsp
        if streams.goes_to_stream(uid, kind, data):
            fields = streams.entry_fields(uid, nsp, kind, data, self.only_plaintext)
            return Outgoing(self.stream_of(nsp), fields[-1], fields, self.max_len)
        return Outgoing(channels.request, streams.encode_message(uid, nsp, kind, data))

    def broadcast(
        self,
        uid: str,
        channels: NamespaceChannels,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> Outgoing:
        packet, opts = broadcast_parts(channels.nsp, data, rooms, except_rooms, flags)
        body = {"packet": packet, "opts": opts}
        return self._out(uid, channels, sharded.MessageType.BROADCAST, body)

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
        kind, body = sharded.request_message(request)
        return self._out(uid, channels, kind, body)

    def encode_answer(
        self,
        uid: str,
        channels: NamespaceChannels,
        request: Request,
        value: dict[str, Any],
        limit: int,
    ) -> tuple[str, bytes, str | None]:
        payload, error = sharded.encode_answer(
            uid, channels.nsp, value, request.kind, limit, pack=streams.encode_message
        )
        return channels.response_for(request.uid or ""), payload, error

    def decode(self, kind: Kind, nsp: str, payload: bytes, own_uid: str) -> Incoming | None:
        msg = sharded.decode(payload)
        return None if msg.nsp != nsp else cluster_incoming(msg, own_uid)

    def decode_entry(self, fields: list[bytes], own_uid: str) -> tuple[str, Incoming | None]:
        if fields[1:2] == [own_uid.encode()] and fields[:1] == [b"uid"]:
            return "", None  # this server's own entry (Node's field order): not even decoded
        msg = streams.decode_entry(fields)
        if msg.kind in sharded.ANSWERS:
            raise MalformedMessage(f"an answer (type {msg.kind}) has no place in the stream")
        return msg.nsp, cluster_incoming(msg, own_uid)

    def monitor_subscriptions(self, key: str, nsp: str) -> tuple[list[str], list[str]]:
        """The namespace's public channel: requests that wait for answers."""
        return [self.channels(key, nsp).request], []

    def describe(self, key: str, channel: str, payload: bytes) -> dict[str, Any]:
        return traffic.describe_sharded(channel, payload)
