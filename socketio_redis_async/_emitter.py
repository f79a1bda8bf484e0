"""Emitters: publish to Socket.IO clients from processes that are not servers.

Wire-compatible with Node's ``@socket.io/redis-emitter`` 5.x: broadcasts are msgpack
``["emitter", packet, {rooms, flags, except}]`` on ``K#N#`` or ``K#N#room#``; socket
operations are JSON requests without uid on ``K-request#N#``. ``Emitter`` uses the
synchronous redis-py client (Celery tasks, Django views, cron jobs); ``AsyncEmitter``
uses ``redis.asyncio``. Both are immutable chains, like the adapter's operators.

With ``sharded=True`` they speak to servers on :class:`AsyncShardedRedisAdapter` (or Node's
``createShardedAdapter``) instead: ClusterAdapter messages on SPUBLISH, which Node's own
emitter cannot do (socket.io-redis-emitter#127). On a Redis Cluster (found on the first
publish) they publish through redis-py's ``RedisCluster``, to the shard of each channel.

Every publish is bounded by ``publish_timeout`` (default 5 s) and fails with
``PublishError`` past it. ``AsyncEmitter`` bounds each call itself; the synchronous
``Emitter`` can only bound its own client's sockets, so a ``redis.Redis`` passed as
``client`` keeps its own ``socket_timeout`` (give it one).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import redis
import redis.asyncio

from ._emitter_link import Link, send, send_async
from ._emitter_messages import (
    AsyncEmitterOperator,
    EmitterOperator,
    emitter_wire,
    server_side_message,
)
from ._errors import AdapterClosedError
from ._operator import RoomArg, check_namespace
from ._options import DEFAULT_URL, check_key, check_seconds, check_url, redact_url
from ._protocol.sharded import Mode
from ._protocol.wire import Outgoing, ShardedWire, WireFormat
from ._transport.access import client_location
from ._transport.clients import async_client, sync_client
from ._transport.commands import aclose_client

__all__ = ["AsyncEmitter", "AsyncEmitterOperator", "Emitter", "EmitterOperator"]
_Op = TypeVar("_Op", EmitterOperator, AsyncEmitterOperator)
_Self = TypeVar("_Self", bound="_EmitterBase[Any]")


class _EmitterBase(Generic[_Op]):
    _operator: type[_Op]

    def __init__(
        self,
        url: str | None,
        client: Any,
        client_type: Any,
        key: str,
        namespace: str,
        publish_timeout: float,
        wire: WireFormat,
    ) -> None:
        if url is not None and client is not None:
            raise ValueError("pass either url or client, not both")
        if client is not None and not isinstance(client, client_type):
            names = " or ".join(f"{t.__module__}.{t.__name__}" for t in client_type)
            raise TypeError(f"client must be a {names}, not {type(client).__name__}")
        raw_url = check_url(url) if url is not None else DEFAULT_URL
        self.url = redact_url(raw_url)
        """The Redis URL with its password and other credentials replaced by ``***``."""
        self.key = check_key(key)
        self.namespace = check_namespace(namespace)
        self.publish_timeout = check_seconds("publish_timeout", publish_timeout)
        self.mode: Mode | None = wire.mode if isinstance(wire, ShardedWire) else None
        """The sharded servers' subscription mode; None for the other protocols."""
        self._wire = wire
        """The servers' protocol (every message is the wire's business)."""
        self._owns_client = client is None
        if client is None:
            timeout = self.publish_timeout
            make = sync_client if client_type[0] is redis.Redis else async_client
            client = make(raw_url, socket_timeout=timeout, socket_connect_timeout=timeout)
            self._where = self.url
        else:
            self._where = client_location(client)
        # SPUBLISH and XADD must reach the shard owning their channel or stream.
        routed = self._wire.publish_command == "SPUBLISH" or self._wire.name == "streams"
        checked = not (self._owns_client and routed)
        self._link = Link(client, checked, raw_url, self._where, self.publish_timeout)
        self._closed = False

    @property
    def _client(self) -> Any:
        return self._link.client

    def of(self: _Self, namespace: str) -> _Self:
        """The same emitter for another namespace (a missing leading ``/`` is added)."""
        child = object.__new__(type(self))
        child.__dict__.update(
            self.__dict__, namespace=check_namespace(namespace), _owns_client=False
        )
        return child

    def _op(self) -> _Op:
        return self._operator(nsp=self.namespace, _emitter=self)  # type: ignore[arg-type]

    def to(self, *rooms: RoomArg) -> _Op:
        """Target rooms (a socket id is a room)."""
        return self._op().to(*rooms)

    def in_(self, *rooms: RoomArg) -> _Op:
        """Alias of :meth:`to`."""
        return self._op().to(*rooms)

    def except_(self, *rooms: RoomArg) -> _Op:
        """Skip the sockets in these rooms."""
        return self._op().except_(*rooms)

    @property
    def volatile(self) -> _Op:
        """A volatile broadcast."""
        return self._op().volatile

    def compress(self, value: bool) -> _Op:
        """Set the compress flag."""
        return self._op().compress(value)

    def _check_open(self) -> None:
        if self._closed:
            raise AdapterClosedError("this emitter was closed; create a new one")


class Emitter(_EmitterBase["EmitterOperator"]):
    """Synchronous emitter (redis-py). ``Emitter(url).to("room").emit("event", data)``.

    :param url: Redis URL (``redis://``, ``rediss://``, ``unix://``), default localhost.
        The ``url`` attribute holds it redacted (credentials replaced by ``***``).
    :param client: an existing ``redis.Redis`` instead of a URL (never closed by the emitter).
    :param key: channel prefix, default ``socket.io``.
    :param namespace: namespace, default ``/``.
    :param publish_timeout: seconds a publish may take before it fails with PublishError
        (default 5); applied to the emitter's own client only.
    :param sharded: speak the sharded protocol (SPUBLISH) of servers on
        ``AsyncShardedRedisAdapter`` / Node's ``createShardedAdapter``; ``client`` may then
        be a ``redis.RedisCluster``.
    :param subscription_mode: those servers' subscription mode (default ``"dynamic"``).
    :param streams: speak to servers on ``AsyncStreamsRedisAdapter`` / Node's
        redis-streams-adapter: every message is an entry appended to the servers' stream,
        as ``@socket.io/redis-streams-emitter`` 0.1.1 writes it (XADD, ``uid`` ``emitter``).
    :param stream_name: those servers' ``stream_name`` (default ``socket.io``).
    :param stream_count: those servers' ``stream_count`` (default 1): the stream of each
        namespace is named as they name it (Node's emitter has no such option).
    :param max_len: trim the stream to about this many entries (``MAXLEN ~``, default 10000).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | redis.RedisCluster | None = None,
        key: str = "socket.io",
        namespace: str = "/",
        publish_timeout: float = 5.0,
        sharded: bool = False,
        subscription_mode: str = "dynamic",
        streams: bool = False,
        stream_name: str = "socket.io",
        stream_count: int = 1,
        max_len: int = 10_000,
    ) -> None:
        types = (redis.Redis, redis.RedisCluster)
        wire = emitter_wire(sharded, subscription_mode, streams, stream_name, stream_count, max_len)
        super().__init__(url, client, types, key, namespace, publish_timeout, wire)
        self._operator = EmitterOperator

    def emit(self, event: str, *args: Any) -> int:
        """Broadcast to the whole namespace; return how many servers received it."""
        return self._op().emit(event, *args)

    def sockets_join(self, rooms: RoomArg) -> None:
        """Make every socket of the namespace join ``rooms``."""
        self._op().sockets_join(rooms)

    def sockets_leave(self, rooms: RoomArg) -> None:
        """Make every socket of the namespace leave ``rooms``."""
        self._op().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the namespace."""
        self._op().disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> None:
        """Send an event to every server's ``adapter.on(event)`` handler (no ack)."""
        self._publish(server_side_message(self._wire, self.key, self.namespace, event, args))

    def _publish(self, out: Outgoing) -> int:
        self._check_open()
        return send(self._link, self._wire, out)

    def close(self) -> None:
        """Close the Redis client if the emitter created it."""
        if not self._closed and self._owns_client:
            self._client.close()
        self._closed = True

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncEmitter(_EmitterBase["AsyncEmitterOperator"]):
    """asyncio emitter (redis.asyncio). ``await AsyncEmitter(url).to("r").emit("ev", data)``.

    Same parameters as :class:`Emitter`; ``client`` is a ``redis.asyncio.Redis``, and
    ``publish_timeout`` bounds every publish, whichever client is used.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.asyncio.Redis | redis.asyncio.RedisCluster | None = None,
        key: str = "socket.io",
        namespace: str = "/",
        publish_timeout: float = 5.0,
        sharded: bool = False,
        subscription_mode: str = "dynamic",
        streams: bool = False,
        stream_name: str = "socket.io",
        stream_count: int = 1,
        max_len: int = 10_000,
    ) -> None:
        types = (redis.asyncio.Redis, redis.asyncio.RedisCluster)
        wire = emitter_wire(sharded, subscription_mode, streams, stream_name, stream_count, max_len)
        super().__init__(url, client, types, key, namespace, publish_timeout, wire)
        self._operator = AsyncEmitterOperator

    async def emit(self, event: str, *args: Any) -> int:
        """Broadcast to the whole namespace; return how many servers received it."""
        return await self._op().emit(event, *args)

    async def sockets_join(self, rooms: RoomArg) -> None:
        """Make every socket of the namespace join ``rooms``."""
        await self._op().sockets_join(rooms)

    async def sockets_leave(self, rooms: RoomArg) -> None:
        """Make every socket of the namespace leave ``rooms``."""
        await self._op().sockets_leave(rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the namespace."""
        await self._op().disconnect_sockets(close)

    async def server_side_emit(self, event: str, *args: Any) -> None:
        """Send an event to every server's ``adapter.on(event)`` handler (no ack)."""
        await self._publish(server_side_message(self._wire, self.key, self.namespace, event, args))

    async def _publish(self, out: Outgoing) -> int:
        self._check_open()
        return await send_async(self._link, self._wire, out)

    async def aclose(self) -> None:
        """Close the Redis client if the emitter created it."""
        if not self._closed and self._owns_client:
            await aclose_client(self._client, self.publish_timeout)
        self._closed = True

    async def __aenter__(self) -> AsyncEmitter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
