"""``AsyncShardedRedisAdapter``: the adapter on Redis 7 sharded pub/sub (SPUBLISH).

It is :class:`AsyncRedisAdapter` with three layers replaced: the transport (shards,
see ``_sharded_transport``), the channel plan (``K#N#``, ``K#N#U#`` and, in the dynamic
modes, ``K#N#<room>#``) and the wire format (ClusterAdapter messages, see
``_protocol.sharded``). The responders and the requests layer are shared: requests and
answers are translated to the classic shapes at the edge.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis, RedisCluster

from ._adapter import AsyncRedisAdapter
from ._cluster.plan import NamespacePlan
from ._cluster.receiver import ShardedReceiver
from ._cluster.responders import EncodeAnswer
from ._errors import RequestTimeoutError
from ._health import ConnectionCallback
from ._local.backlog import DEFAULT_MAX_SOCKET_BACKLOG
from ._operator import RoomArg
from ._protocol import sharded
from ._protocol.messages import Request
from ._protocol.rooms import Room, check_room
from ._transport.sharded import ShardedTransport


class AsyncShardedRedisAdapter(AsyncRedisAdapter):
    """Client manager for ``socketio.AsyncServer`` on Redis 7 sharded pub/sub.

    Wire compatible with Node's ``createShardedAdapter`` (@socket.io/redis-adapter 8.3):
    Python and Node servers with the same ``channel_prefix`` and ``subscription_mode``
    share rooms, broadcasts and the cluster API. Every channel lives on the shard that
    owns its hash slot, so adding masters to a Redis Cluster adds capacity, which classic
    pub/sub on a cluster does not.

    :param url: a standalone Redis 7+ or any node of a Redis Cluster (found with
        ``CLUSTER SLOTS``; the ACL then needs ``+cluster|slots``).
    :param channel_prefix: the channel prefix (Node's ``channelPrefix``), default ``socket.io``.
    :param subscription_mode: ``"dynamic"`` (default): a channel per room that has local
        members, socket-id rooms (20 characters) excepted, so a broadcast to one room
        reaches only the servers that hold it; ``"dynamic-private"``: socket-id rooms too;
        ``"static"``: only the namespace's and this server's channels.
    :param requests_timeout: seconds to wait for other servers' answers (Node waits 5).

    Every other option is :class:`AsyncRedisAdapter`'s. The protocol has no request for
    ``clients()`` and ``all_rooms()``: both are answered from ``fetch_sockets()``; and
    ``remote_join``/``remote_leave``/``remote_disconnect`` of a socket on another server
    look it up with ``fetch_sockets()`` first.
    """

    _receiver_class = ShardedReceiver
    _transport: ShardedTransport  # type: ignore[assignment]

    def __init__(
        self,
        url: str | None = None,
        *,
        channel_prefix: str = "socket.io",
        subscription_mode: str = "dynamic",
        host: str | None = None,
        port: int | None = None,
        requests_timeout: float = 5.0,
        ack_timeout: float = 60.0,
        max_message_size: int = 8 * 1024 * 1024,
        max_answer_size: int = 30 * 1024 * 1024,
        health_check_interval: float = 2.0,
        share_sensitive_headers: bool = False,
        max_socket_backlog: int | None = DEFAULT_MAX_SOCKET_BACKLOG,
        redact_headers: Iterable[str] | None = None,
        redact_query: Iterable[str] | None = None,
        logger: logging.Logger | None = None,
        publish_timeout: float = 5.0,
        on_connection_change: ConnectionCallback | None = None,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        self._mode = sharded.check_mode(subscription_mode)
        super().__init__(
            url,
            host=host,
            port=port,
            key=channel_prefix,
            requests_timeout=requests_timeout,
            ack_timeout=ack_timeout,
            max_message_size=max_message_size,
            max_answer_size=max_answer_size,
            health_check_interval=health_check_interval,
            share_sensitive_headers=share_sensitive_headers,
            max_socket_backlog=max_socket_backlog,
            redact_headers=redact_headers,
            redact_query=redact_query,
            logger=logger,
            publish_timeout=publish_timeout,
            on_connection_change=on_connection_change,
            redis_options=redis_options,
        )

    @property
    def subscription_mode(self) -> str:
        """``"static"``, ``"dynamic"`` or ``"dynamic-private"``."""
        return self._mode

    # -- the layers -----------------------------------------------------------------------

    def _new_uid(self) -> str:
        return sharded.new_uid()

    def _new_transport(  # type: ignore[override]
        self, pub_client: Redis | RedisCluster | None, sub_client: Redis | RedisCluster | None
    ) -> ShardedTransport:
        return ShardedTransport(**self._transport_options())

    def _new_plan(self) -> NamespacePlan:
        return NamespacePlan(
            self._options.key,
            lambda: self.uid,
            True,
            self._transport,
            self._keeps,
            build=sharded.channels,
            has_channel=functools.partial(sharded.room_has_channel, self._mode),
        )

    def _answer_encoder(self) -> EncodeAnswer | None:
        def encode(
            nsp: str, request: Request, value: dict[str, Any], limit: int
        ) -> tuple[str, bytes, str | None]:
            payload, error = sharded.encode_answer(self.uid, nsp, value, request.kind, limit)
            return self._plan.channels_of(nsp).response_for(request.uid or ""), payload, error

        return encode

    # -- the wire -------------------------------------------------------------------------

    async def _publish_request(self, nsp: str, request: dict[str, Any]) -> None:
        payload = sharded.encode_request(self.uid, nsp, request)
        await self._publish(self._plan.channels_of(nsp).request, payload)

    def _encode_broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> bytes:
        return sharded.encode_broadcast(self.uid, nsp, data, rooms, except_rooms, flags)

    def _broadcast_channel(self, nsp: str, rooms: list[Room]) -> str:
        return sharded.broadcast_channel(self._plan.channels_of(nsp), self._mode, rooms)

    async def live_servers(self, nsp: str) -> list[str]:
        """Uids of the servers listening on their own channel of ``nsp``."""
        return [uid for uid in await super().live_servers(nsp) if sharded.is_uid(uid)]

    # -- what the protocol has no request for -----------------------------------------------

    async def clients(self, rooms: RoomArg | None = None, *, namespace: str = "/") -> list[str]:
        """Sids of the sockets in any of ``rooms`` (all sockets if None), cluster-wide."""
        return [socket.id for socket in await self.fetch_sockets(rooms, namespace=namespace)]

    async def all_rooms(self, *, namespace: str = "/") -> set[Room]:
        """Every room of every server, socket-id rooms included."""
        rooms = set(self._local.room_names(namespace))
        for socket in await self.fetch_sockets(namespace=namespace):
            rooms.update(socket.rooms)
        return rooms

    async def _remote_socket_rooms(self, join: bool, sid: str, room: Room, namespace: str) -> None:
        if self._local.is_local(sid, namespace):
            self._local.apply_rooms(namespace, join, [sid], (), [room])
            return
        await self._require_remote(sid, namespace)
        await self._sockets_rooms(join, [room], [sid], None, namespace, False)

    async def remote_disconnect(
        self, sid: str, close: bool = False, *, namespace: str = "/"
    ) -> None:
        """Disconnect socket ``sid``; raise RequestTimeoutError if no server holds it."""
        if self._local.is_local(sid, namespace):
            await self.disconnect_sockets(close, sid, namespace=namespace, local=True)
            return
        await self._require_remote(sid, namespace)
        await self.disconnect_sockets(close, sid, namespace=namespace)

    async def _require_remote(self, sid: str, namespace: str) -> None:
        check_room(sid)
        if not await self.fetch_sockets(sid, namespace=namespace):
            raise RequestTimeoutError(f"no server holds socket {sid!r} in {namespace!r}", [], [])
