"""The socketio-redis console script, run as a subprocess against a real cluster."""

from __future__ import annotations

import json

import anyio
import pytest
import redis.asyncio

from socketio_redis_async._cli.redis_server import free_port
from tests.helpers import cli_process, run_cli

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cluster(make_node, make_client, redis_server, key):
    a, b = await make_node(), await make_node()
    ca, cb = await make_client(a), await make_client(b)
    await b.sio.enter_room(cb.sid(), "lobby")
    await a.sio.enter_room(ca.sid(), "lobby")
    await a.sio.enter_room(ca.sid(), "admins")
    return (a, b), (ca, cb), ["--url", redis_server.url, "--key", key]


async def test_emit_reaches_clients(cluster):
    """emit EVENT JSON_ARGS --to ROOM --except ROOM delivers to the right clients and exits 0."""
    _, (ca, cb), opts = cluster
    code, out, err = await run_cli(
        "emit", "news", '{"id": 1}', "[1, 2]", "--to", "lobby", "--except", "admins", *opts
    )
    assert (code, err) == (0, "")
    assert "2 server(s) received it" in out
    assert await cb.wait_for("news") == [[{"id": 1}, [1, 2]]]
    code, out, _ = await run_cli("emit", "ping", "--json", *opts)
    assert json.loads(out) == {"event": "ping", "receivers": 2}
    await ca.wait_for("ping")
    assert ca.received("news") == []


async def test_servers_rooms_and_sockets(cluster):
    """servers, rooms and sockets report what the live servers answer, in text and JSON."""
    (a, b), (ca, cb), opts = cluster
    code, out, _ = await run_cli("servers", *opts)
    assert code == 0 and out.startswith("2 server(s) on namespace /")
    assert a.adapter.uid in out and b.adapter.uid in out
    code, out, _ = await run_cli("servers", "--json", *opts)
    assert json.loads(out) == {"count": 2, "uids": sorted([a.adapter.uid, b.adapter.uid])}
    code, out, _ = await run_cli("rooms", "--json", *opts)
    assert json.loads(out) == {"rooms": {"lobby": 2, "admins": 1}, "sockets": 2}
    code, out, _ = await run_cli("rooms", *opts)
    assert "lobby" in out and "2 member(s)" in out
    code, out, _ = await run_cli("sockets", "--room", "admins", "--json", *opts)
    sockets = json.loads(out)
    assert [s["id"] for s in sockets] == [ca.sid()]
    code, out, _ = await run_cli("sockets", *opts)
    assert code == 0 and "2 socket(s)" in out and cb.sid() in out
    assert await a.adapter.server_count() == 2  # the tool was never counted as a server


async def test_monitor_prints_cluster_traffic(cluster):
    """monitor --count N prints decoded broadcasts and requests, then exits 0."""
    (a, _), (_, cb), opts = cluster
    async with cli_process(
        "monitor",
        "--count",
        "2",
        "--json",
        *opts,
    ) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        with anyio.fail_after(15):
            assert b"monitoring" in await proc.stderr.readline()
            await a.sio.emit("watched", {"x": b"\x01"}, to="lobby")
            await a.adapter.server_side_emit("sse-watched", 1)
            out = await proc.stdout.read()
            assert await proc.wait() == 0
    first, second = (json.loads(line) for line in out.decode().splitlines())
    assert (
        first["kind"] == "broadcast" and first["event"] == "watched" and first["rooms"] == ["lobby"]
    )
    assert first["uid"] == a.adapter.uid and "bytes" in first["args"]
    assert second["kind"] == "request" and second["type"] == "SERVER_SIDE_EMIT"
    assert second["event"] == "sse-watched"


async def test_errors_exit_non_zero_with_one_line(cluster):
    """Unreachable Redis, timeouts and bad JSON exit non-zero with one line, no traceback."""
    _, _, opts = cluster
    dead = f"redis://127.0.0.1:{free_port()}/0"
    code, out, err = await run_cli("servers", "--url", dead)
    assert code == 1 and err.count("\n") == 1 and err.startswith("socketio-redis: error: ")
    assert f"Redis at {dead}" in err
    assert "Traceback" not in err
    code, _, err = await run_cli("emit", "ev", "{nope", *opts)
    assert code == 2 and "argument 1 ('{nope') is not valid JSON" in err
    code, _, err = await run_cli("emit", "connect", *opts)
    assert code == 2 and "reserved" in err
    code, _, err = await run_cli("servers", "--url", "http://x")
    assert code == 2 and "scheme" in err
    # A subscriber that looks like a server but never answers makes queries time out.
    import redis.asyncio

    spy = redis.asyncio.Redis.from_url(opts[1])
    pubsub = spy.pubsub()
    await pubsub.subscribe(f"{opts[3]}-request#/#")
    try:
        code, _, err = await run_cli("rooms", "--timeout", "0.5", *opts)
        assert code == 1 and "timeout: only 2 of 3 servers answered" in err
    finally:
        await pubsub.aclose()
        await spy.aclose()


def _nested(depth, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def malformed_messages(key):
    """(channel, payload) pairs that no server can read; a monitor must show each one."""
    import msgpack

    def event(*args):
        return msgpack.packb(["u", {"type": 2, "data": ["e", *args], "nsp": "/"}, {}])

    request, response, broadcast = f"{key}-request#/#", f"{key}-response#/#", f"{key}#/#"
    return [
        (broadcast, b"\xc1"),
        (broadcast, event(_nested(990, msgpack.Timestamp(1, 0)))),
        (broadcast, event({b"key": 1})),
        (broadcast, event(_nested(990, 1))),
        (broadcast, event(msgpack.ExtType(5, b""))),
        (f"{key}#/#\xff#".encode("latin-1"), b"{}"),
        (request, b'{"type":0,"a":' + b"[" * 5000 + b"]" * 5000 + b"}"),
        (request, b'{"type":0,"requestId":["x"]}'),
        (request, b'{"type":6,"data":["\\ud800", "\\udfff"]}'),
        (request, b'{"type":6,"uid":"\\ud800","data":[{"a":1}]}'),
        (request, b'{"type":0,"n":' + b"9" * 5000 + b"}"),
        (request, msgpack.packb({"type": 6, "uid": b"\x00", "data": [b"\x01", {1: 2}]})),
        (request, msgpack.packb({"type": [1], "requestId": 1.5, "data": [[1], b"x"]})),
        (response, b"[1]"),
        (response, msgpack.packb({"requestId": {"x": 1}})),
    ]


@pytest.mark.parametrize("mode", ["text", "json"])
async def test_monitor_shows_malformed_messages_and_keeps_going(
    redis_client, redis_server, key, mode
):
    """monitor prints one line per unreadable message and still shows the next good one."""
    bad = malformed_messages(key)
    async with cli_process(
        "monitor",
        "--count",
        str(len(bad) + 1),
        *(["--json"] if mode == "json" else []),
        "--url",
        redis_server.url,
        "--key",
        key,
    ) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        with anyio.fail_after(30):
            assert b"monitoring" in await proc.stderr.readline()
            for channel, payload in bad:
                await redis_client.publish(channel, payload)
            good = b'{"type":6,"uid":"srv","data":["still-shown",1]}'
            await redis_client.publish(f"{key}-request#/#", good)
            out, err = await proc.communicate()
    assert (proc.returncode, err) == (0, b"")
    lines = out.decode().splitlines()
    assert len(lines) == len(bad) + 1
    assert "still-shown" in lines[-1] and "request" in lines[-1]
    if mode == "json":
        entries = [json.loads(line) for line in lines]
        assert entries[-1]["event"] == "still-shown"
        assert all(set(e) >= {"channel", "kind", "time"} for e in entries)
        assert [e["kind"] for e in entries[:5]] == ["malformed"] * 5


async def test_monitor_reports_a_redis_restart_and_keeps_going(own_redis, key):
    """monitor says on stderr when its link to Redis is lost and back, and shows later traffic."""
    channel = f"{key}-request#/#"
    async with cli_process("monitor", "--count", "2", "--url", own_redis.url, "--key", key) as proc:
        assert proc.stderr is not None
        with anyio.fail_after(60):
            assert b"monitoring" in await proc.stderr.readline()
            async with redis.asyncio.Redis.from_url(own_redis.url) as client:
                await client.publish(channel, b'{"type":6,"uid":"srv","data":["before",1]}')
            own_redis.restart()
            assert b"lost the link" in await proc.stderr.readline()
            assert b"the link is back" in await proc.stderr.readline()
            async with redis.asyncio.Redis.from_url(own_redis.url) as client:
                await client.publish(channel, b'{"type":6,"uid":"srv","data":["after",1]}')
            out, err = await proc.communicate()
    assert (proc.returncode, err) == (0, b"")
    lines = out.decode().splitlines()
    assert len(lines) == 2 and "before" in lines[0] and "after" in lines[1]
