"""The CLI's link to a cluster: the adapters' own transports, so that it counts servers
over every node of a Redis Cluster, and a wire format, so that it speaks either protocol
(``--sharded``) without knowing which.

The CLI never counts as a server: it listens for answers only on the wire format's answer
channel for its uid (with the classic protocol the generic response channel, with the
sharded one a channel of its own uid).
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .._cluster.requests import PendingRequests
from .._errors import MalformedMessage
from .._protocol.channels import Kind
from .._protocol.streams_wire import StreamsWire
from .._protocol.wire import ClassicWire, ShardedWire, WireFormat
from .._transport.base import OnEntry
from .._transport.pubsub import RedisTransport
from .._transport.sharded import ShardedTransport
from .._transport.stream_reader import StreamReader

_LOGGER = logging.getLogger("socketio_redis_async.cli")
_LOGGER.addHandler(logging.NullHandler())
_LOGGER.propagate = False  # a one-shot command reports its own errors, in one line

CliTransport = RedisTransport | ShardedTransport
MakeTransport = Callable[..., CliTransport]


def protocol(args: argparse.Namespace) -> tuple[WireFormat, MakeTransport]:
    """The one place the CLI picks a protocol: its wire format and the (pub/sub) transport
    under it; a streams monitor reads the streams itself."""
    classic = functools.partial(RedisTransport, pub_client=None, sub_client=None)
    if args.streams:
        if args.sharded:
            raise ValueError("pass --sharded or --streams, not both")
        wire = StreamsWire(
            stream_name=args.stream_name,
            stream_count=args.stream_count,
            sharded_pubsub=args.sharded_pub_sub,
        )
        return wire, ShardedTransport if args.sharded_pub_sub else classic
    if args.sharded:
        return ShardedWire(args.subscription_mode), ShardedTransport
    return ClassicWire(), classic


class CliBus:
    """One command's transport: listen, count, publish a request, collect the answers."""

    def __init__(
        self,
        url: str,
        key: str,
        nsp: str,
        timeout: float,
        *,
        wire: WireFormat,
        transport: MakeTransport,
        on_message: Callable[[bytes, bytes], Awaitable[None]] | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """``on_change(subscribed)``: the link was lost (False) or is back (True)."""
        self.wire = wire
        self.uid = wire.new_uid()
        self.key = key
        self.nsp = nsp
        self.channels = wire.channels(key, nsp)
        self.pending = PendingRequests(lambda answer, exc: None)
        self._timeout = timeout
        self._on_message = on_message
        self._settings: dict[str, Any] = {
            "url": url,
            "key": key,
            "redis_options": {},
            "on_message": self._received,
            "on_change": on_change or (lambda subscribed: None),
            "uid": lambda: self.uid,
            "timeout": timeout,
            "publish_timeout": timeout,
            "health_check_interval": 2.0,
            "max_message_size": 512 * 1024 * 1024,
            "logger": _LOGGER,
        }
        self.transport = transport(**self._settings)
        self._router: ShardedTransport | None = None

    @property
    def answers(self) -> str:
        """Where answers to this tool arrive."""
        return self.wire.answer_channel(self.channels, self.uid)

    async def start(self, channels: Iterable[str], patterns: Iterable[str] = ()) -> None:
        """Subscribe ``channels`` and ``patterns``; return once Redis confirmed them."""
        for channel in channels:
            self.transport.want(channel)
        for pattern in patterns:
            self.transport.want_pattern(pattern)
        await self.transport.start()

    async def count_servers(self) -> int:
        return await self.transport.count_subscribers(self.channels.request)

    async def server_uids(self) -> list[str]:
        """The uids of the servers listening on a channel of their own (never this tool's,
        nor, with the sharded protocol, a room channel the pattern matches too)."""
        uids = self.channels.uids(await self.transport.channels(self.channels.uid_pattern))
        return [uid for uid in uids if self.wire.is_server_uid(uid) and uid != self.uid]

    async def publish_request(self, request: dict[str, Any]) -> None:
        out = self.wire.request(self.uid, self.channels, request)
        if out.fields is None:
            await self.transport.publish(out.target, out.payload)
        else:
            await self.transport.append(out.target, out.fields, out.max_len)

    async def _received(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        if self._on_message is not None:
            await self._on_message(channel, payload)
            return
        try:
            answer = self.wire.decode(Kind.RESPONSE, self.nsp, payload, self.uid)
        except MalformedMessage:
            return
        if isinstance(answer, dict):  # not a broadcast or request where answers arrive
            self.pending.on_response(answer)

    async def stream_readers(self, on_entry: OnEntry, start: str | None) -> list[StreamReader]:
        """Readers of every stream of the streams wire format (for ``monitor``): one for
        all on a standalone Redis, one per stream on the shard owning it on a cluster."""
        assert isinstance(self.wire, StreamsWire)
        router = self.transport
        if not isinstance(router, ShardedTransport):
            router = self._router = ShardedTransport(**self._settings)
        router.listen()
        names = self.wire.streams
        groups = [[name] for name in names] if await router.is_cluster() else [names]
        return [
            StreamReader(
                group,
                functools.partial(router.open_connection, "monitor", group[0]),
                on_entry,
                read_count=100,
                block=1.0,
                timeout=self._timeout,
                where=self.transport.where,
                logger=_LOGGER,
                on_change=lambda: None,
                start=None if start is None else start.encode(),
            )
            for group in groups
        ]

    async def aclose(self) -> None:
        self.pending.clear()
        await self.transport.aclose()
        if self._router is not None:
            await self._router.aclose()
