"""Real ACL users on a real redis-server: the minimal rules work, refusals are reported precisely.

The rules are the ones the README's Security section documents.
"""

from __future__ import annotations

import json
import logging

import anyio
import pytest
import redis.asyncio
import socketio

from socketio_redis_async import AccessDeniedError, AsyncEmitter, AsyncRedisAdapter, Emitter
from socketio_redis_async._cli.redis_server import RedisServer
from tests.helpers import Node, acl_log_entries, cli_process, run_cli, wait_numsub, wait_until

pytestmark = pytest.mark.anyio


def server_rules(key: str, *, multiplexing: bool = True, namespaces=("/",)) -> list[str]:
    """The README's minimal ACL rules for a server (channels, then commands)."""
    rules = ["resetchannels", f"&{key}#*", f"&{key}-request#*", f"&{key}-response#*"]
    rules += ["resetkeys", "-@all", "+publish", "+subscribe", "+unsubscribe"]
    rules += ["+pubsub|numsub", "+pubsub|channels", "+ping"]
    if not multiplexing:
        # PSUBSCRIBE is checked literally: the exact pattern must be allowed.
        rules += ["+psubscribe", "+punsubscribe", *(f"&{key}#{nsp}#*" for nsp in namespaces)]
    return rules


def emitter_rules(key: str) -> list[str]:
    """The README's minimal ACL rules for an emitter."""
    return ["resetchannels", f"&{key}#*", f"&{key}-request#*", "resetkeys", "-@all", "+publish"]


async def acl_user(admin: redis.asyncio.Redis, name: str, rules: list[str]) -> None:
    await admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw", *rules)


def url_for(server: RedisServer, user: str, password: str = "pw") -> str:
    return f"redis://{user}:{password}@127.0.0.1:{server.port}/0"


async def unstarted(url: str, key: str, **options) -> AsyncRedisAdapter:
    options.setdefault("requests_timeout", 2)
    adapter = AsyncRedisAdapter(url, key=key, **options)
    socketio.AsyncServer(async_mode="asgi", client_manager=adapter)
    return adapter


async def refused(admin: redis.asyncio.Redis, user: str) -> dict[str, int]:
    """What Redis refused ``user``, as {command or channel: count} (from ACL LOG).

    Best-effort CLIENT calls are left out: redis-py sends some of its own (CLIENT SETINFO...)
    on every connection and ignores their refusal, as the adapter does for CLIENT SETNAME.
    """
    entries = acl_log_entries(await admin.execute_command("ACL", "LOG"))
    found: dict[str, int] = {}
    for entry in entries:
        name = entry["object"]
        if entry["username"] == user and not name.startswith("client"):
            found[name] = found.get(name, 0) + int(entry["count"])
    return found


def adapter_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "socketio_redis_async"]


@pytest.mark.parametrize("multiplexing", [True, False])
async def test_minimal_server_rules_run_a_full_cluster(
    redis_server, redis_client, key, make_client, multiplexing
):
    """Servers with only the documented rules (no CLIENT) broadcast, use rooms and query."""
    user = f"srv{key}"
    namespaces = ("/", "/custom")
    await acl_user(
        redis_client, user, server_rules(key, multiplexing=multiplexing, namespaces=namespaces)
    )
    url = url_for(redis_server, user)
    opts = {"with_channel_multiplexing": multiplexing}
    a, b = await Node.start(url, key, **opts), await Node.start(url, key, **opts)
    try:
        ca, cb = await make_client(a), await make_client(b, ["/", "/custom"])
        await b.sio.enter_room(cb.sid(), "lobby")
        await a.sio.emit("hello", 1)
        await a.sio.emit("room", 2, to="lobby")
        await a.sio.emit("ns", 3, namespace="/custom")
        assert await cb.wait_for("hello") == [[1]] and await ca.wait_for("hello") == [[1]]
        assert await cb.wait_for("room") == [[2]] and ca.received("room") == []
        assert await cb.wait_for("ns", namespace="/custom") == [[3]]
        assert await a.adapter.server_count() == 2
        found = {s.id: s for s in await a.adapter.fetch_sockets()}
        assert set(found) == {ca.sid(), cb.sid()} and "lobby" in found[cb.sid()].rooms
        assert await a.adapter.all_rooms() >= {"lobby"}
        await a.adapter.sockets_join("vip", to=cb.sid())
        await wait_until(lambda: "vip" in b.sio.rooms(cb.sid()))
        assert await refused(redis_client, user) == {}
    finally:
        await a.aclose()
        await b.aclose()


async def test_client_name_is_set_when_allowed(redis_server, redis_client, key):
    """With CLIENT allowed, the adapter's connections carry their socketio-redis-async name."""
    user = f"named{key}"
    await acl_user(redis_client, user, [*server_rules(key), "+client|setname"])
    node = await Node.start(url_for(redis_server, user), key)
    try:
        await node.adapter.emit("x", 1, namespace="/")  # opens the publishing connection
        listing = (await redis_client.execute_command("CLIENT", "LIST")).decode()
        uid = node.adapter.uid
        assert f"name=socketio-redis-async:{uid}:sub " in listing
        assert f"name=socketio-redis-async:{uid}:pub " in listing
    finally:
        await node.aclose()


async def test_minimal_emitter_rules_drive_a_cluster(
    redis_server, redis_client, key, make_node, make_client
):
    """Emitters whose user may only PUBLISH on the documented channels reach the clients."""
    user = f"emit{key}"
    await acl_user(redis_client, user, emitter_rules(key))
    node = await make_node()
    client = await make_client(node)
    await node.sio.enter_room(client.sid(), "lobby")
    with Emitter(url_for(redis_server, user), key=key) as sync:
        assert sync.to("lobby").emit("sync", 1) == 1
        sync.sockets_join("vip")
    async with AsyncEmitter(url_for(redis_server, user), key=key) as emitter:
        assert await emitter.emit("async", 2) == 1
        await emitter.server_side_emit("sse", 3)
    assert await client.wait_for("sync") == [[1]] and await client.wait_for("async") == [[2]]
    await wait_until(lambda: "vip" in node.sio.rooms(client.sid()))
    assert await refused(redis_client, user) == {}


async def test_user_without_subscribe_gets_a_precise_error_and_one_log_line(
    redis_server, redis_client, key, caplog
):
    """No SUBSCRIBE: start() names the user and the command; one log line across retries."""
    caplog.set_level(logging.INFO, logger="socketio_redis_async")
    user = f"deaf{key}"
    rules = [r for r in server_rules(key) if r != "+subscribe"]
    await acl_user(redis_client, user, rules)
    adapter = await unstarted(url_for(redis_server, user), key, requests_timeout=100)
    try:
        with anyio.fail_after(30):  # refused at once, not after requests_timeout
            with pytest.raises(AccessDeniedError) as info:
                await adapter.start()
        assert str(info.value).startswith(f"user {user!r} lacks permission for SUBSCRIBE")
        assert (info.value.user, info.value.command) == (user, "SUBSCRIBE")
        assert "pw@" not in str(info.value)
        # The listener keeps retrying: Redis logs each refused SUBSCRIBE; we log one line.
        with anyio.fail_after(10):
            while (await refused(redis_client, user)).get("subscribe", 0) < 4:
                await anyio.sleep(0.05)
        (record,) = adapter_records(caplog)
        assert record.levelno == logging.ERROR and record.exc_info is None
        assert "lacks permission for SUBSCRIBE" in record.getMessage()
        # ... backing off: the 5th and 6th attempts wait 0.8-1.6 s and 1.6-3.2 s (a
        # connection that was accepted does not reset the backoff while it is refused).
        before = (await refused(redis_client, user))["subscribe"]
        with anyio.move_on_after(1.5):
            while True:
                await anyio.sleep(0.05)
        assert (await refused(redis_client, user))["subscribe"] - before <= 2
        # Granting the permission is enough: the listener subscribes on its next attempt.
        await redis_client.execute_command("ACL", "SETUSER", user, "+subscribe")
        channel = f"{key}-request#/#"
        await wait_until(
            lambda: (
                adapter._redis.subscriber.connected and adapter._redis.subscriber.denied is None
            ),
            timeout=15,
        )
        await wait_numsub(redis_client, channel)
        assert "accepts the subscriptions again" in adapter_records(caplog)[-1].getMessage()
    finally:
        await adapter.aclose()


async def test_user_without_channel_permission_gets_a_precise_error(
    redis_server, redis_client, key
):
    """SUBSCRIBE allowed but not on the adapter's channels: start() says so and names them."""
    user = f"chan{key}"
    await acl_user(redis_client, user, ["resetchannels", "&elsewhere#*", *server_rules(key)[4:]])
    adapter = await unstarted(url_for(redis_server, user), key)
    try:
        with pytest.raises(
            AccessDeniedError,
            match=f"lacks permission for one of the channels it uses \\({key}#\\*",
        ):
            await adapter.start()
    finally:
        await adapter.aclose()


async def test_refused_pattern_is_reported_once_and_recovers(
    redis_server, redis_client, key, caplog
):
    """Multiplexing off without the exact PSUBSCRIBE pattern: a precise error, then recovery."""
    caplog.set_level(logging.INFO, logger="socketio_redis_async")
    user = f"pat{key}"
    rules = [r for r in server_rules(key, multiplexing=False) if r != f"&{key}#/#*"]
    await acl_user(redis_client, user, rules)
    adapter = await unstarted(url_for(redis_server, user), key, with_channel_multiplexing=False)
    try:
        with pytest.raises(AccessDeniedError, match=f"pattern such as {key}#/#\\* must be allowed"):
            await adapter.start()
        with anyio.fail_after(10):
            while sum((await refused(redis_client, user)).values()) < 3:
                await anyio.sleep(0.05)
        await redis_client.execute_command("ACL", "SETUSER", user, f"&{key}#/#*")
        await wait_until(lambda: adapter._redis.subscriber.denied is None, timeout=15)
        assert await adapter._redis.subscriber.wait([], 5, [f"{key}#/#*"])
        first, last = (r.getMessage() for r in adapter_records(caplog))
        assert "lacks permission for one of the channels" in first
        assert "accepts the subscriptions again" in last
    finally:
        await adapter.aclose()


async def test_wrong_password_says_authentication_failed(redis_server, redis_client, key, caplog):
    """A wrong password: start() raises 'authentication failed for user X'; one log line."""
    caplog.set_level(logging.INFO, logger="socketio_redis_async")
    user = f"auth{key}"
    await acl_user(redis_client, user, server_rules(key))
    adapter = await unstarted(url_for(redis_server, user, "wrong-pw"), key, requests_timeout=100)
    try:
        with anyio.fail_after(30):
            with pytest.raises(AccessDeniedError) as info:
                await adapter.start()
        assert str(info.value).startswith(f"authentication failed for user {user!r}")
        assert info.value.command == "AUTH" and "wrong-pw" not in str(info.value)
        with anyio.fail_after(10):
            while (await refused(redis_client, user)).get("AUTH", 0) < 3:
                await anyio.sleep(0.05)
        (record,) = adapter_records(caplog)
        assert record.exc_info is None and "authentication failed" in record.getMessage()
    finally:
        await adapter.aclose()


async def test_missing_password_is_not_hidden_by_the_best_effort_client_name(key):
    """A URL without password on a Redis that requires one fails as authentication (NOAUTH)."""
    with RedisServer() as server:
        admin = redis.asyncio.Redis.from_url(server.url)
        await admin.config_set("requirepass", "needed")
        await admin.aclose()
        adapter = await unstarted(server.url, key)
        try:
            with pytest.raises(AccessDeniedError, match="authentication failed for user 'default'"):
                await adapter.start()
        finally:
            await adapter.aclose()


async def test_command_line_with_the_documented_users(
    redis_server, redis_client, key, make_node, make_client
):
    """socketio-redis works as the README says: emit as emitter, queries and monitor as server."""
    server_user, emitter_user = f"clisrv{key}", f"cliemit{key}"
    await acl_user(redis_client, server_user, [*server_rules(key), "+psubscribe"])
    await acl_user(redis_client, emitter_user, emitter_rules(key))
    node = await make_node()
    client = await make_client(node)
    as_server = ["--url", url_for(redis_server, server_user), "--key", key]
    as_emitter = ["--url", url_for(redis_server, emitter_user), "--key", key]
    code, out, err = await run_cli("emit", "cli", "1", *as_emitter)
    assert (code, err) == (0, "") and await client.wait_for("cli") == [[1]]
    for command in ("servers", "rooms", "sockets"):
        code, out, err = await run_cli(command, "--json", *as_server)
        assert (code, err) == (0, ""), command
    async with cli_process(
        "monitor",
        "--count",
        "1",
        "--json",
        *as_server,
    ) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        with anyio.fail_after(15):
            assert b"monitoring" in await proc.stderr.readline()
            await node.sio.emit("watched", 1)
            out_bytes = await proc.stdout.read()
            assert await proc.wait() == 0
    assert json.loads(out_bytes)["event"] == "watched"
    assert await refused(redis_client, server_user) == {}
    assert await refused(redis_client, emitter_user) == {}
