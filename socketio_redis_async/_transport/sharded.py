"""The transport of the sharded adapter: SSUBSCRIBE/SPUBLISH on the shard owning each channel.

On a standalone Redis 7 there is one link: one subscriber and one publisher connection.
On a Redis Cluster (found by ``CLUSTER SLOTS``) there is one link per master that owns
the slot of a channel this server subscribes or publishes to, and each channel goes to
its owner, its (re)subscriptions grouped by slot (one ``SSUBSCRIBE`` across slots fails
with CROSSSLOT). When a link fails, when Redis pushes ``sunsubscribe`` (the slot moved),
or when a publish is answered ``MOVED``, the slot map is read again (``slot_map``) and
every channel whose owner changed moves to the new owner's link (``shard_links``); links
left without a slot are closed. Servers are counted with ``PUBSUB SHARDNUMSUB`` summed
over the masters (a master that does not own the channel answers 0, not MOVED).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from .._errors import AccessDeniedError, AdapterClosedError, RedisCommandError
from .._health import AdapterHealth
from .access import access_error, acl_user
from .clients import async_client, redact_url
from .commands import aclose_client
from .histogram import LatencyHistogram
from .link_health import health_of, transport_stats
from .publisher import Publisher, check_size
from .shard_links import ShardLinks
from .shard_publish import ShardPublishing
from .shards import STANDALONE, Address, Link, NodeConnections, numsub, settled, slot_of
from .slot_map import SlotMap
from .subscriber import MessageHandler, Subscriber


class ShardedTransport:
    """Sharded pub/sub over every shard of a cluster, or over one standalone Redis 7."""

    def __init__(
        self,
        *,
        url: str,
        key: str,
        redis_options: dict[str, Any],
        on_message: MessageHandler,
        on_change: Callable[[bool], None],
        uid: Callable[[], str],
        timeout: float,
        publish_timeout: float,
        health_check_interval: float,
        max_message_size: int,
        logger: logging.Logger,
    ) -> None:
        self.where = redact_url(url)
        self._key = key
        self._client = async_client(url, **redis_options)
        self._on_message = on_message
        self._on_change = on_change
        self._uid = uid
        self._timeout = timeout
        self._publish_timeout = publish_timeout
        self._interval = health_check_interval
        self._max = max_message_size
        self._logger = logger
        kwargs = self._client.connection_pool.connection_kwargs
        seed: Address = (str(kwargs.get("host", "")), int(kwargs.get("port", 0) or 0))
        self._nodes = NodeConnections(self._client, self.where, uid, timeout)
        self._slots = SlotMap(
            self._nodes,
            seed,
            where=self.where,
            logger=logger,
            failing=lambda: self._links.failing(),
            apply=lambda: self._links.apply(),
        )
        self._links = ShardLinks(self._slots, self._new_link, logger)
        publishing = self._publishing = ShardPublishing(
            self._slots, self._links, self.where, publish_timeout
        )
        self.publish, self.append = publishing.publish, publishing.append
        self.publish_queued, self.append_queued = (
            publishing.publish_queued,
            publishing.append_queued,
        )
        self.settle_queued = publishing.settle_queued
        self.command = publishing.command  # recovery sessions and XRANGE, on the owner
        self._task: asyncio.Task[None] | None = None
        self._announced: bool | None = None
        self.latency = LatencyHistogram()
        self.subscriber = self._links.subscriber
        self.publisher = self._links.publisher

    # -- what the adapter asks ------------------------------------------------------------

    @property
    def pub_client(self) -> Redis:
        """The client whose settings every connection uses."""
        return self._client

    sub_client = pub_client

    @property
    def listening(self) -> bool:
        return self._task is not None and not self._task.done()

    def want(self, channel: str) -> None:
        self._links.want(channel)

    def unwant(self, channel: str) -> None:
        self._links.unwant(channel)

    def want_pattern(self, pattern: str) -> None:
        raise NotImplementedError("sharded pub/sub has no pattern subscriptions")

    unwant_pattern = want_pattern

    def check_size(self, payload: bytes) -> None:
        check_size(payload, self._max)

    def listen(self) -> None:
        """Start finding the shards and subscribing (idempotent)."""
        if self._links.closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        if self.listening:
            return
        self._slots.start()
        self._task = asyncio.get_running_loop().create_task(
            self._slots.run(), name=f"socketio-redis-async sharded topology {self._uid()}"
        )

    async def start(self) -> None:
        """Listen, and return once every shard confirmed this server's subscriptions."""
        self.listen()
        if await self._slots.wait_ready(self._timeout) and await self._links.wait_all(
            self._timeout
        ):
            return
        raise self._links.denied() or RedisCommandError(
            f"Redis at {self.where} did not confirm the sharded subscriptions within "
            f"{self._timeout:g} s ({self._slots.last_error[1] or 'no answer'}); is it a "
            "Redis 7 or newer? (the adapter keeps retrying)"
        )

    async def confirm(self, channels: list[str]) -> None:
        """Wait (at most the requests timeout) until the owners confirmed these channels."""
        if self._task is None or not channels or self.subscriber.failing:
            return
        if await self._slots.wait_ready(self._timeout) and await self._links.wait_all(
            self._timeout, channels
        ):
            return
        self._logger.warning(
            "Redis at %s did not confirm subscribing %s within %g s; broadcasts from "
            "other servers may be missed until it does",
            self.where,
            channels,
            self._timeout,
        )

    async def count_subscribers(self, channel: str) -> int:
        """``PUBSUB SHARDNUMSUB`` of ``channel``, summed over every master."""
        replies = await self._ask_all("PUBSUB SHARDNUMSUB failed", "SHARDNUMSUB", channel)
        return sum(numsub(reply) for reply in replies)

    async def channels(self, pattern: str) -> list[bytes | str]:
        """``PUBSUB SHARDCHANNELS pattern``, the union over every master."""
        replies = await self._ask_all("PUBSUB SHARDCHANNELS failed", "SHARDCHANNELS", pattern)
        return list({name for reply in replies for name in reply})

    def stats(self) -> dict[str, int]:
        """The transport's counters."""
        return transport_stats(self.subscriber, self.publisher)

    def health(self) -> AdapterHealth:
        return health_of(self.subscriber, self.publisher, self._interval)  # type: ignore[arg-type]

    async def stop_listening(self) -> None:
        self._links.closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=10)
        await self._links.stop()

    async def aclose(self) -> None:
        await self.stop_listening()
        await self._links.aclose()
        await self._nodes.aclose()
        await aclose_client(self._client, self._timeout)

    # -- links and commands ---------------------------------------------------------------

    async def is_cluster(self) -> bool:
        """Whether Redis is a cluster, once the topology is known (bounded)."""
        if not await self._slots.wait_ready(self._timeout):
            raise RedisCommandError(f"the shards of {self.where} are not known yet")
        return self._slots.cluster

    async def open_connection(self, role: str, key: str) -> AbstractConnection:
        """A dedicated connection for ``role`` to the shard owning ``key``, bounded."""
        if not await self._slots.wait_ready(self._timeout):
            raise RedisCommandError(f"the shards of {self.where} are not known yet")
        return await self._nodes.open(self._slots.owner(key), role)

    def _new_link(self, node: Address) -> Link:
        """A link to ``node``: its subscriber (not started) and its publisher."""
        where = self.where if node == STANDALONE else f"{node[0]}:{node[1]}"
        subscriber = Subscriber(
            lambda: self._nodes.open(node, "sub"),
            self._on_message,
            logger=self._logger,
            where=where,
            health_check_interval=self._interval,
            on_change=lambda _: self._changed(),
            explain=self._access_error,
            sharded=slot_of if self._slots.cluster else lambda channel: 0,
            on_failure=lambda _: self._slots.mark_stale(),
        )
        publisher = Publisher(
            lambda: self._nodes.open(node, "pub"),
            max_message_size=self._max,
            where=where,
            timeout=self._publish_timeout,
            ready=functools.partial(settled, subscriber, _now() if self._slots.version else None),
            command=b"SPUBLISH",
            on_error=self._publishing.failed,
        )
        publisher.latency = self.latency
        return Link(subscriber, publisher)

    def _changed(self) -> None:
        subscribed = self.subscriber.subscribed
        if subscribed is not self._announced:
            self._announced = subscribed
            self._on_change(subscribed)

    async def _ask_all(self, what: str, *args: str) -> list[Any]:
        if not await self._slots.wait_ready(self._timeout):
            raise RedisCommandError(f"{what}: the shards of {self.where} are not known yet")
        try:
            answers, complete = await self._nodes.ask_all(
                self._slots.masters(), what, "PUBSUB", *args
            )
        except RedisCommandError:
            complete = False
            raise
        finally:
            if not complete:
                self._slots.mark_stale()  # a master did not answer: the slot map may be old
        return answers

    def _access_error(self, exc: BaseException) -> AccessDeniedError | None:
        user = acl_user(self._client.connection_pool.connection_kwargs)
        return access_error(exc, user=user, where=self.where, key=self._key)


def _now() -> float:
    return asyncio.get_running_loop().time()
