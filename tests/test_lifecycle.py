"""Starting, closing, forking and surviving a Redis restart."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
import redis.asyncio
import socketio

from socketio_redis_async import AdapterClosedError, AsyncRedisAdapter, RedisAdapterError
from socketio_redis_async._cli.redis_server import RedisServer, free_port
from tests.helpers import Client, Node, wait_numsub, wait_until

pytestmark = pytest.mark.anyio


async def test_aclose_unsubscribes_and_closes_owned_clients(redis_server, redis_client, key):
    """After aclose() the server is gone from NUMSUB and its own clients are closed."""
    node = await Node.start(redis_server.url, key)
    channel = f"{key}-request#/#"
    assert dict(await redis_client.pubsub_numsub(channel))[channel.encode()] == 1
    await node.aclose()
    assert dict(await redis_client.pubsub_numsub(channel))[channel.encode()] == 0
    with pytest.raises(AdapterClosedError):
        await node.sio.emit("late")
    with pytest.raises(AdapterClosedError):
        node.adapter.initialize()


async def test_user_clients_are_never_closed(redis_server, key):
    """pub_client and sub_client passed in stay usable after the adapter closes."""
    pub = redis.asyncio.Redis.from_url(redis_server.url)
    sub = redis.asyncio.Redis.from_url(redis_server.url)
    adapter = AsyncRedisAdapter(pub_client=pub, sub_client=sub, key=key)
    assert adapter.pub_client is pub and adapter.sub_client is sub
    socketio.AsyncServer(async_mode="aiohttp", client_manager=adapter)
    async with adapter:
        await adapter.of("/").emit("x")
    assert await pub.ping() and await sub.ping()
    await pub.aclose()
    await sub.aclose()


async def test_lazy_initialize_on_first_connection(redis_server, key, make_client):
    """Without start(), python-socketio's first connection starts the listener."""
    from aiohttp import web

    adapter = AsyncRedisAdapter(redis_server.url, key=key)
    sio = socketio.AsyncServer(
        async_mode="aiohttp", client_manager=adapter, transports=["websocket"]
    )
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    lazy = Node(sio, adapter, runner, runner.addresses[0][1])
    other = await Node.start(redis_server.url, key)
    try:
        client = await make_client(lazy)
        await other.sio.emit("from-other")
        assert await client.wait_for("from-other") == [[]]
    finally:
        await lazy.aclose()
        await other.aclose()


async def test_start_fails_clearly_without_redis(key):
    """start() raises RedisAdapterError naming the URL when Redis does not answer."""
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    adapter = AsyncRedisAdapter(url, key=key, requests_timeout=0.3)
    socketio.AsyncServer(async_mode="aiohttp", client_manager=adapter)
    with pytest.raises(RedisAdapterError, match="did not confirm") as info:
        await adapter.start()
    assert "secret" not in str(info.value)
    await adapter.aclose()


@pytest.mark.unit
async def test_start_needs_a_server():
    """start() on an adapter not given to an AsyncServer says what to do."""
    with pytest.raises(RuntimeError, match="client_manager"):
        await AsyncRedisAdapter().start()


async def test_listener_survives_redis_restart(key, make_client):
    """After Redis restarts, the listener re-subscribes and traffic flows again."""
    with RedisServer() as server:
        a, b = await Node.start(server.url, key), await Node.start(server.url, key)
        try:
            client = await make_client(b)
            await b.sio.enter_room(client.sid(), "kept")
            server.restart()
            await wait_until(lambda: b.adapter.stats["reconnects"] >= 1, timeout=15)
            probe = redis.asyncio.Redis.from_url(server.url)
            room = f"{key}#/#kept#"
            await wait_numsub(probe, room)
            await a.sio.emit("after-restart", to="kept")
            assert await client.wait_for("after-restart", timeout=10) == [[]]
            await probe.aclose()
        finally:
            await a.aclose()
            await b.aclose()


def test_uid_is_renewed_in_a_forked_child(tmp_path):
    """An adapter created before os.fork() has a different uid in the child."""
    script = (
        "import os\n"
        "from socketio_redis_async import AsyncRedisAdapter\n"
        "a = AsyncRedisAdapter()\n"
        "parent = a.uid\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print(a.uid != parent and a.host_id == a.uid, flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print(a.uid == parent, flush=True)\n"
    )
    # Not from the checkout (python -c puts the working directory on sys.path): the installed
    # package is what runs.
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.stdout.split() == ["True", "True"]


async def test_aclose_during_an_unsubscribe_burst_returns(redis_server, key, make_client):
    """aclose() right after a socket in 3,000 rooms leaves them all still returns promptly."""
    import asyncio

    for _ in range(3):
        node = await Node.start(redis_server.url, key)
        client = Client()
        await client.connect(node)
        sid = client.sid()
        await asyncio.gather(*(node.sio.enter_room(sid, f"r{i}") for i in range(3000)))
        await client.aclose()
        gone = node.sids
        await wait_until(lambda: sid not in gone())  # noqa: B023
        with anyio.fail_after(15):
            await node.aclose()


async def test_cluster_over_a_unix_socket(tmp_path, key, make_node, make_client):
    """unix:// URLs work for publishing, subscribing and requests."""
    path = str(tmp_path / "redis.sock")
    with RedisServer(unixsocket=path):
        url = f"unix://{path}?db=0"
        a, b = await make_node(url=url), await make_node(url=url)
        client = await make_client(b)
        await a.sio.emit("via-unix", 1)
        assert await client.wait_for("via-unix") == [[1]]
        assert await a.adapter.server_count() == 2
        await client.aclose()
        await a.aclose()
        await b.aclose()


async def test_silent_link_is_detected_and_replaced(key, make_client):
    """A pub/sub link that stops answering PINGs is dropped and re-established."""
    with RedisServer() as server:
        a = await Node.start(server.url, key)
        b = await Node.start(server.url, key, health_check_interval=0.2)
        try:
            client = await make_client(b)
            admin = redis.asyncio.Redis.from_url(server.url)
            await admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
            await wait_until(lambda: b.adapter.stats["reconnects"] >= 1, timeout=10)
            await wait_numsub(admin, f"{key}#/#", expected=2)
            await a.sio.emit("after-silence")
            assert await client.wait_for("after-silence", timeout=10) == [[]]
            await admin.aclose()
        finally:
            await a.aclose()
            await b.aclose()
