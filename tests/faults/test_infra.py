"""The fault fixtures themselves: a frozen Redis answers nothing, a killed one comes back."""

from __future__ import annotations

import socket

import anyio
import pytest
import redis
import redis.asyncio

from socketio_redis_async._cli.redis_server import PortTaken, RedisServer

pytestmark = pytest.mark.anyio


async def test_frozen_redis_answers_nothing_until_thawed(own_redis):
    """freeze() stops replies (a PING times out); thaw() brings them back."""
    client = redis.asyncio.Redis.from_url(own_redis.url, socket_timeout=0.3)
    assert await client.ping()
    own_redis.freeze()
    with pytest.raises(redis.exceptions.TimeoutError):
        await client.ping()
    own_redis.thaw()
    with anyio.fail_after(5):
        while True:
            try:
                assert await client.ping()
                break
            except redis.exceptions.RedisError:
                await anyio.sleep(0.05)
    await client.aclose()


async def test_killed_redis_restarts_on_its_port(own_redis):
    """kill() cuts every connection; start() serves the same URL again."""
    client = redis.asyncio.Redis.from_url(own_redis.url)
    await client.set("k", "v")
    own_redis.kill()
    with pytest.raises(redis.exceptions.ConnectionError):
        await client.ping()
    own_redis.start()
    assert await client.get("k") is None  # a crash loses the data: nothing is persisted
    await client.aclose()


def test_a_picked_port_taken_before_the_server_binds_it_is_picked_again():
    """A server whose picked port got taken starts on another one; on a fixed port it raises."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        server = RedisServer()
        server.port = port  # as if another process took the picked port in the meantime
        with server:
            assert server.port != port
            with redis.Redis(port=server.port) as client:
                assert client.ping()
        with pytest.raises(PortTaken, match="Address already in use"), RedisServer(port=port):
            pass
    finally:
        taken.close()
