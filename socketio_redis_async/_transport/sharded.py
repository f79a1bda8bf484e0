"""The transport of the sharded adapter: SSUBSCRIBE/SPUBLISH on the shard owning each channel.

On a standalone Redis 7 there is one link: one subscriber and one publisher connection.
On a Redis Cluster (found by ``CLUSTER SLOTS``) there is one link per master that owns
the slot of a channel this server subscribes or publishes to, and each channel goes to
its owner, its (re)subscriptions grouped by slot (one ``SSUBSCRIBE`` across slots fails
with CROSSSLOT). When a link fails, when Redis pushes ``sunsubscribe`` (the slot moved),
or when a publish is answered ``MOVED``, the slot map is read again from any node that
answers and every channel whose owner changed moves to the new owner's link; links left
without a slot are closed. Servers are counted with ``PUBSUB SHARDNUMSUB`` summed over
the masters (a master that does not own the channel answers 0, not MOVED).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from typing import Any

import anyio
from redis.asyncio import Redis

from .._errors import AccessDeniedError, AdapterClosedError, PublishError, RedisCommandError
from .._health import AdapterHealth, health_of
from .._options import redact_url
from .access import access_error, acl_user
from .clients import async_client
from .commands import aclose_client, describe
from .histogram import LatencyHistogram
from .publisher import Publisher, check_size
from .shards import (
    STANDALONE,
    Address,
    Link,
    NodeConnections,
    Publishers,
    Subscribers,
    numsub,
    parse_slots,
    settled,
    slot_of,
)
from .subscriber import MessageHandler, Subscriber

_MOVED = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "could not publish", "cannot open")


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
        self._seed: Address = (str(kwargs.get("host", "")), int(kwargs.get("port", 0) or 0))
        self._cluster = False
        self._owners: list[Address] = []
        self._ready: asyncio.Event | None = None  # set once the topology is known
        self._stale: asyncio.Event | None = None
        self._version = 0  # topology readings applied so far
        self._next: asyncio.Event | None = None  # set (and replaced) by each reading
        self._closing: set[asyncio.Task[None]] = set()
        self._links: dict[Address, Link] = {}
        self._wanted: dict[str, Address | None] = {}
        self._nodes = NodeConnections(self._client, self.where, uid, timeout)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._announced: bool | None = None
        self._last_error: tuple[float, str | None] = (0.0, None)
        self.latency = LatencyHistogram()
        self._retired: dict[str, int] = {}  # the counters of closed links
        self.subscriber = Subscribers(self._links, self._retired)
        self.publisher = Publishers(self._links, self._retired)

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
        if channel not in self._wanted:
            self._wanted[channel] = None
            if self._version:
                self._assign(channel)

    def unwant(self, channel: str) -> None:
        if channel in self._wanted:
            node = self._wanted.pop(channel)
            if node is not None and node in self._links:
                self._links[node].subscriber.unwant(channel)

    def want_pattern(self, pattern: str) -> None:
        raise NotImplementedError("sharded pub/sub has no pattern subscriptions")

    unwant_pattern = want_pattern

    def check_size(self, payload: bytes) -> None:
        check_size(payload, self._max)

    def listen(self) -> None:
        """Start finding the shards and subscribing (idempotent)."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        if self.listening:
            return
        self._ready, self._stale, self._next = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"socketio-redis-async sharded topology {self._uid()}"
        )

    async def start(self) -> None:
        """Listen, and return once every shard confirmed this server's subscriptions."""
        self.listen()
        if await self._wait_ready(self._timeout) and await self._wait_all(self._timeout):
            return
        denied = next((link.subscriber.denied for link in self._links.values()), None)
        raise denied or RedisCommandError(
            f"Redis at {self.where} did not confirm the sharded subscriptions within "
            f"{self._timeout:g} s ({self._last_error[1] or 'no answer'}); is it a Redis 7 "
            "or newer? (the adapter keeps retrying)"
        )

    async def confirm(self, channels: list[str]) -> None:
        """Wait (at most the requests timeout) until the owners confirmed these channels."""
        if self._task is None or not channels or self.subscriber.failing:
            return
        if await self._wait_ready(self._timeout) and await self._wait_all(self._timeout, channels):
            return
        self._logger.warning(
            "Redis at %s did not confirm subscribing %s within %g s; broadcasts from "
            "other servers may be missed until it does",
            self.where,
            channels,
            self._timeout,
        )

    async def publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        """SPUBLISH on the shard that owns ``channel``; once more after a topology change."""
        if self._closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        if not await self._wait_ready(self._publish_timeout):
            raise PublishError(f"cannot publish: the shards of {self.where} are not known yet")
        for attempt in (1, 2):
            version = self._version
            try:
                return await self._link(self._owner(channel)).publisher.publish(
                    channel, payload, limit
                )
            except PublishError as exc:
                if attempt == 2 or not self._cluster or not any(m in str(exc) for m in _MOVED):
                    raise
                self._mark_stale()
                if not await self._wait_newer(version, self._publish_timeout):
                    raise
        raise AssertionError("unreachable")

    async def count_subscribers(self, channel: str) -> int:
        """``PUBSUB SHARDNUMSUB`` of ``channel``, summed over every master."""
        replies = await self._ask_all("PUBSUB SHARDNUMSUB failed", "SHARDNUMSUB", channel)
        return sum(numsub(reply) for reply in replies)

    async def channels(self, pattern: str) -> list[bytes | str]:
        """``PUBSUB SHARDCHANNELS pattern``, the union over every master."""
        replies = await self._ask_all("PUBSUB SHARDCHANNELS failed", "SHARDCHANNELS", pattern)
        return list({name for reply in replies for name in reply})

    def health(self) -> AdapterHealth:
        return health_of(self.subscriber, self.publisher, self._interval)  # type: ignore[arg-type]

    async def stop_listening(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=10)
        for link in list(self._links.values()):
            link.subscriber.stopping = True
            if link.task is not None:
                link.task.cancel()
                await asyncio.wait([link.task], timeout=10)
        if self._closing:
            await asyncio.wait(self._closing, timeout=10)

    async def aclose(self) -> None:
        await self.stop_listening()
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.aclose()
        await self._nodes.aclose()
        await aclose_client(self._client, self._timeout)

    # -- topology -------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._stale is not None
        failures = 0
        while True:
            try:
                await self._discover()
            except Exception as exc:
                failures += 1
                self._last_error = (
                    _now(),
                    f"cannot read the shards of {self.where}: {describe(exc)}",
                )
                if failures <= 3 or failures % 30 == 0:
                    self._logger.error("%s; retrying", self._last_error[1])
                await anyio.sleep(min(1.0, 0.1 * 2**failures) * random.uniform(0.5, 1))
                continue
            failures = 0
            self._apply()
            self._stale.clear()
            await self._stale.wait()
            await anyio.sleep(0.2)  # a failover changes several slots: read them once

    async def _discover(self) -> None:
        """Read the slot map from the first node that answers (standalone if not a cluster)."""
        nodes = list(dict.fromkeys([self._seed, *self._owners]))
        failing = {node for node, link in self._links.items() if link.subscriber.failing}
        nodes.sort(key=lambda node: node in failing)  # nodes known to fail come last
        for node in nodes:
            try:
                reply = await self._nodes.command(node, "CLUSTER", "SLOTS")
            except RedisCommandError as exc:
                if "cluster support disabled" in str(exc):
                    self._cluster, self._owners = False, []
                    return
                if node == nodes[-1]:
                    raise
                continue
            self._cluster, self._owners = True, parse_slots(reply, node)
            return

    def _apply(self) -> None:
        """Move every channel to the link of its owner; close links that own nothing."""
        for channel in list(self._wanted):
            self._assign(channel)
        owners = set(self._owners) if self._cluster else {STANDALONE}
        for node in [node for node in self._links if node not in owners]:
            self._logger.warning(
                "Redis Cluster node %s:%d owns no slot any more; its channels moved", *node
            )
            link = self._links.pop(node)
            link.retire(self._retired)
            task = asyncio.get_running_loop().create_task(link.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        assert self._ready is not None and self._next is not None
        self._version += 1
        applied, self._next = self._next, asyncio.Event()
        applied.set()
        self._ready.set()

    def _assign(self, channel: str) -> None:
        node = self._owner(channel)
        previous = self._wanted.get(channel)
        if previous == node:
            return
        if previous is not None and previous in self._links:
            self._links[previous].subscriber.unwant(channel)
        link = self._link(node)
        link.subscriber.want(channel)
        self._wanted[channel] = node
        if link.task is None and not self._closed:
            link.task = asyncio.get_running_loop().create_task(
                link.subscriber.run(), name=f"socketio-redis-async shard {node[0]}:{node[1]}"
            )

    def _owner(self, channel: str) -> Address:
        return self._owners[slot_of(channel)] if self._cluster else STANDALONE

    def _link(self, node: Address) -> Link:
        link = self._links.get(node)
        if link is None:
            where = self.where if node == STANDALONE else f"{node[0]}:{node[1]}"
            subscriber = Subscriber(
                lambda: self._nodes.open(node, "sub"),
                self._on_message,
                logger=self._logger,
                where=where,
                health_check_interval=self._interval,
                on_change=lambda _: self._changed(),
                explain=self._access_error,
                sharded=slot_of if self._cluster else lambda channel: 0,
                on_failure=lambda _: self._mark_stale(),
            )
            publisher = Publisher(
                lambda: self._nodes.open(node, "pub"),
                max_message_size=self._max,
                where=where,
                timeout=self._publish_timeout,
                ready=functools.partial(settled, subscriber, _now() if self._version else None),
                command=b"SPUBLISH",
            )
            publisher.latency = self.latency
            link = self._links[node] = Link(subscriber, publisher)
        return link

    def _mark_stale(self) -> None:
        if self._cluster and self._stale is not None:
            self._stale.set()

    def _changed(self) -> None:
        subscribed = self.subscriber.subscribed
        if subscribed is not self._announced:
            self._announced = subscribed
            self._on_change(subscribed)

    async def _wait_ready(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the topology is known."""
        if self._ready is None or self._version:
            return self._ready is not None
        with anyio.move_on_after(timeout):
            await self._ready.wait()
            return True
        return False

    async def _wait_newer(self, version: int, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) for a topology reading after ``version``."""
        with anyio.move_on_after(timeout):
            while self._version <= version and self._next is not None:
                await self._next.wait()
            return self._version > version
        return False

    async def _wait_all(self, timeout: float, channels: list[str] | None = None) -> bool:
        names = list(self._wanted) if channels is None else channels
        by_link: dict[Address, list[str]] = {}
        for name in names:
            node = self._wanted.get(name)
            if node is not None:
                by_link.setdefault(node, []).append(name)
        results = await asyncio.gather(
            *(self._links[node].subscriber.wait(names, timeout) for node, names in by_link.items())
        )
        return all(results)

    # -- commands -------------------------------------------------------------------------

    async def _ask_all(self, what: str, *args: str) -> list[Any]:
        if not await self._wait_ready(self._timeout):
            raise RedisCommandError(f"{what}: the shards of {self.where} are not known yet")
        nodes = sorted(set(self._owners)) if self._cluster else [STANDALONE]
        try:
            answers, complete = await self._nodes.ask_all(nodes, what, "PUBSUB", *args)
        except RedisCommandError:
            complete = False
            raise
        finally:
            if not complete:
                self._mark_stale()  # a master did not answer: the slot map may be old
        return answers

    def _access_error(self, exc: BaseException) -> AccessDeniedError | None:
        user = acl_user(self._client.connection_pool.connection_kwargs)
        return access_error(exc, user=user, where=self.where, key=self._key)


def _now() -> float:
    return asyncio.get_running_loop().time()
