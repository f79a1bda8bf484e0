"""``AsyncRedisAdapter``: the cluster engine on Redis classic pub/sub, with Node's classic
wire format (``createAdapter`` of @socket.io/redis-adapter 8.x).

All it does is choose: the ``ClassicWire`` format (with or without channel
multiplexing) and the ``RedisTransport``; everything else is the engine's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis, RedisCluster

from ._api import ClusterAPI
from ._cluster.bridge import check_channel as check_bridge_channel
from ._health import ConnectionCallback
from ._local.backlog import DEFAULT_MAX_SOCKET_BACKLOG
from ._options import DEFAULT_KEY, Options, build_options
from ._protocol.wire import ClassicWire
from ._transport.base import Transport, TransportHooks
from ._transport.pubsub import RedisTransport


class AsyncRedisAdapter(ClusterAPI):
    """Client manager for ``socketio.AsyncServer`` that shares rooms and events over Redis.

    It speaks the wire protocol of Node's ``@socket.io/redis-adapter`` 8.x (classic mode)
    and ``@socket.io/redis-emitter`` 5.x, so Python and Node.js servers can share a cluster.

    :param url: Redis URL: ``redis://``, ``rediss://`` (TLS) or ``unix://``, with optional
        ``user:password@`` (percent-encoded) or ``?password=``; errors and logs show it
        with ``***`` instead of any credential. Default ``redis://localhost:6379/0``.
        It may name any node of a Redis Cluster: that is detected on the first connection
        (``HELLO``), and then servers are counted over every node and a connection whose
        node fails moves to another one (the ACL then also needs ``+cluster|nodes``).
    :param host: Redis host; with ``port``, an alternative to ``url``.
    :param port: Redis port.
    :param key: channel prefix shared by the cluster, default ``socket.io``.
    :param pub_client: a ``redis.asyncio.Redis`` to publish with, or a ``RedisCluster``
        whose first startup node's settings are used; never closed by the adapter.
    :param sub_client: a ``redis.asyncio.Redis`` (or ``RedisCluster``) whose settings the
        pub/sub connection uses; never closed by the adapter.
    :param requests_timeout: seconds to wait for other servers' answers (default 5).
    :param with_channel_multiplexing: subscribe to one channel per room that has local
        members (default True), so a server never receives traffic for rooms it does not
        hold; False PSUBSCRIBEs ``key#nsp#*`` like a classic Node server.
    :param ack_timeout: seconds an ack from a client on another server is waited for
        (default 60, python-socketio's ``call()`` default); the entry is dropped afterwards.
    :param max_message_size: largest broadcast or request published or accepted, in bytes
        (default 8 MiB). At most four times this many bytes may wait to be published;
        past that an emit fails at once with PublishError.
    :param max_answer_size: largest answer to another server's request (``fetch_sockets``,
        ``all_rooms``...) published or accepted, in bytes (default 30 MiB: about 50k
        sockets of python-socketio clients, 44k of browsers, in one ``fetch_sockets``
        answer; never less than ``max_message_size``). A larger answer is replaced by an
        error that the requester raises as :class:`AnswerTooLargeError`. Redis disconnects
        a subscriber whose pending output passes ``client-output-buffer-limit pubsub``
        (32 MiB hard by default), and the answers of every server arrive at once: for
        bigger queries raise that limit and this option together.
    :param health_check_interval: seconds of silence on the pub/sub connection before a PING
        (default 2); no answer for another interval means the link is dead: it is logged
        and re-established.
    :param redact_headers: names of the headers left out of the handshakes that
        ``fetch_sockets`` reports (case-insensitive); default
        :data:`DEFAULT_REDACTED_HEADERS` (``Cookie``, ``Authorization``, ``X-Api-Key``...).
        A list replaces the default; extend it with ``DEFAULT_REDACTED_HEADERS | {...}``.
    :param redact_query: names of the query parameters left out of those handshakes'
        ``query`` and ``url`` (case-insensitive); default :data:`DEFAULT_REDACTED_QUERY`
        (``token``, ``access_token``, ``api_key``...).
    :param share_sensitive_headers: the older switch: True is ``redact_headers=[]``.
    :param max_socket_backlog: packets that may wait for one client connection (default
        10,000); a connection still this far behind after its writer had a turn belongs to
        a client that stopped reading, and is disconnected. None means no limit.
    :param logger: a ``logging.Logger``; default ``logging.getLogger("socketio_redis_async")``.
    :param publish_timeout: seconds an emit may wait for Redis to accept its PUBLISH
        (default 5); past that it fails with PublishError and the connection is re-opened.
    :param queued_emits: True: an emit without a callback (``sio.emit(...)``,
        ``adapter.to(...).emit(...)``) returns once its message is queued for the pipelined
        publisher, as Node's adapters do, instead of once Redis accepted it (default False).
        For apps that emit from one loop (a ticker, a queue consumer): each awaited emit
        otherwise costs Redis a round trip of its own; queued, a loop's emits reach Redis
        in batches. Requests, acks and ``emit_with_ack`` still wait for Redis. Order holds:
        what a task emits and then awaits (a join, a request) reaches Redis in that order.
        The bound holds: while 4 x ``max_message_size`` bytes wait, an emit waits for room
        at most ``publish_timeout``, then raises PublishError (it was not queued). A queued
        message that Redis does not accept (after ``publish_timeout``, or refused) is not
        raised to anyone and not retried: it is counted (``stats["queued_publish_failures"]``
        and ``publish_failures``), logged (one warning per burst of failures, at most one
        every 10 s, with the count), and ``on_connection_change(False)`` is called;
        ``True`` follows once a queued message is accepted again while every subscription
        is confirmed. ``aclose()`` sends what is queued (waiting at most ``publish_timeout``
        + 1 s) and logs and counts (``stats["queued_dropped_at_close"]``) what it dropped.
    :param direct_writes: True (default): a broadcast's frame is written straight to each
        recipient's aiohttp websocket while that connection's engine.io writer is idle,
        encoded once per broadcast; False: every packet goes through python-engineio's
        per-connection queue. Only on verified python-engineio releases (4.12-4.15), and
        never for polling, ASGI servers or with engine.io's packet logging on.
    :param on_connection_change: ``callback(subscribed)``, sync or async, run in a task the
        adapter owns: ``False`` when the pub/sub link to Redis is lost or cannot be made
        (messages from other servers are being missed), ``True`` once it is back and every
        subscription is confirmed (re-sync what may have been missed). See ``health()``.
        With ``queued_emits``, also ``False`` while queued messages fail: ``True`` means
        the link works both ways.
    :param redis_options: keyword arguments for the Redis clients created from ``url``
        (python-socketio ``AsyncRedisManager``'s ``redis_options``).
    :param bridge_channel: while a fleet moves over from ``AsyncRedisManager``, its
        ``channel`` (python-socketio's default is ``"socketio"``): this server also applies
        the messages of those servers and publishes its own operations there for them.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        key: str = DEFAULT_KEY,
        pub_client: Redis | RedisCluster | None = None,
        sub_client: Redis | RedisCluster | None = None,
        requests_timeout: float = 5.0,
        with_channel_multiplexing: bool = True,
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
        bridge_channel: str | None = None,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        for name, client in (("pub_client", pub_client), ("sub_client", sub_client)):
            if client is not None and not isinstance(client, (Redis, RedisCluster)):
                raise TypeError(
                    f"{name} must be a redis.asyncio.Redis or RedisCluster instance, not "
                    f"{type(client).__name__}"
                )
        options = build_options(
            url=url,
            host=host,
            port=port,
            key=key,
            requests_timeout=requests_timeout,
            ack_timeout=ack_timeout,
            with_channel_multiplexing=with_channel_multiplexing,
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
        channel = check_bridge_channel(bridge_channel)
        if channel is not None and channel.startswith(f"{options.key}#"):
            raise ValueError(
                f"bridge_channel {channel!r} is one of this adapter's own channels (key "
                f"{options.key!r}); pass the AsyncRedisManager's channel, e.g. 'socketio'"
            )

        made: list[RedisTransport] = []

        def transport(hooks: TransportHooks) -> Transport:
            made.append(
                RedisTransport(
                    pub_client=pub_client,
                    sub_client=sub_client,
                    **redis_transport_options(options, hooks, logger),
                )
            )
            return made[0]

        super().__init__(
            options=options,
            wire=ClassicWire(options.with_channel_multiplexing),
            transport=transport,
            logger=logger,
            on_connection_change=on_connection_change,
            bridge_channel=channel,
        )
        self._redis = made[0]

    @property
    def pub_client(self) -> Redis:
        """The Redis client used to publish."""
        return self._redis.pub_client

    @property
    def sub_client(self) -> Redis:
        """The Redis client whose settings the pub/sub connection uses."""
        return self._redis.sub_client


def redis_transport_options(
    options: Options, hooks: TransportHooks, logger: logging.Logger | None
) -> dict[str, Any]:
    """The keyword arguments both Redis transports take, from the adapter's options."""
    return {
        "url": options.url,
        "key": options.key,
        "redis_options": options.redis_options,
        "on_message": hooks.on_message,
        "on_change": hooks.on_change,
        "uid": hooks.uid,
        "timeout": options.requests_timeout,
        "publish_timeout": options.publish_timeout,
        "health_check_interval": options.health_check_interval,
        "max_message_size": options.max_message_size,
        "logger": logger or logging.getLogger("socketio_redis_async"),
    }
