"""``AsyncShardedRedisAdapter``: the cluster engine on Redis 7 sharded pub/sub (SPUBLISH),
with Node's sharded wire format (``createShardedAdapter``, @socket.io/redis-adapter 8.3).

All it does is choose: the ``ShardedWire`` format for a subscription mode and the
``ShardedTransport`` (see ``_transport.sharded``); everything else is the engine's,
including what the protocol has no request for (answered from ``fetch_sockets``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from ._adapter import redis_transport_options
from ._api import ClusterAPI
from ._health import ConnectionCallback
from ._local.backlog import DEFAULT_MAX_SOCKET_BACKLOG
from ._options import build_options
from ._protocol.wire import ShardedWire
from ._transport.base import Transport, TransportHooks
from ._transport.sharded import ShardedTransport


class AsyncShardedRedisAdapter(ClusterAPI):
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

    Every other option is :class:`AsyncRedisAdapter`'s (``queued_emits`` included: a
    queued SPUBLISH answered ``MOVED`` is reported, not sent again). The protocol has no request for
    ``clients()`` and ``all_rooms()``: both are answered from ``fetch_sockets()``; and
    ``remote_join``/``remote_leave``/``remote_disconnect`` of a socket on another server
    look it up with ``fetch_sockets()`` first.
    """

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
        queued_emits: bool = False,
        direct_writes: bool = True,
        on_connection_change: ConnectionCallback | None = None,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        wire = ShardedWire(subscription_mode)
        options = build_options(
            url=url,
            host=host,
            port=port,
            key=channel_prefix,
            requests_timeout=requests_timeout,
            ack_timeout=ack_timeout,
            with_channel_multiplexing=True,
            max_message_size=max_message_size,
            max_answer_size=max_answer_size,
            health_check_interval=health_check_interval,
            max_socket_backlog=max_socket_backlog,
            publish_timeout=publish_timeout,
            queued_emits=queued_emits,
            direct_writes=direct_writes,
            share_sensitive_headers=share_sensitive_headers,
            redact_headers=redact_headers,
            redact_query=redact_query,
            redis_options=redis_options,
        )
        made: list[ShardedTransport] = []

        def transport(hooks: TransportHooks) -> Transport:
            made.append(ShardedTransport(**redis_transport_options(options, hooks, logger)))
            return made[0]

        super().__init__(
            options=options,
            wire=wire,
            transport=transport,
            logger=logger,
            on_connection_change=on_connection_change,
        )
        self._sharded = made[0]
        self._mode = wire.mode

    @property
    def subscription_mode(self) -> str:
        """``"static"``, ``"dynamic"`` or ``"dynamic-private"``."""
        return self._mode

    @property
    def pub_client(self) -> Redis:
        """The Redis client whose settings every connection uses."""
        return self._sharded.pub_client

    @property
    def sub_client(self) -> Redis:
        """The same client as :attr:`pub_client`."""
        return self._sharded.sub_client
