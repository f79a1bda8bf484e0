"""Emitters: publish to Socket.IO clients from processes that are not servers.

Wire-compatible with Node's ``@socket.io/redis-emitter`` 5.x: broadcasts are msgpack
``["emitter", packet, {rooms, flags, except}]`` on ``K#N#`` or ``K#N#room#``; socket
operations are JSON requests without uid on ``K-request#N#``. ``Emitter`` uses the
synchronous redis-py client (Celery tasks, Django views, cron jobs); ``AsyncEmitter``
uses ``redis.asyncio``. Both are immutable chains, like the adapter's operators.

Every publish is bounded by ``publish_timeout`` (default 5 s) and fails with
``PublishError`` past it. ``AsyncEmitter`` bounds each call itself; the synchronous
``Emitter`` can only bound its own client's sockets, so a ``redis.Redis`` passed as
``client`` keeps its own ``socket_timeout`` (give it one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis
import redis.asyncio

from ._access import client_location
from ._clients import async_client, sync_client
from ._commands import aclose_client, redis_call
from ._errors import AdapterClosedError, PublishError
from ._operator import RoomArg, Selection, check_namespace, rooms_of
from ._options import DEFAULT_URL, check_key, check_seconds, check_url, redact_url
from ._protocol import messages
from ._protocol.channels import NamespaceChannels
from ._protocol.messages import check_event


def _no_callbacks(args: tuple[Any, ...]) -> None:
    if any(callable(arg) for arg in args):
        raise TypeError(
            "acknowledgements are not supported by emitters; use a server's "
            "emit_with_ack() or server_side_emit_with_ack() instead"
        )


def broadcast_message(
    key: str, sel: Selection, event: str, args: tuple[Any, ...]
) -> tuple[str, bytes]:
    """The channel and payload of an emitter broadcast."""
    check_event(event)
    _no_callbacks(args)
    rooms = list(sel.rooms)
    payload = messages.encode_emitter_broadcast(
        sel.nsp, [event, *args], rooms, list(sel.except_rooms), dict(sel.flags)
    )
    return NamespaceChannels.build(key, sel.nsp).for_rooms(rooms), payload


def rooms_message(key: str, sel: Selection, join: bool, rooms: RoomArg) -> tuple[str, bytes]:
    """socketsJoin (2) / socketsLeave (3) as the emitter sends them."""
    request = messages.rooms_request(
        None, join, list(sel.rooms), list(sel.except_rooms), list(rooms_of(rooms))
    )
    return NamespaceChannels.build(key, sel.nsp).request, messages.encode_request(request)


def disconnect_message(key: str, sel: Selection, close: bool) -> tuple[str, bytes]:
    """disconnectSockets (4) as the emitter sends it."""
    if not isinstance(close, bool):
        raise TypeError("close must be True or False")
    request = messages.disconnect_request(None, list(sel.rooms), list(sel.except_rooms), close)
    return NamespaceChannels.build(key, sel.nsp).request, messages.encode_request(request)


def server_side_message(key: str, nsp: str, event: str, args: tuple[Any, ...]) -> tuple[str, bytes]:
    """serverSideEmit (6) as the emitter sends it (never with an ack)."""
    check_event(event)
    _no_callbacks(args)
    request = messages.server_side_emit_request(messages.EMITTER_UID, [event, *args])
    return NamespaceChannels.build(key, nsp).request, messages.encode_request(request)


_Op = TypeVar("_Op", "EmitterOperator", "AsyncEmitterOperator")
_Self = TypeVar("_Self", bound="_EmitterBase[Any]")


@dataclass(frozen=True, slots=True)
class EmitterOperator(Selection):
    """A chain on a synchronous :class:`Emitter`."""

    _emitter: Emitter | None = field(default=None, repr=False, compare=False)

    @property
    def _e(self) -> Emitter:
        assert self._emitter is not None, "create operators with emitter.to() / emitter.of()"
        return self._emitter

    def emit(self, event: str, *args: Any) -> int:
        """Broadcast; return how many Redis subscribers (servers) received it."""
        return self._e._publish(*broadcast_message(self._e.key, self, event, args))

    def sockets_join(self, rooms: RoomArg) -> None:
        """Make the matching sockets join ``rooms`` on every server."""
        self._e._publish(*rooms_message(self._e.key, self, True, rooms))

    def sockets_leave(self, rooms: RoomArg) -> None:
        """Make the matching sockets leave ``rooms`` on every server."""
        self._e._publish(*rooms_message(self._e.key, self, False, rooms))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the matching sockets; ``close`` also closes their connection."""
        self._e._publish(*disconnect_message(self._e.key, self, close))


@dataclass(frozen=True, slots=True)
class AsyncEmitterOperator(Selection):
    """A chain on an :class:`AsyncEmitter`."""

    _emitter: AsyncEmitter | None = field(default=None, repr=False, compare=False)

    @property
    def _e(self) -> AsyncEmitter:
        assert self._emitter is not None, "create operators with emitter.to() / emitter.of()"
        return self._emitter

    async def emit(self, event: str, *args: Any) -> int:
        """Broadcast; return how many Redis subscribers (servers) received it."""
        return await self._e._publish(*broadcast_message(self._e.key, self, event, args))

    async def sockets_join(self, rooms: RoomArg) -> None:
        """Make the matching sockets join ``rooms`` on every server."""
        await self._e._publish(*rooms_message(self._e.key, self, True, rooms))

    async def sockets_leave(self, rooms: RoomArg) -> None:
        """Make the matching sockets leave ``rooms`` on every server."""
        await self._e._publish(*rooms_message(self._e.key, self, False, rooms))

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the matching sockets; ``close`` also closes their connection."""
        await self._e._publish(*disconnect_message(self._e.key, self, close))


class _EmitterBase(Generic[_Op]):
    _client: Any
    _operator: type[_Op]

    def __init__(
        self,
        url: str | None,
        client: Any,
        client_type: Any,
        key: str,
        namespace: str,
        publish_timeout: float,
    ) -> None:
        if url is not None and client is not None:
            raise ValueError("pass either url or client, not both")
        if client is not None and not isinstance(client, client_type):
            raise TypeError(
                f"client must be a {client_type.__module__}.{client_type.__name__}, "
                f"not {type(client).__name__}"
            )
        raw_url = check_url(url) if url is not None else DEFAULT_URL
        self.url = redact_url(raw_url)
        """The Redis URL with its password and other credentials replaced by ``***``."""
        self.key = check_key(key)
        self.namespace = check_namespace(namespace)
        self.publish_timeout = check_seconds("publish_timeout", publish_timeout)
        self._owns_client = client is None
        if client is None:
            timeout = self.publish_timeout
            make = sync_client if client_type is redis.Redis else async_client
            client = make(raw_url, socket_timeout=timeout, socket_connect_timeout=timeout)
            self._where = self.url
        else:
            self._where = client_location(client)
        self._client = client
        self._closed = False

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
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        key: str = "socket.io",
        namespace: str = "/",
        publish_timeout: float = 5.0,
    ) -> None:
        super().__init__(url, client, redis.Redis, key, namespace, publish_timeout)
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
        self._publish(*server_side_message(self.key, self.namespace, event, args))

    def _publish(self, channel: str, payload: bytes) -> int:
        self._check_open()
        try:
            return int(self._client.publish(channel, payload))
        except (redis.RedisError, OSError) as exc:
            raise PublishError(
                f"could not publish: Redis at {self._where}: {type(exc).__name__}: {exc}"
            ) from exc

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
        client: redis.asyncio.Redis | None = None,
        key: str = "socket.io",
        namespace: str = "/",
        publish_timeout: float = 5.0,
    ) -> None:
        super().__init__(url, client, redis.asyncio.Redis, key, namespace, publish_timeout)
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
        await self._publish(*server_side_message(self.key, self.namespace, event, args))

    async def _publish(self, channel: str, payload: bytes) -> int:
        self._check_open()
        count = await redis_call(
            self._client.publish(channel, payload),
            what="could not publish",
            where=self._where,
            timeout=self.publish_timeout,
            error=PublishError,
        )
        return int(count)

    async def aclose(self) -> None:
        """Close the Redis client if the emitter created it."""
        if not self._closed and self._owns_client:
            await aclose_client(self._client, self.publish_timeout)
        self._closed = True

    async def __aenter__(self) -> AsyncEmitter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
