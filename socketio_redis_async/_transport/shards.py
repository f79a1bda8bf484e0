"""The shards of the sharded transport: slot ownership, and each shard's link.

Pure helpers (``parse_slots``, ``slot_of``, ``numsub``) and the views that show every
link's subscriber and publisher as one, for health checks and stats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.crc import key_slot

from .._errors import RedisCommandError
from .access import set_client_name
from .cluster_nodes import client_at
from .commands import aclose_client, drop_connection, redis_call
from .publisher import Publisher
from .subscriber import Subscriber

Address = tuple[str, int]
STANDALONE: Address = ("", 0)
SLOTS = 16384
_SETTLE = 1.5  # seconds: a refresh after a failure (0.2 s) plus a reconnect backoff (1 s)


def parse_slots(reply: Any, here: Address) -> list[Address]:
    """The owner of each of the 16384 slots in a ``CLUSTER SLOTS`` reply (raw RESP2)."""
    owners: list[Address] = [here] * SLOTS
    for entry in reply:
        start, end, master = int(entry[0]), int(entry[1]), entry[2]
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        address = (host or here[0], int(master[1]))
        owners[start : end + 1] = [address] * (end - start + 1)
    return owners


def slot_of(channel: str) -> int:
    """The hash slot of a shard channel (hash tags ``{...}`` included, as Redis computes)."""
    return int(key_slot(channel.encode()))


class Link:
    """One shard: its subscriber (started once it has channels) and its publisher."""

    def __init__(self, subscriber: Subscriber, publisher: Publisher) -> None:
        self.subscriber = subscriber
        self.publisher = publisher
        self.task: asyncio.Task[None] | None = None

    def retire(self, counters: dict[str, int]) -> None:
        """Add this link's counters to ``counters`` (it is being closed)."""
        for name, value in (
            ("reconnects", self.subscriber.reconnects),
            ("handler_errors", self.subscriber.handler_errors),
            ("failures", self.publisher.failures),
            ("published", self.publisher.published),
            ("batches", self.publisher.batches),
        ):
            counters[name] = counters.get(name, 0) + value

    async def aclose(self) -> None:
        self.subscriber.stopping = True
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task], timeout=10)
        await self.publisher.aclose()


class NodeConnections:
    """Connections and command clients to each node, with the given client's settings."""

    def __init__(self, client: Redis, where: str, uid: Callable[[], str], timeout: float) -> None:
        self._client = client
        self._where = where
        self._uid = uid
        self._timeout = timeout
        self._clients: dict[Address, Redis] = {}
        self._may_name = True  # False once Redis refused CLIENT SETNAME (an ACL without it)

    def where(self, node: Address) -> str:
        return self._where if node == STANDALONE else f"{node[0]}:{node[1]}"

    async def call(self, node: Address, what: str, *args: str) -> Any:
        """One command on ``node``, bounded by the timeout."""
        client = self._client if node == STANDALONE else self._clients.get(node)
        if client is None:
            client = self._clients[node] = client_at(self._client, node)
        return await redis_call(
            client.execute_command(*args),  # type: ignore[no-untyped-call]
            what=what,
            where=self.where(node),
            timeout=self._timeout,
        )

    async def ask_all(self, nodes: list[Address], what: str, *args: str) -> tuple[list[Any], bool]:
        """One command on every node: the answers, and whether every node answered.

        A node that does not answer has no live subscriber to count; if none answers, the
        first RedisCommandError is raised.
        """
        replies = await asyncio.gather(
            *(self.call(node, what, *args) for node in nodes), return_exceptions=True
        )
        answers = [reply for reply in replies if not isinstance(reply, BaseException)]
        errors = [reply for reply in replies if isinstance(reply, BaseException)]
        for error in errors:
            if not isinstance(error, RedisCommandError):
                raise error
        if not answers:
            raise errors[0]
        return answers, not errors

    async def command(self, node: Address, *args: str) -> Any:
        """One command on a connection of its own, its reply raw (RESP2 bytes)."""
        conn = await self.open(node, "cmd")
        try:
            await conn.send_command(*args, check_health=False)
            return await redis_call(
                conn.read_response(),
                what=f"{' '.join(args)} failed",
                where=self.where(node),
                timeout=self._timeout,
            )
        finally:
            await drop_connection(conn)

    async def open(self, node: Address, role: str) -> AbstractConnection:
        """A dedicated RESP2 connection to ``node``, named after this server and ``role``.

        No socket timeout: the subscriber's watchdog and the publisher's deadlines bound it.
        """
        pool = self._client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs.update(protocol=2, decode_responses=False, socket_timeout=None, client_name=None)
        if node != STANDALONE:
            kwargs.update(host=node[0], port=node[1])
        conn: AbstractConnection = pool.connection_class(**kwargs)
        try:
            await redis_call(
                self._handshake(conn, role),
                what=f"cannot open the {role} connection",
                where=self.where(node),
                timeout=self._timeout,
            )
        except BaseException:
            await drop_connection(conn)
            raise
        return conn

    async def _handshake(self, conn: AbstractConnection, role: str) -> None:
        await conn.connect()  # type: ignore[no-untyped-call]
        if role != "cmd" and self._may_name:  # once refused, not asked again (ACL LOG)
            name = f"socketio-redis-async:{self._uid()}:{role}"
            self._may_name = await set_client_name(conn, name, self._timeout)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await aclose_client(client, self._timeout)


async def settled(subscriber: Subscriber, since: float | None, timeout: float) -> None:
    """Before a shard's first publish: its subscriptions first and, on a shard that
    became an owner after startup (a failover, a moved slot), as long as every other
    server needs to follow the move, so the first messages are not published to nobody."""
    await subscriber.ready(timeout)
    if since is not None and (hold := since + _SETTLE - asyncio.get_running_loop().time()) > 0:
        await anyio.sleep(min(hold, timeout))


def numsub(reply: Any) -> int:
    """The count in a ``PUBSUB SHARDNUMSUB`` reply for one channel (raw or parsed)."""
    if not reply:
        return 0
    first = reply[0]
    return int(first[1]) if isinstance(first, (list, tuple)) else int(reply[1])


class Subscribers:
    """Every link's subscriber seen as one (for health and stats); ``retired`` keeps the
    counters of closed links."""

    def __init__(self, links: dict[Address, Link], retired: dict[str, int]) -> None:
        self._links = links
        self._retired = retired

    def _all(self) -> list[Subscriber]:
        return [link.subscriber for link in self._links.values() if link.task is not None]

    @property
    def connected(self) -> bool:
        return bool(self._all()) and all(s.connected for s in self._all())

    @property
    def subscribed(self) -> bool:
        return bool(self._all()) and all(s.subscribed for s in self._all())

    @property
    def failing(self) -> bool:
        return any(s.failing for s in self._all())

    @property
    def last_contact(self) -> float | None:
        contacts = [s.last_contact for s in self._all()]
        return None if not contacts or None in contacts else min(c for c in contacts if c)

    def confirmed(self) -> tuple[int, int]:
        pairs = [s.confirmed() for s in self._all()]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    @property
    def last_error(self) -> tuple[float, str | None]:
        return max((s.last_error for s in self._all()), default=(0.0, None))

    @property
    def reconnects(self) -> int:
        return self._retired.get("reconnects", 0) + sum(s.reconnects for s in self._all())

    @property
    def handler_errors(self) -> int:
        errors = sum(s.handler_errors for s in self._all())
        return self._retired.get("handler_errors", 0) + errors

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(c for s in self._all() for c in s.channels)


class Publishers:
    """Every link's publisher seen as one (for health and stats)."""

    def __init__(self, links: dict[Address, Link], retired: dict[str, int]) -> None:
        self._links = links
        self._retired = retired

    def _total(self, name: str) -> int:
        live = sum(int(getattr(link.publisher, name)) for link in self._links.values())
        return self._retired.get(name, 0) + live

    @property
    def failures(self) -> int:
        return self._total("failures")

    @property
    def published(self) -> int:
        return self._total("published")

    @property
    def batches(self) -> int:
        return self._total("batches")

    @property
    def backlog_bytes(self) -> int:
        return self._total("backlog_bytes")

    @property
    def last_success(self) -> float:
        return max((link.publisher.last_success for link in self._links.values()), default=0.0)

    @property
    def last_error(self) -> tuple[float, str | None]:
        errors = [link.publisher.last_error for link in self._links.values()]
        return max(errors, default=(0.0, None))
