"""AsyncStreamsRedisAdapter between Python servers on a real Redis: the cluster API, and
delivery across a lost link."""

from __future__ import annotations

import json

import anyio
import pytest

from socketio_redis_async import AsyncStreamsRedisAdapter
from tests.helpers import cli_process, run_cli, wait_until, wait_until_async
from tests.streams import kill_readers, reader_clients, reader_stalled

pytestmark = pytest.mark.anyio


async def test_broadcasts_reach_the_other_server(make_streams, make_client):
    """To all, to a room, except a room, to a socket id, binary: each reaches its targets."""
    a, b = await make_streams(), await make_streams()
    member, other = await make_client(b, name="member"), await make_client(b, name="other")
    await b.sio.enter_room(member.sid(), "room")
    await a.sio.emit("all", 1)
    await a.sio.emit("to-room", 2, to="room")
    await a.adapter.of("/").except_("room").emit("except-room", 4)
    await a.sio.emit("to-sid", 5, to=other.sid())
    await a.sio.emit("bytes", b"\x00\x01")
    await a.sio.emit("marker", 0)
    await member.wait_for("marker")
    await other.wait_for("marker")
    assert member.received("to-room") == [[2]] and other.received("to-room") == []
    assert member.received("except-room") == [] and other.received("except-room") == [[4]]
    assert other.received("to-sid") == [[5]] and member.received("to-sid") == []
    assert member.received("all") == other.received("all") == [[1]]
    assert other.received("bytes") == [[b"\x00\x01"]]


async def test_broadcasts_are_stream_entries_in_node_field_order(make_streams, redis_client, key):
    """A broadcast is ``XADD <stream> ... uid nsp type data`` with JSON data, a join too."""
    a = await make_streams()
    await a.sio.emit("ev", {"x": 1})
    await a.adapter.sockets_join(["r"])
    entries = await redis_client.xrange(key)
    assert [list(fields) for _, fields in entries] == [[b"uid", b"nsp", b"type", b"data"]] * 2
    first, second = (fields for _, fields in entries)
    assert (first[b"uid"], first[b"nsp"], first[b"type"]) == (a.adapter.uid.encode(), b"/", b"3")
    assert first[b"data"].startswith(b'{"packet":{"type":2,"data":["ev",{"x":1}]')
    assert second[b"type"] == b"4"


async def test_servers_are_counted_and_queried_over_pub_sub(make_streams, make_client):
    """server_count (NUMSUB), fetch_sockets, server-side emits with acks, and emit with acks."""
    a, b = await make_streams(), await make_streams()
    client = await make_client(b)
    client.ack_value = lambda event, args: ["ok", *args]
    assert await a.adapter.server_count() == 2
    sockets = await a.adapter.fetch_sockets()
    assert [s.id for s in sockets] == [client.sid()]

    @b.adapter.on("ping")
    async def pong(value):
        return value + 1

    assert await a.adapter.server_side_emit_with_ack("ping", 41) == [42]
    acks = await a.adapter.emit_with_ack("ask", 7, timeout=2)
    assert acks == [["ok", 7]]


async def test_socket_operations_travel_in_the_stream(make_streams, make_client):
    """sockets_join, sockets_leave and disconnect_sockets reach the sockets of other servers."""
    a, b = await make_streams(), await make_streams()
    client = await make_client(b)
    await a.adapter.sockets_join(["r1", "r2"])
    await wait_until(lambda: {"r1", "r2"} <= set(b.sio.manager.get_rooms(client.sid(), "/")))
    await a.adapter.sockets_leave(["r1"])
    await wait_until(lambda: "r1" not in b.sio.manager.get_rooms(client.sid(), "/"))
    await a.adapter.disconnect_sockets()
    await client.wait_disconnected()


async def test_a_reader_whose_link_dies_gets_every_broadcast_in_order(
    make_streams, make_client, redis_client
):
    """The receiving server's reader connection is killed for 2 s while 500 numbered
    broadcasts are sent: every one arrives, in order, none twice."""
    a, b = await make_streams(), await make_streams(read_count=50)
    client = await make_client(b)
    assert await kill_readers(redis_client, b) == 1

    async def keep_killing() -> None:
        with anyio.move_on_after(2):
            while True:
                await kill_readers(redis_client, b)
                await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(keep_killing)
        for i in range(500):
            await a.sio.emit("n", i)
            if i % 50 == 0:
                await anyio.sleep(0.02)
    await client.wait_for("n", 500, timeout=20)
    assert [args[0] for args in client.received("n")] == list(range(500))
    stats = b.adapter.stats
    assert stats["stream_reconnects"] >= 2 and stats["stream_entries_lost"] == 0
    await wait_until_async(lambda ids: len(ids) == 1, lambda: reader_clients(redis_client, b))


async def test_a_gap_left_by_trimming_is_reported(make_streams, make_client, redis_client, caplog):
    """A server whose handling stalls while another adds far more than max_len entries
    logs and counts the entries trimmed before it read them (how many: on Redis 7, which
    counts the entries ever added; Redis 6 only shows that there is a gap)."""
    a = await make_streams(max_len=10)
    await a.sio.emit("seed")  # b starts after an entry: its offset is a real id
    b = await make_streams()
    client = await make_client(b)
    async with reader_stalled(b, a, ("n", 0)):
        for i in range(1, 400):
            await a.sio.emit("n", i)
        assert await redis_client.xlen(a.adapter.stream_name) < 400
    await wait_until(lambda: b.adapter.stats["stream_gaps"] == 1, timeout=10)
    await a.sio.emit("after")
    await client.wait_for("after")
    numbers = [args[0] for args in client.received("n")]
    assert numbers[0] == 0 and numbers[-1] == 399 and numbers == sorted(numbers)
    version = (await redis_client.info("server"))["redis_version"]
    if int(str(version).split(".")[0]) >= 7:
        assert b.adapter.stats["stream_entries_lost"] == 400 - len(numbers)
    assert "trimmed before this server read them" in caplog.text


def test_options_are_checked():
    """Bad streams options raise with a message that says what to pass."""
    with pytest.raises(TypeError, match="stream_count must be an int"):
        AsyncStreamsRedisAdapter(stream_count="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_len must be at least 1"):
        AsyncStreamsRedisAdapter(max_len=0)
    with pytest.raises(TypeError, match="connection_state_recovery must be None or a"):
        AsyncStreamsRedisAdapter(connection_state_recovery=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="read_linger must be between 0 and 1"):
        AsyncStreamsRedisAdapter(read_linger=5)
    with pytest.raises(TypeError, match="read_linger must be a number"):
        AsyncStreamsRedisAdapter(read_linger="1ms")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown option 'keys'"):
        AsyncStreamsRedisAdapter(keys="x")  # type: ignore[call-arg]


async def test_the_cli_speaks_to_a_streams_cluster(make_streams, make_client, redis_server, key):
    """servers, rooms, sockets, emit and monitor (live, and replayed with --from 0) work
    with --streams; the CLI is never counted as a server."""
    a, b = await make_streams(), await make_streams()
    ca, cb = await make_client(a), await make_client(b)
    await a.sio.enter_room(ca.sid(), "lobby")
    await b.sio.enter_room(cb.sid(), "lobby")
    opts = ("--url", redis_server.url, "--key", key, "--streams", "--stream-name", key)
    code, out, err = await run_cli("servers", "--json", *opts)
    assert (code, err) == (0, "")
    assert json.loads(out) == {"count": 2, "uids": sorted([a.adapter.uid, b.adapter.uid])}
    code, out, _ = await run_cli("rooms", "--json", *opts)
    assert json.loads(out) == {"rooms": {"lobby": 2}, "sockets": 2}
    code, out, _ = await run_cli("emit", "news", "1", "--to", "lobby", *opts)
    assert code == 0
    assert await ca.wait_for("news") == await cb.wait_for("news") == [[1]]
    async with cli_process("monitor", "--count", "2", "--json", *opts) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        with anyio.fail_after(15):
            assert b"monitoring" in await proc.stderr.readline()
            await a.sio.emit("watched", 2)
            await a.adapter.server_side_emit("asked", 3)
            lines = [json.loads(await proc.stdout.readline()) for _ in range(2)]
            assert await proc.wait() == 0
    by_kind = {line["kind"]: line for line in lines}
    assert by_kind["broadcast"]["event"] == "watched" and by_kind["broadcast"]["offset"]
    assert (by_kind["request"]["type"], by_kind["request"]["event"]) == (
        "SERVER_SIDE_EMIT",
        "asked",
    )
    code, out, _ = await run_cli("monitor", "--count", "2", "--json", "--from", "0", *opts)
    replayed = [json.loads(line) for line in out.splitlines()]
    assert [line.get("event") for line in replayed] == ["news", "watched"]
    assert replayed[0]["uid"] == "emitter" and replayed[1]["uid"] == a.adapter.uid
    code, _, err = await run_cli("servers", "--sharded", *opts)
    assert code == 2 and "--sharded or --streams" in err
