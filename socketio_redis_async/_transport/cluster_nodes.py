"""Redis Cluster awareness for classic pub/sub: which nodes exist, and asking all of them.

Classic PUBLISH and SUBSCRIBE work on any node of a cluster: the cluster bus forwards
every message to every node. Three things do not: ``PUBSUB NUMSUB`` and ``PUBSUB
CHANNELS`` only see the clients of the node asked (socket.io-redis-adapter#210), and a
connection to a node that dies must move to another node instead of waiting for that one
to come back.

Detection needs no configuration and no extra ACL permission: every new connection sends
``HELLO 2``, whose reply says ``mode: cluster`` (Redis 6+; an older Redis refuses HELLO and
is taken as standalone). On a cluster, the same connection then reads ``CLUSTER NODES``
(the ACL needs ``+cluster|nodes``), so the node list is refreshed whenever the subscriber
or the publisher (re)connects, and after a node failed to answer a count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from .._errors import RedisCommandError
from .commands import aclose_client, redis_call

Address = tuple[str, int]
_DOWN = {"fail", "fail?", "noaddr", "handshake"}


def parse_nodes(text: str, here: Address) -> list[Address]:
    """The reachable nodes in a ``CLUSTER NODES`` reply, masters first.

    Masters first because Node's classic adapter counts servers on the masters only: a
    connection that moves to a master keeps this server visible to Node servers.
    """
    found: list[tuple[bool, Address]] = []
    for line in text.splitlines():
        fields = line.split()
        flags = set(fields[2].split(",")) if len(fields) > 2 else _DOWN
        if _DOWN & flags:
            continue
        host, _, port = fields[1].split("@")[0].rpartition(":")
        # A node that never learned its own address (a fresh one) shows ":port".
        address = (host or here[0], int(port)) if port.isdigit() else here
        found.append(("master" not in flags, address))
    return [address for _, address in sorted(found)]


def node_client(cluster: RedisCluster) -> Redis:
    """A plain client for the first startup node of a ``RedisCluster``, with its settings.

    The transport needs dedicated connections to one node at a time (and finds the other
    nodes itself), which ``RedisCluster`` does not offer; the given client is left as is.
    """
    node = next(iter(cluster.nodes_manager.startup_nodes.values()))
    kwargs = dict(node.connection_kwargs)
    kwargs.pop("oss_cluster_maint_notifications_handler", None)  # tied to that cluster client
    pool = ConnectionPool(connection_class=node.connection_class, **kwargs)
    return Redis.from_pool(pool)


def client_at(template: Redis, node: Address) -> Redis:
    """A new client for ``node`` with the template's settings (TLS, credentials...)."""
    pool = template.connection_pool
    kwargs = {**pool.connection_kwargs, "host": node[0], "port": node[1]}
    return Redis.from_pool(ConnectionPool(connection_class=pool.connection_class, **kwargs))


class ClusterNodes:
    """The known nodes of the cluster the transport's connections point at, if any."""

    def __init__(self, *, where: str, timeout: float, logger: logging.Logger) -> None:
        self.enabled = False  # set by the first connection's HELLO
        self.nodes: list[Address] = []
        self._where = where
        self._timeout = timeout
        self._logger = logger
        self._last: dict[str, Address] = {}  # role -> the node it is (or was) connected to
        self._clients: dict[Address, Redis] = {}
        self._stale = False
        self._warned = False

    def candidates(self, role: str, home: Address) -> list[Address]:
        """Nodes to try for a new ``role`` connection: the node it lost comes last."""
        lost = self._last.get(role)
        order = [node for node in [home, *self.nodes] if node != lost]
        return list(dict.fromkeys(order + ([lost] if lost else [])))

    async def learn(self, conn: AbstractConnection, role: str, here: Address) -> None:
        """On a new connection: is this a cluster, and which nodes does it have?"""
        if self._last.get(role, here) != here:
            self._logger.warning(
                "Redis Cluster node %s:%d is unreachable; the %s connection moved to %s:%d",
                *self._last[role],
                role,
                *here,
            )
        self._last[role] = here
        try:
            hello = await _command(conn, "HELLO", "2")
        except ResponseError:  # Redis 5 has no HELLO: not a cluster-aware server
            return
        info = dict(zip(hello[::2], hello[1::2], strict=False))
        self.enabled = info.get(b"mode") == b"cluster"
        if self.enabled:
            await self._read_nodes(conn, here)

    async def _read_nodes(self, conn: AbstractConnection, here: Address) -> None:
        try:
            reply = await _command(conn, "CLUSTER", "NODES")
        except ResponseError as exc:
            if not self._warned:
                self._warned = True
                self._logger.warning(
                    "Redis at %s is a cluster, but CLUSTER NODES was refused (%s); server "
                    "counts only see node %s:%d (allow +cluster|nodes in the ACL)",
                    self._where,
                    exc,
                    *here,
                )
            self.nodes = [here]
            return
        self.nodes = parse_nodes(reply.decode(), here) or [here]
        self._stale = False

    async def ask_all(
        self, template: Redis, what: str, call: Callable[[Redis], Awaitable[Any]]
    ) -> list[Any]:
        """``call(client)`` for every known node; the answers of those that answered.

        A node that does not answer has no live subscriber to count, so it is left out
        (and the node list is re-read next time); if no node answers, RedisCommandError.
        """
        if self._stale:
            await self._refresh(template)
        replies = await asyncio.gather(
            *(self._ask(template, node, what, call) for node in self.nodes),
            return_exceptions=True,
        )
        answers = [reply for reply in replies if not isinstance(reply, BaseException)]
        errors = [reply for reply in replies if isinstance(reply, BaseException)]
        for error in errors:
            if not isinstance(error, RedisCommandError):
                raise error
        self._stale = bool(errors)
        if not answers:
            raise errors[0] if errors else RedisCommandError("no Redis Cluster node is known")
        return answers

    async def _refresh(self, template: Redis) -> None:
        for node in self.nodes:
            try:
                client = self._client(template, node)
                reply = await redis_call(
                    client.execute_command("CLUSTER", "NODES"),  # type: ignore[no-untyped-call]
                    what="CLUSTER NODES failed",
                    where=f"{node[0]}:{node[1]}",
                    timeout=self._timeout,
                )
            except RedisCommandError:
                continue
            text = reply.decode() if isinstance(reply, bytes) else str(reply)
            self.nodes = parse_nodes(text, node) or self.nodes
            self._stale = False
            return

    async def _ask(
        self, template: Redis, node: Address, what: str, call: Callable[[Redis], Awaitable[Any]]
    ) -> Any:
        return await redis_call(
            call(self._client(template, node)),
            what=what,
            where=f"{node[0]}:{node[1]}",
            timeout=self._timeout,
        )

    def _client(self, template: Redis, node: Address) -> Redis:
        client = self._clients.get(node)
        if client is None:
            client = self._clients[node] = client_at(template, node)
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await aclose_client(client, self._timeout)


async def _command(conn: AbstractConnection, *args: str) -> Any:
    await conn.send_command(*args, check_health=False)
    return await conn.read_response()
