"""AsyncShardedRedisAdapter between Python servers on a standalone Redis 7 (SPUBLISH)."""

from __future__ import annotations

import json

import anyio
import msgpack
import pytest

from socketio_redis_async import (
    AsyncEmitter,
    AsyncShardedRedisAdapter,
    Emitter,
    RequestTimeoutError,
)
from tests.helpers import cli_process, run_cli, wait_until, wait_until_async
from tests.sharded import shard_numsub, start_sharded
from tests.test_acl import refused

pytestmark = pytest.mark.anyio
MODES = ["static", "dynamic", "dynamic-private"]


@pytest.mark.parametrize("mode", MODES)
async def test_broadcasts_reach_the_other_server_in_every_mode(mode, make_sharded, make_client):
    """To all, to a room, except a room, to a socket-id room: each reaches only its targets."""
    a, b = await make_sharded(mode), await make_sharded(mode)
    member, other = await make_client(b, name="member"), await make_client(b, name="other")
    await b.sio.enter_room(member.sid(), "room")
    await a.sio.emit("all", 1)
    await a.sio.emit("to-room", 2, to="room")
    await a.adapter.of("/").except_("room").emit("except-room", 4)
    await a.sio.emit("to-sid", 5, to=other.sid())
    await a.sio.emit("marker", 0)
    await member.wait_for("marker")
    await other.wait_for("marker")
    assert member.received("to-room") == [[2]] and other.received("to-room") == []
    assert member.received("except-room") == [] and other.received("except-room") == [[4]]
    assert other.received("to-sid") == [[5]] and member.received("to-sid") == []
    assert member.received("all") == other.received("all") == [[1]]


@pytest.mark.parametrize(
    ("mode", "public", "private"), [("static", 0, 0), ("dynamic", 1, 0), ("dynamic-private", 1, 1)]
)
async def test_room_channels_follow_the_subscription_mode(
    mode, public, private, make_sharded, make_client, redis_client, key
):
    """Dynamic modes subscribe a room's channel while it has members; only dynamic-private
    gives socket-id rooms one; static subscribes neither."""
    node = await make_sharded(mode)
    client = await make_client(node)
    await node.sio.enter_room(client.sid(), "room")
    assert await shard_numsub(redis_client, f"{key}#/#room#") == public
    assert await shard_numsub(redis_client, f"{key}#/#{client.sid()}#") == private
    await node.sio.leave_room(client.sid(), "room")
    await wait_until_async(lambda n: n == 0, lambda: shard_numsub(redis_client, f"{key}#/#room#"))


async def test_a_join_is_confirmed_before_enter_room_returns(make_sharded, make_client):
    """A broadcast right after each join reaches the new member: the subscription of the
    room's channel is confirmed first (Node does not wait for it)."""
    a, b = await make_sharded(), await make_sharded()
    client = await make_client(b)
    for i in range(30):
        await b.sio.enter_room(client.sid(), f"room-{i}")
        await a.sio.emit("joined", i, to=f"room-{i}")
    await client.wait_for("joined", 30)
    assert sorted(args[0] for args in client.received("joined")) == list(range(30))


async def test_the_cluster_api_works_across_servers(make_sharded, make_client):
    """server_count, fetch_sockets, clients, all_rooms, client_rooms, sockets_join/leave,
    remote_join/leave/disconnect, disconnect_sockets, server-side emits and broadcast acks."""
    a, b = await make_sharded(), await make_sharded()
    here, there = await make_client(a, name="here"), await make_client(b, name="there")
    there.ack_value = lambda event, args: f"ack {args[0]}"
    here.ack_value = lambda event, args: f"local {args[0]}"
    assert await a.adapter.server_count() == 2
    await b.sio.enter_room(there.sid(), "room")
    found = {s.id: s for s in await a.adapter.fetch_sockets()}
    assert set(found) == {here.sid(), there.sid()}
    assert "room" in found[there.sid()].rooms
    assert sorted(await a.adapter.clients()) == sorted([here.sid(), there.sid()])
    assert {"room", here.sid(), there.sid()} <= await a.adapter.all_rooms()
    assert "room" in (await a.adapter.client_rooms(there.sid()) or set())

    await a.adapter.sockets_join("joined", to="room")
    await wait_until(lambda: "joined" in b.sio.manager.get_rooms(there.sid(), "/"))
    await a.adapter.remote_join(there.sid(), "remote")
    await wait_until(lambda: "remote" in b.sio.manager.get_rooms(there.sid(), "/"))
    await a.adapter.remote_leave(there.sid(), "remote")
    await wait_until(lambda: "remote" not in b.sio.manager.get_rooms(there.sid(), "/"))
    with pytest.raises(RequestTimeoutError, match="no server holds socket"):
        await a.adapter.remote_join("x" * 20, "room")

    b.adapter.on("add", lambda x, y: x + y)
    assert await a.adapter.server_side_emit_with_ack("add", 40, 2) == [42]
    b.adapter.custom_hook = lambda data: {"seen": data}
    a.adapter.custom_hook = lambda data: "mine"
    assert await a.adapter.custom_request("hi") == ["mine", {"seen": "hi"}]
    assert sorted(await a.adapter.emit_with_ack("ask", 7)) == ["ack 7", "local 7"]
    acks: list[object] = []
    await a.sio.emit("one", 9, to=there.sid(), callback=acks.append)
    await wait_until(lambda: acks == ["ack 9"])

    await a.adapter.disconnect_sockets(to="joined")
    await there.wait_disconnected()
    assert await a.adapter.clients() == [here.sid()]


async def test_a_remote_disconnect_reaches_the_socket_on_the_other_server(
    make_sharded, make_client
):
    """remote_disconnect finds the socket's server (fetch first) and disconnects it."""
    a, b = await make_sharded(), await make_sharded()
    there = await make_client(b)
    sid = there.sid()
    await a.adapter.remote_disconnect(sid)
    await there.wait_disconnected()
    with pytest.raises(RequestTimeoutError):
        await a.adapter.remote_disconnect(sid)


async def test_malformed_sharded_messages_are_dropped_and_counted(
    make_sharded, make_client, redis_client, key
):
    """Junk on every channel (including Node's killer: a message without data, and request
    ids no map can hold) is dropped, counted, and the listener keeps delivering."""
    a, b = await make_sharded(), await make_sharded()
    client = await make_client(b)
    await b.sio.enter_room(client.sid(), "room")
    junk = [
        b"not json",
        b"{",
        json.dumps({"uid": "x", "nsp": "/", "type": 3}).encode(),  # no data
        json.dumps({"uid": "x", "nsp": "/", "type": 3, "data": "str"}).encode(),
        json.dumps({"uid": 1, "nsp": "/", "type": 3, "data": {}}).encode(),
        json.dumps({"uid": "x", "nsp": "/", "type": "3", "data": {}}).encode(),
        json.dumps({"uid": "x", "nsp": "/", "type": 3, "data": {"packet": 1}}).encode(),
        json.dumps({"uid": "x", "nsp": "/", "type": 99, "data": {}}).encode(),
        json.dumps({"uid": "x", "nsp": "/", "type": 4, "data": {"opts": 1}}).encode(),
        msgpack.packb({"uid": "x", "nsp": "/", "type": 7, "data": {"opts": []}}),
        msgpack.packb({"uid": "x", "nsp": "/", "type": 7, "data": {"opts": {}, "requestId": {}}}),
        msgpack.packb({"uid": "x", "nsp": "/", "type": 3, "data": {"requestId": [1]}}),
        msgpack.packb({"uid": "x", "nsp": "/", "type": 8, "data": {"requestId": {"a": 1}}}),
        b"\xc1\xc1",
        b"[" * 100_000,
    ]
    response = f"{key}#/#{b.adapter.uid}#"
    for channel in (f"{key}#/#", f"{key}#/#room#", response):
        for payload in junk:
            await redis_client.execute_command("SPUBLISH", channel, payload)
    await wait_until(lambda: b.adapter.stats["dropped_messages"] == 3 * len(junk))
    await a.sio.emit("still", 1, to="room")
    await client.wait_for("still")
    assert b.adapter.stats["handler_errors"] == 0


async def test_requests_timeout_is_honoured(make_sharded, redis_client, key):
    """A server that never answers makes fetch_sockets fail after requests_timeout
    (Node's sharded adapter always waits 5 s)."""
    node = await make_sharded(requests_timeout=0.3)
    silent = redis_client.pubsub()
    await silent.execute_command("SSUBSCRIBE", f"{key}#/#")
    try:
        assert await node.adapter.server_count() == 2
        with pytest.raises(RequestTimeoutError, match="timeout reached"):
            await node.adapter.fetch_sockets()
        with pytest.raises(RequestTimeoutError, match="responses received out of 1"):
            await node.adapter.server_side_emit_with_ack("anyone")
    finally:
        await silent.aclose()


async def test_other_namespaces_and_own_messages_are_ignored(make_sharded, make_client):
    """A server does not deliver its own broadcasts twice, nor another namespace's."""
    a, b = await make_sharded(), await make_sharded()
    here = await make_client(a)
    there = await make_client(b, ["/", "/custom"])
    await a.sio.emit("root", 1)
    await a.sio.emit("custom", 2, namespace="/custom")
    await there.wait_for("custom", namespace="/custom")
    await there.wait_for("root")
    await a.sio.emit("marker", 0)
    await here.wait_for("marker")
    assert here.received("root") == [[1]]
    assert there.received("custom") == [] and there.received("root", "/custom") == []


@pytest.mark.unit
def test_invalid_options_say_what_to_do():
    """A wrong subscription mode or type is refused with the list of valid ones."""
    with pytest.raises(ValueError, match="static, dynamic, dynamic-private"):
        AsyncShardedRedisAdapter(subscription_mode="sharded")
    with pytest.raises(TypeError, match="subscription_mode must be a str"):
        AsyncShardedRedisAdapter(subscription_mode=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
async def test_sharded_emitters_drive_sharded_servers(
    mode, make_sharded, make_client, redis_server, redis_client, key
):
    """Emitter/AsyncEmitter(sharded=True): broadcasts to all, a room and a socket, socket
    joins, server-side events and disconnects reach servers in every mode."""
    node = await make_sharded(mode)
    first, second = await make_client(node, name="first"), await make_client(node, name="second")
    await node.sio.enter_room(first.sid(), "room")
    heard: list[object] = []
    node.adapter.on("job", heard.append)
    with Emitter(redis_server.url, key=key, sharded=True, subscription_mode=mode) as emitter:
        emitter.emit("all", 1)
        emitter.to("room").emit("room", 2)
        emitter.to(second.sid()).emit("direct", 3)
        emitter.server_side_emit("job", {"id": 4})
    async with AsyncEmitter(redis_server.url, key=key, sharded=True, subscription_mode=mode) as e:
        await e.to(second.sid()).sockets_join("joined")
        # A join applied by another server subscribes the room's channel in the background.
        subscribed = 0 if mode == "static" else 1
        channel = f"{key}#/#joined#"
        await wait_until_async(
            lambda n: n == subscribed, lambda: shard_numsub(redis_client, channel)
        )
        await e.to("joined").emit("joined", 5)
        await second.wait_for("joined")
        await e.to("room").disconnect_sockets()
    await first.wait_disconnected()
    await wait_until(lambda: heard == [{"id": 4}])
    assert first.received("room") == [[2]] and second.received("room") == []
    assert second.received("direct") == [[3]] and first.received("direct") == []
    assert first.received("all") == second.received("all") == [[1]]
    assert second.sio.connected


async def test_the_cli_speaks_the_sharded_protocol(make_sharded, make_client, redis_server, key):
    """socketio-redis --sharded: servers, rooms, sockets, emit and monitor work against
    sharded servers, and the tool is never counted as one."""
    a, b = await make_sharded(), await make_sharded()
    ca, cb = await make_client(a), await make_client(b)
    for node, client in ((a, ca), (b, cb)):
        await node.sio.enter_room(client.sid(), "lobby")
    opts = ["--url", redis_server.url, "--key", key, "--sharded"]
    code, out, err = await run_cli("servers", "--json", *opts)
    assert (code, err) == (0, "")
    assert json.loads(out) == {"count": 2, "uids": sorted([a.adapter.uid, b.adapter.uid])}
    code, out, _ = await run_cli("rooms", "--json", *opts)
    assert json.loads(out) == {"rooms": {"lobby": 2}, "sockets": 2}
    code, out, _ = await run_cli("sockets", "--room", "lobby", "--json", *opts)
    assert sorted(s["id"] for s in json.loads(out)) == sorted([ca.sid(), cb.sid()])
    code, out, _ = await run_cli("emit", "news", "1", "--to", "lobby", *opts)
    assert code == 0
    await ca.wait_for("news")
    await cb.wait_for("news")
    async with cli_process("monitor", "--count", "1", "--json", *opts) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        with anyio.fail_after(15):
            assert b"monitoring" in await proc.stderr.readline()
            await a.adapter.server_side_emit("watched", 1)
            line = await proc.stdout.readline()
            assert await proc.wait() == 0
    seen = json.loads(line)
    assert (seen["kind"], seen["type"], seen["event"]) == ("request", "SERVER_SIDE_EMIT", "watched")
    assert seen["uid"] == a.adapter.uid
    assert await a.adapter.server_count() == 2


async def test_the_documented_acl_rules_suffice(redis_server, redis_client, key, make_client):
    """Sharded servers and a sharded emitter with only the README's rules work, and Redis
    refuses nothing they send (ACL LOG stays empty)."""
    server = ["resetchannels", f"&{key}#*", "resetkeys", "-@all", "+spublish", "+ssubscribe"]
    server += ["+sunsubscribe", "+pubsub|shardnumsub", "+pubsub|shardchannels"]
    server += ["+cluster|slots", "+ping"]
    emitter = ["resetchannels", f"&{key}#*", "resetkeys", "-@all", "+spublish", "+info"]
    await redis_client.execute_command("ACL", "LOG", "RESET")
    for user, rules in ((f"s{key}", server), (f"e{key}", emitter)):
        await redis_client.execute_command("ACL", "SETUSER", user, "reset", "on", ">pw", *rules)
    url = f"redis://s{key}:pw@127.0.0.1:{redis_server.port}/0"
    a = await start_sharded(url, key)
    b = await start_sharded(url, key)
    try:
        client = await make_client(b)
        await b.sio.enter_room(client.sid(), "room")
        await a.sio.emit("hello", 1, to="room")
        assert await client.wait_for("hello") == [[1]]
        assert [s.id for s in await a.adapter.fetch_sockets()] == [client.sid()]
        assert await a.adapter.server_count() == 2
        emitter_url = f"redis://e{key}:pw@127.0.0.1:{redis_server.port}/0"
        with Emitter(emitter_url, key=key, sharded=True) as emit:
            emit.to("room").emit("emitted", 2)
        assert await client.wait_for("emitted") == [[2]]
        for user in (f"s{key}", f"e{key}"):  # best-effort CLIENT calls aside, as in test_acl
            assert await refused(redis_client, user) == {}
    finally:
        await a.aclose()
        await b.aclose()
