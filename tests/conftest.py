"""Fixtures: one real redis-server per session, a fresh key prefix per test, real servers."""

from __future__ import annotations

import gc
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest
import redis.asyncio

from socketio_redis_async._cli.redis_server import RedisServer
from tests import node_harness
from tests.helpers import Client, FaultyRedis, Node
from tests.rediscluster import RedisCluster, require_cluster_tools
from tests.sharded import MakeSharded, start_sharded
from tests.streams import MakeStreams, start_streams

pytest_plugins = [
    "tests.unit_cluster"
]  # the unit tier's `cluster` fixture (servers on one in-memory bus)


def _refuse_io(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError(
        "a test marked unit opened a connection or started a process: "
        "the unit tier runs with no Redis and no subprocess, so drop the mark"
    )


@contextmanager
def _tier_rules(item: pytest.Item) -> Iterator[None]:
    """Hold a test to its tier: ``unit`` tests may not connect a socket or start a process,
    and only ``interop`` tests may start Node (``node_harness.require_node`` checks)."""
    node_harness.running_test = item
    try:
        if item.get_closest_marker("unit") is None:
            yield
            return
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(socket.socket, "connect", _refuse_io)
            patch.setattr(socket.socket, "connect_ex", _refuse_io)
            patch.setattr(subprocess.Popen, "__init__", _refuse_io)
            yield
    finally:
        node_harness.running_test = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _tier_rules(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _tier_rules(item):
        yield


def pytest_collection_finish(session: pytest.Session) -> None:
    """Put everything alive after collection (modules, classes, test items) out of the
    collector's sight, so that each test's gc.collect() below scans only what tests make.
    Without it every collection walked the whole heap: about 0.1-0.2 s after every test."""
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after every test, so a leaked socket or pipe fails the test that leaked it
    (as a ResourceWarning turned error) instead of whichever test the GC runs in."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[FaultyRedis]:
    """A redis-server for this test alone, which the test may kill, freeze or restart."""
    server = FaultyRedis()
    with server:
        yield server


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real Redis Cluster (3 masters, 3 replicas) shared by a module's tests."""
    with RedisCluster(require_cluster_tools()) as cluster:
        yield cluster


@pytest.fixture
def own_redis_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster for this test alone, whose nodes the test may kill."""
    with RedisCluster(require_cluster_tools()) as cluster:
        yield cluster


@pytest.fixture
def key() -> str:
    """A channel prefix of its own, so tests never see each other's traffic."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def make_node(
    redis_server: RedisServer, key: str
) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    nodes: list[Node] = []

    async def make(**options: Any) -> Node:
        node = await Node.start(
            options.pop("url", redis_server.url), options.pop("key", key), **options
        )
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.aclose()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    clients: list[Client] = []

    async def make(node: Node, namespaces: list[str] | None = None, name: str = "client") -> Client:
        client = Client(name)
        clients.append(client)
        return await client.connect(node, namespaces)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def make_streams(redis_server: RedisServer, key: str) -> AsyncIterator[MakeStreams]:
    """Start streams servers (on the session's Redis unless ``url=``); all closed after."""
    nodes: list[Node] = []

    async def make(**options: Any) -> Node:
        url = options.pop("url", redis_server.url)
        node = await start_streams(url, options.pop("prefix", key), **options)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.aclose()


@pytest.fixture
async def make_sharded(redis_server: RedisServer, key: str) -> AsyncIterator[MakeSharded]:
    """Start sharded servers (on the session's Redis unless ``url=``); all closed after."""
    nodes: list[Node] = []

    async def make(mode: str = "dynamic", **options: Any) -> Node:
        url = options.pop("url", redis_server.url)
        node = await start_sharded(url, options.pop("prefix", key), mode, **options)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.aclose()
