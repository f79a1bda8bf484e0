"""Emitters (sync and async) driving real Python servers through a real redis-server."""

from __future__ import annotations

import anyio
import msgpack
import pytest
import redis

from socketio_redis_async import AdapterClosedError, AsyncEmitter, Emitter, PublishError
from socketio_redis_async._cli.redis_server import free_port
from tests.helpers import barrier, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sync", "async"])
def emitter_kind(request):
    return request.param


@pytest.fixture
async def emitter(redis_server, key, emitter_kind):
    """An Emitter or AsyncEmitter with the same awaitable calling convention."""
    if emitter_kind == "sync":
        sync = Emitter(redis_server.url, key=key)
        yield _Await(sync)
        sync.close()
    else:
        em = AsyncEmitter(redis_server.url, key=key)
        yield em
        await em.aclose()


class _Await:
    """Wraps a sync emitter or operator so tests can ``await`` its calls."""

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name):
        value = getattr(self._target, name)
        if callable(value):

            def call(*args, **kwargs):
                result = value(*args, **kwargs)
                if hasattr(result, "emit"):
                    return _Await(result)
                return _done(result)

            return call
        return _Await(value) if hasattr(value, "emit") else value


async def _done(value):
    return value


async def test_emit_any_data_to_python_servers(emitter, make_node, make_client):
    """emit() carries every msgpack type, bytes included, to clients of every server."""
    a, b = await make_node(), await make_node()
    ca, cb = await make_client(a), await make_client(b)
    payload = [1, "2", b"\x03", {"nested": [None, True, 1.5]}]
    assert await emitter.emit("data", *payload) == 2
    for client in (ca, cb):
        assert await client.wait_for("data") == [payload]


async def test_rooms_except_and_namespaces(emitter, make_node, make_client):
    """to(), except_() and of() (with a missing '/') select the right clients."""
    a = await make_node()
    member, other = await make_client(a), await make_client(a, ["/custom"])
    await a.sio.enter_room(member.sid(), "room")
    await emitter.to("room").emit("in-room")
    await emitter.to(member.sid()).emit("by-id")
    await emitter.except_("room").emit("not-room")
    await emitter.of("custom").emit("in-custom")
    assert await member.wait_for("in-room") == [[]]
    assert await member.wait_for("by-id") == [[]]
    assert await other.wait_for("in-custom", namespace="/custom") == [[]]
    await barrier(a, [member])
    assert member.received("not-room") == []


async def test_sockets_join_leave_disconnect(emitter, make_node, make_client):
    """sockets_join/leave and disconnect_sockets act on the servers' sockets."""
    a, b = await make_node(), await make_node()
    ca, cb = await make_client(a), await make_client(b)
    await emitter.sockets_join("joined")
    await wait_until(
        lambda: "joined" in a.sio.rooms(ca.sid()) and "joined" in b.sio.rooms(cb.sid())
    )
    await emitter.to(cb.sid()).sockets_leave("joined")
    await wait_until(lambda: "joined" not in b.sio.rooms(cb.sid()))
    assert "joined" in a.sio.rooms(ca.sid())
    await emitter.to("joined").disconnect_sockets(True)
    await ca.wait_disconnected()
    assert not cb.disconnected.is_set()


async def test_server_side_emit(emitter, make_node):
    """server_side_emit() reaches every server's handler."""
    a, b = await make_node(), await make_node()
    got = []
    a.adapter.on("job-done", lambda *args: got.append(("a", args)))
    b.adapter.on("job-done", lambda *args: got.append(("b", args)))
    await emitter.server_side_emit("job-done", 42)
    await wait_until(lambda: sorted(got) == [("a", (42,)), ("b", (42,))])


async def test_wire_format_matches_node_emitter(emitter, redis_client, key):
    """The bytes match @socket.io/redis-emitter 5.x: uid 'emitter', keys rooms/flags/except."""
    pubsub = redis_client.pubsub()
    await pubsub.psubscribe(f"{key}*")
    await emitter.to("r").volatile.compress(True).emit("ev", b"\x01")
    await emitter.sockets_join("x")
    await emitter.server_side_emit("sse", 1)
    got: list[tuple[str, bytes]] = []
    with anyio.fail_after(5):
        while len(got) < 3:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if msg:
                got.append((msg["channel"].decode(), msg["data"]))
    assert got[0][0] == f"{key}#/#r#"
    assert msgpack.unpackb(got[0][1]) == [
        "emitter",
        {"type": 2, "data": ["ev", b"\x01"], "nsp": "/"},
        {"rooms": ["r"], "flags": {"volatile": True, "compress": True}, "except": []},
    ]
    assert list(msgpack.unpackb(got[0][1])[2]) == ["rooms", "flags", "except"]
    assert got[1] == (
        f"{key}-request#/#",
        b'{"type":2,"opts":{"rooms":[],"except":[]},"rooms":["x"]}',
    )
    assert got[2] == (f"{key}-request#/#", b'{"uid":"emitter","type":6,"data":["sse",1]}')
    await pubsub.aclose()


async def test_bad_input_is_rejected(emitter):
    """Reserved events, ack callbacks, bad rooms and unencodable data raise clear errors."""
    with pytest.raises(ValueError, match="reserved"):
        await emitter.emit("connect")
    with pytest.raises(TypeError, match="acknowledgements are not supported"):
        await emitter.emit("ev", lambda: None)
    with pytest.raises(TypeError, match="room must be a str or an int"):
        emitter.to(1.5)
    with pytest.raises(TypeError, match="cannot encode"):
        await emitter.emit("ev", object())


def test_constructor_validation(redis_server):
    """Emitters validate url/client/key/namespace and say what to pass."""
    with pytest.raises(ValueError, match="either url or client"):
        Emitter("redis://x", client=redis.Redis())
    with pytest.raises(TypeError, match="redis.asyncio.client.Redis|redis.asyncio.Redis"):
        AsyncEmitter(client=redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scheme"):
        Emitter("http://localhost")
    with pytest.raises(ValueError, match="key must not be empty"):
        Emitter(key="")
    client = redis.Redis.from_url(redis_server.url)
    with Emitter(client=client) as em:
        assert em.of("chat").namespace == "/chat"
    assert client.ping()  # not closed: the emitter did not create it
    client.close()


async def test_failed_publish_raises(emitter_kind, key):
    """A publish to an unreachable Redis raises PublishError; a closed emitter raises too."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    if emitter_kind == "sync":
        em = Emitter(url, key=key)
        with pytest.raises(PublishError, match="could not publish"):
            em.emit("ev")
        em.close()
        with pytest.raises(AdapterClosedError):
            em.emit("ev")
    else:
        aem = AsyncEmitter(url, key=key)
        with pytest.raises(PublishError, match="could not publish"):
            await aem.emit("ev")
        await aem.aclose()
        with pytest.raises(AdapterClosedError):
            await aem.emit("ev")
