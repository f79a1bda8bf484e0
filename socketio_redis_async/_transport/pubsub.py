"""``RedisTransport``: the ``Transport`` (see ``base``) on classic Redis pub/sub.

One subscriber connection and one pipelined publisher connection, both dedicated, opened
with the settings of the clients given or created from the URL; every Redis failure
becomes this package's errors. On a Redis Cluster (detected on the first connection, see
``cluster_nodes``) it counts and lists over every node and moves a lost connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection

from .._errors import AccessDeniedError, AdapterClosedError, RedisCommandError
from .._health import AdapterHealth
from .access import access_error, acl_user, client_location, set_client_name
from .base import OnMessage, Report
from .clients import async_client, redact_url
from .cluster_nodes import ClusterNodes, node_client
from .commands import aclose_client, drop_connection, redis_call, xadd
from .histogram import LatencyHistogram
from .link_health import health_of, transport_stats
from .publisher import Publisher
from .subscriber import Subscriber


class RedisTransport:
    """Classic Redis pub/sub: one listener task, one pipelined publisher."""

    def __init__(
        self,
        *,
        url: str,
        key: str,
        pub_client: Redis | RedisCluster | None,
        sub_client: Redis | RedisCluster | None,
        redis_options: dict[str, Any],
        on_message: OnMessage,
        on_change: Callable[[bool], None],
        uid: Callable[[], str],
        timeout: float,
        publish_timeout: float,
        health_check_interval: float,
        max_message_size: int,
        logger: logging.Logger,
    ) -> None:
        self._url = url
        self._key = key
        self._redis_options = redis_options
        self._uid = uid
        self._timeout = timeout
        self._interval = health_check_interval
        self._logger = logger
        # A RedisCluster gives its first node's settings to a client of our own.
        self._owns_pub = pub_client is None or isinstance(pub_client, RedisCluster)
        self._owns_sub = sub_client is None or isinstance(sub_client, RedisCluster)
        if isinstance(pub_client, RedisCluster):
            pub_client = node_client(pub_client)
        if isinstance(sub_client, RedisCluster):
            sub_client = node_client(sub_client)
        # Messages name the Redis actually used: the clients passed in, or the URL.
        self.where = client_location(sub_client) if sub_client else redact_url(url)
        self._pub_client = pub_client
        self._sub_client = sub_client
        self._may_name = True  # False once Redis refused CLIENT SETNAME (an ACL without CLIENT)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._cluster = ClusterNodes(where=self.where, timeout=timeout, logger=logger)
        self.subscriber = Subscriber(
            self._open_sub_connection,
            on_message,
            logger=logger,
            where=self.where,
            health_check_interval=health_check_interval,
            on_change=on_change,
            explain=self._access_error,
        )
        self.publisher = Publisher(
            self._open_pub_connection,
            max_message_size=max_message_size,
            where=client_location(pub_client) if pub_client else self.where,
            timeout=publish_timeout,
            ready=self.subscriber.ready,
        )
        self.want = self.subscriber.want
        self.unwant = self.subscriber.unwant
        self.want_pattern = self.subscriber.want_pattern
        self.unwant_pattern = self.subscriber.unwant_pattern
        self.check_size = self.publisher.check_size
        self.publish_queued = self.publisher.publish_queued  # AdapterClosedError once closed
        self.settle_queued = self.publisher.settle_queued

    @property
    def pub_client(self) -> Redis:
        """The Redis client used for commands, and whose settings the publisher uses."""
        if self._pub_client is None:
            self._pub_client = async_client(self._url, **self._redis_options)
        return self._pub_client

    @property
    def sub_client(self) -> Redis:
        """The Redis client whose settings the pub/sub connection uses."""
        if self._sub_client is None:
            self._sub_client = async_client(self._url, **self._redis_options)
        return self._sub_client

    @property
    def listening(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def latency(self) -> LatencyHistogram:
        return self.publisher.latency

    def listen(self) -> None:
        """Start the listener task (idempotent)."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        if self.listening:
            return
        self._task = asyncio.get_running_loop().create_task(
            self.subscriber.run(), name=f"socketio-redis-async listener {self._uid()}"
        )

    async def start(self) -> None:
        """Listen, and return once Redis confirmed every subscription.

        Raises AccessDeniedError as soon as Redis refuses the credentials or an ACL
        permission, RedisCommandError if Redis does not confirm within the timeout.
        """
        subscriber = self.subscriber
        denial = subscriber.next_denial()
        try:
            self.listen()
            confirmed: asyncio.Future[bool] = asyncio.ensure_future(
                subscriber.wait(subscriber.channels, self._timeout, subscriber.patterns)
            )
            try:
                either: list[asyncio.Future[Any]] = [confirmed, denial]
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                confirmed.cancel()
            if denial.done() and not denial.cancelled():
                raise denial.result()
            if not confirmed.result():
                raise subscriber.denied or RedisCommandError(
                    f"Redis at {self.where} did not confirm the subscriptions within "
                    f"{self._timeout:g} s; is it running? (the adapter keeps retrying)"
                )
        finally:
            subscriber.forget_denial(denial)

    async def confirm(self, channels: list[str]) -> None:
        """Wait until Redis confirmed these subscriptions, at most the requests timeout.
        Not while the listener is not started or Redis is known to be unreachable: a join
        must not stall for the whole outage. A late confirmation is logged."""
        if self._task is None or self.subscriber.failing or not channels:
            return
        if not await self.subscriber.wait(channels, self._timeout):
            self._logger.warning(
                "Redis at %s did not confirm subscribing %s within %g s; "
                "broadcasts from other servers may be missed until it does",
                self.where,
                channels,
                self._timeout,
            )

    async def publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        """PUBLISH in this server's order; the number of subscribers that received it."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        return await self.publisher.publish(channel, payload, limit)

    async def append(self, stream: str, fields: tuple[bytes, ...], max_len: int) -> bytes:
        """XADD through the publisher, in order with the publishes; the entry's id."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        entry_id: bytes = await self.publisher.command(stream, *xadd(stream, fields, max_len))
        return entry_id

    async def append_queued(
        self, stream: str, fields: tuple[bytes, ...], max_len: int, report: Report
    ) -> None:
        """XADD, queued like ``publish_queued``."""
        await self.publisher.command_queued(stream, report, *xadd(stream, fields, max_len))

    async def count_subscribers(self, channel: str) -> int:
        """``PUBSUB NUMSUB`` of one channel (summed over the nodes of a cluster)."""
        if self._cluster.enabled:
            answers = await self._cluster.ask_all(
                self.pub_client, "PUBSUB NUMSUB failed", lambda c: c.pubsub_numsub(channel)
            )
            return sum(int(found[0][1]) for found in answers if found)
        counts = await redis_call(
            self.pub_client.pubsub_numsub(channel),
            what="PUBSUB NUMSUB failed",
            where=self.where,
            timeout=self._timeout,
        )
        return int(counts[0][1]) if counts else 0

    async def channels(self, pattern: str) -> list[bytes | str]:
        """``PUBSUB CHANNELS pattern`` (the union over the nodes of a cluster)."""
        if self._cluster.enabled:
            answers = await self._cluster.ask_all(
                self.pub_client, "PUBSUB CHANNELS failed", lambda c: c.pubsub_channels(pattern)
            )
            return list({name for found in answers for name in found})
        found: list[bytes | str] = await redis_call(
            self.pub_client.pubsub_channels(pattern),
            what="PUBSUB CHANNELS failed",
            where=self.where,
            timeout=self._timeout,
        )
        return found

    def stats(self) -> dict[str, int]:
        """The transport's counters."""
        return transport_stats(self.subscriber, self.publisher)

    def health(self) -> AdapterHealth:
        """A snapshot of the link to Redis."""
        return health_of(self.subscriber, self.publisher, self._interval)

    async def stop_listening(self) -> None:
        """Cancel the listener task and wait for it (bounded)."""
        self._closed = True
        self.subscriber.stopping = True
        if self._task is not None:
            self._task.cancel()
            _, stuck = await asyncio.wait([self._task], timeout=10)
            if stuck:
                self._logger.error("the listener task did not stop within 10 s")

    async def aclose(self) -> None:
        """Stop listening and publishing; close the clients this transport created."""
        await self.stop_listening()
        await self.publisher.aclose()
        for owned, client in (
            (self._owns_pub, self._pub_client),
            (self._owns_sub, self._sub_client),
        ):
            if owned and client is not None:
                await aclose_client(client, self._timeout)
        await self._cluster.aclose()

    async def _open_sub_connection(self) -> AbstractConnection:
        return await self._open_connection(self.sub_client, "sub")

    async def _open_pub_connection(self) -> AbstractConnection:
        return await self._open_connection(self.pub_client, "pub")

    async def _open_connection(self, client: Redis, role: str) -> AbstractConnection:
        """A dedicated connection with the client's settings (TLS, auth, db...).

        On a cluster, to the first node that answers, the one this role lost last. RESP2,
        raw bytes, and no socket timeout: a timeout wraps every read and write in a timer,
        which costs more than the rest of the hot path; silence on the pub/sub connection
        is caught by the subscriber's PING watchdog instead."""
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # The client name is set afterwards, best effort: an ACL user may lack CLIENT.
        kwargs.update(protocol=2, decode_responses=False, socket_timeout=None, client_name=None)
        home = (str(kwargs.get("host", "")), int(kwargs.get("port", 0)))
        nodes = self._cluster.candidates(role, home) if self._cluster.enabled else [home]
        for node in nodes:
            if node != home:
                kwargs.update(host=node[0], port=node[1])
            conn: AbstractConnection = pool.connection_class(**kwargs)
            try:
                # Bounded, the handshake included: a frozen Redis accepts TCP, never answers.
                await redis_call(
                    self._handshake(conn, role, node),
                    what=f"cannot open the {role} connection",
                    where=self.where if node == home else f"{node[0]}:{node[1]}",
                    timeout=self._timeout,
                )
                return conn
            except BaseException as exc:
                await drop_connection(conn)
                if node == nodes[-1] or not isinstance(exc, Exception):
                    raise
        raise AssertionError("unreachable: the last node's error is raised")

    async def _handshake(self, conn: AbstractConnection, role: str, node: tuple[str, int]) -> None:
        await conn.connect()  # type: ignore[no-untyped-call]
        await self._cluster.learn(conn, role, node)
        if self._may_name:  # once refused, not asked again (each refusal is in ACL LOG)
            name = f"socketio-redis-async:{self._uid()}:{role}"
            self._may_name = await set_client_name(conn, name, self._timeout)

    def _access_error(self, exc: BaseException) -> AccessDeniedError | None:
        user = acl_user(self.sub_client.connection_pool.connection_kwargs)
        return access_error(exc, user=user, where=self.where, key=self._key)
