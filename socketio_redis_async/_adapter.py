"""``AsyncRedisAdapter``: the host glue between python-socketio and the layers below.

python-socketio calls the manager overrides here (``emit``, ``pre_connect``,
``enter_room``...); this module wires the layers and does nothing else:

    host glue (this module, and ``_cluster_api`` for the cluster-wide API)
      -> requests (``_requests``: pending requests, answers, acks)
      -> protocol (``_protocol``: build, encode, decode, validate; no I/O)
      -> transport (``_transport``: publish, subscribe, count servers; Redis errors)

and back up: transport -> protocol -> responders (``_responders``, against the
``LocalView`` of ``_local``) or delivery (``_delivery``) -> transport.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import anyio
from redis.asyncio import Redis, RedisCluster

from ._cluster.bridge import Bridge
from ._cluster.bridge import check_channel as check_bridge_channel
from ._cluster.plan import NamespacePlan
from ._cluster.receiver import Receiver
from ._cluster.requests import Requester
from ._cluster.responders import EncodeAnswer, Responders
from ._health import AdapterHealth, ConnectionCallback, notify, stats_of
from ._local.backlog import DEFAULT_MAX_SOCKET_BACKLOG
from ._local.delivery import Delivery
from ._local.sockets import LocalSockets
from ._manager import ManagerOverrides
from ._options import DEFAULT_KEY, build_options
from ._protocol import messages
from ._transport.histogram import LatencyHistogram
from ._transport.pubsub import RedisTransport

_Self = TypeVar("_Self", bound="AsyncRedisAdapter")


class AsyncRedisAdapter(ManagerOverrides):
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
    :param on_connection_change: ``callback(subscribed)``, sync or async, run in a task the
        adapter owns: ``False`` when the pub/sub link to Redis is lost or cannot be made
        (messages from other servers are being missed), ``True`` once it is back and every
        subscription is confirmed (re-sync what may have been missed). See ``health()``.
    :param redis_options: keyword arguments for the Redis clients created from ``url``
        (python-socketio ``AsyncRedisManager``'s ``redis_options``).
    :param bridge_channel: while a fleet moves over from ``AsyncRedisManager``, its
        ``channel`` (python-socketio's default is ``"socketio"``): this server also applies
        the messages of those servers and publishes its own operations there for them.
    """

    _receiver_class: type[Receiver] = Receiver
    _transport: RedisTransport

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
        on_connection_change: ConnectionCallback | None = None,
        bridge_channel: str | None = None,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, client in (("pub_client", pub_client), ("sub_client", sub_client)):
            if client is not None and not isinstance(client, (Redis, RedisCluster)):
                raise TypeError(
                    f"{name} must be a redis.asyncio.Redis or RedisCluster instance, not "
                    f"{type(client).__name__}"
                )
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError("logger must be a logging.Logger")
        if on_connection_change is not None and not callable(on_connection_change):
            raise TypeError("on_connection_change must be a function taking one bool")
        self._options = build_options(
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
            share_sensitive_headers=share_sensitive_headers,
            redact_headers=redact_headers,
            redact_query=redact_query,
            redis_options=redis_options,
        )
        self.logger = logger or logging.getLogger("socketio_redis_async")
        self._pid = os.getpid()
        self._uid = self._new_uid()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._on_connection_change = on_connection_change
        self._connect_auth: dict[str, tuple[str, Any]] = {}
        self._server_handlers: dict[tuple[str, str], Callable[..., Any]] = {}
        self.custom_hook: Callable[[Any], Any] | None = None
        """Answers ``custom_request(data)`` on this server; sync or async, returns the answer."""
        self._transport = self._new_transport(pub_client, sub_client)
        self._where = self._transport.where
        self._plan = self._new_plan()
        self._delivery = Delivery(self, self._options.max_socket_backlog, self._spawn, self.logger)
        self._local = LocalSockets(
            self,
            self._delivery,
            redact_headers=self._options.redact_headers,
            redact_query=self._options.redact_query,
            close_timeout=self._options.requests_timeout,
        )
        self._requests = Requester(
            self,
            self._options.requests_timeout,
            self._spawn,
            lambda answer, exc: self._receiver.on_unusable_answer(answer, exc),
            self._options.max_answer_size,
        )
        self._responders = Responders(
            lambda: self.uid,
            self._local,
            self._publish,
            self._plan.channels_of,
            self._spawn,
            max_answer_size=self._options.max_answer_size,
            is_own=self._requests.__contains__,
            handler_of=self._handler_of,
            ack_timeout=self._options.ack_timeout,
            logger=self.logger,
            encode_answer=self._answer_encoder(),
        )
        channel = check_bridge_channel(bridge_channel)
        if channel is not None and channel.startswith(f"{self._options.key}#"):
            raise ValueError(
                f"bridge_channel {channel!r} is one of this adapter's own channels (key "
                f"{self._options.key!r}); pass the AsyncRedisManager's channel, e.g. 'socketio'"
            )
        self._bridge = None
        if channel is not None:
            self._bridge = Bridge(
                self,
                self._local,
                self._publish,
                lambda: self.uid,
                self._spawn,
                self._options.ack_timeout,
                channel,
                self.logger,
            )
            self._transport.want(channel)
        self._receiver = self._receiver_class(
            uid=lambda: self.uid,
            options=self._options,
            plan=self._plan,
            local=self._local,
            delivery=self._delivery,
            responders=self._responders,
            requests=self._requests,
            bridge=self._bridge,
            logger=self.logger,
        )

    # -- the layers (the sharded adapter replaces some) --------------------------------

    def _new_uid(self) -> str:
        return messages.new_uid()

    def _new_transport(
        self, pub_client: Redis | RedisCluster | None, sub_client: Redis | RedisCluster | None
    ) -> RedisTransport:
        options = self._transport_options()
        return RedisTransport(pub_client=pub_client, sub_client=sub_client, **options)

    def _transport_options(self) -> dict[str, Any]:
        return {
            "url": self._options.url,
            "key": self._options.key,
            "redis_options": self._options.redis_options,
            "on_message": self._on_message,
            "on_change": self._connection_changed,
            "uid": lambda: self.uid,
            "timeout": self._options.requests_timeout,
            "publish_timeout": self._options.publish_timeout,
            "health_check_interval": self._options.health_check_interval,
            "max_message_size": self._options.max_message_size,
            "logger": self.logger,
        }

    def _new_plan(self) -> NamespacePlan:
        multiplexing = self._options.with_channel_multiplexing
        return NamespacePlan(
            self._options.key, lambda: self.uid, multiplexing, self._transport, self._keeps
        )

    def _answer_encoder(self) -> EncodeAnswer | None:
        return None  # the classic protocol's

    # -- properties ---------------------------------------------------------------------

    @property
    def uid(self) -> str:
        """This server's id on the wire; a new one is made in a forked child process."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._uid = self._new_uid()
        return self._uid

    @property
    def host_id(self) -> str:
        """The same as :attr:`uid`; python-socketio's admin UI reads it."""
        return self.uid

    @property
    def prefix(self) -> str:
        """The channel prefix (the ``key`` option)."""
        return self._options.key

    @property
    def requests_timeout(self) -> float:
        """Seconds to wait for answers from other servers."""
        return self._options.requests_timeout

    @property
    def pub_client(self) -> Redis:
        """The Redis client used to publish."""
        return self._transport.pub_client

    @property
    def sub_client(self) -> Redis:
        """The Redis client whose settings the pub/sub connection uses."""
        return self._transport.sub_client

    @property
    def stats(self) -> dict[str, int]:
        """Counters for monitoring: dropped messages, reconnects, subscriptions, pending acks."""
        transport = self._transport
        return stats_of(
            self._receiver,
            transport.subscriber,
            transport.publisher,
            self._requests,
            self._delivery,
        )

    @property
    def publish_latency(self) -> LatencyHistogram:
        """Seconds from queueing each PUBLISH to Redis answering it (a live histogram)."""
        return self._transport.latency

    def health(self) -> AdapterHealth:
        """A snapshot of the adapter's link to Redis, for health checks and dashboards."""
        return self._transport.health()

    # -- lifecycle ----------------------------------------------------------------------

    def initialize(self) -> None:
        """Start the listener (python-socketio calls this on the first connection)."""
        if self._transport.listening:
            return
        for nsp in self._server_namespaces():
            self._plan.ensure(nsp)
        self._transport.listen()

    async def start(self) -> None:
        """Start listening and return once Redis has confirmed the subscriptions.

        Call it from the ASGI lifespan / aiohttp ``on_startup`` so that the server
        receives cross-server traffic before its first client connects.
        Raises :class:`AccessDeniedError` as soon as Redis refuses the credentials or an ACL
        permission, and :class:`RedisCommandError` if Redis does not answer within
        ``requests_timeout``; either way the listener keeps retrying in the background.
        """
        if self.server is None:
            raise RuntimeError(
                "pass the adapter to socketio.AsyncServer(client_manager=...) before start()"
            )
        self.server.manager_initialized = True
        self.initialize()
        await self._transport.start()

    async def aclose(self) -> None:
        """Stop listening, drop pending acks and close the Redis clients this adapter owns."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await self._transport.stop_listening()
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=10)
                if stuck:
                    self.logger.error("%d adapter tasks did not stop within 10 s", len(stuck))
            self._requests.clear()
            self._delivery.close()
            await self._transport.aclose()

    async def __aenter__(self: _Self) -> _Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run user code (handlers, ack callbacks) in a task the adapter owns and awaits."""
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("a handler or ack callback failed", exc_info=task.exception())

    async def _on_message(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        await self._receiver.on_message(channel, payload, pattern)

    def _connection_changed(self, subscribed: bool) -> None:
        if self._on_connection_change is not None:
            self._spawn(notify(self._on_connection_change, subscribed))
