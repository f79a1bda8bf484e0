"""What goes over Redis, checked with a plain redis-py client."""

from __future__ import annotations

import asyncio

import anyio
import msgpack
import pytest

from tests.helpers import barrier, wait_until_async

pytestmark = pytest.mark.anyio


async def next_message(pubsub, timeout=5):
    with anyio.fail_after(timeout):
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            if msg is not None:
                return msg


async def test_room_broadcast_channel_and_bytes(make_node, make_client, redis_client, key):
    """A one-room emit goes to K#N#room# as msgpack [uid, packet, opts]; numeric rooms stay ints."""
    a = await make_node()
    pubsub = redis_client.pubsub()
    await pubsub.psubscribe(f"{key}#/#*")
    await a.sio.emit("ev", (1, b"\x01"), to="r1", skip_sid="nope")
    msg = await next_message(pubsub)
    assert msg["channel"] == f"{key}#/#r1#".encode()
    assert msgpack.unpackb(msg["data"]) == [
        a.adapter.uid,
        {"type": 2, "data": ["ev", 1, b"\x01"], "nsp": "/"},
        {"rooms": ["r1"], "except": ["nope"], "flags": {}},
    ]
    await a.sio.emit("num", to=[7, "x"])
    msg = await next_message(pubsub)
    assert msg["channel"] == f"{key}#/#".encode()
    assert msgpack.unpackb(msg["data"])[2]["rooms"] == [7, "x"]
    await a.adapter.of("/").to(7).volatile.compress(False).emit("flags")
    msg = await next_message(pubsub)
    assert msg["channel"] == f"{key}#/#7#".encode()
    assert msgpack.unpackb(msg["data"])[2] == {
        "rooms": [7],
        "except": [],
        "flags": {"volatile": True, "compress": False},
    }
    await pubsub.aclose()


async def test_node_format_messages_are_delivered(make_node, make_client, redis_client, key):
    """Hand-built Node server and emitter messages reach the right clients."""
    a = await make_node()
    member, other = await make_client(a), await make_client(a)
    await a.sio.enter_room(member.sid(), "room")
    await a.sio.enter_room(member.sid(), 42)
    # What @socket.io/redis-emitter 5.x publishes for emitter.to("room").emit("e1", "x"):
    # keys in the order rooms, flags, except; uid "emitter".
    emitter_msg = msgpack.packb(
        [
            "emitter",
            {"type": 2, "data": ["e1", "x"], "nsp": "/"},
            {"rooms": ["room"], "flags": {}, "except": []},
        ]
    )
    await redis_client.publish(f"{key}#/#room#", emitter_msg)
    assert await member.wait_for("e1") == [["x"]]
    # A Node 2.x-style binary packet (type 5), no nsp, no except/flags, numeric room.
    legacy = msgpack.packb(["node1", {"type": 5, "data": ["e2", b"\x00\x01"]}, {"rooms": [42]}])
    await redis_client.publish(f"{key}#/#42#", legacy)
    assert await member.wait_for("e2") == [[b"\x00\x01"]]
    # A broadcast to everyone except the room, from a Node server.
    everyone = msgpack.packb(
        [
            "node1",
            {"type": 2, "data": ["e3"], "nsp": "/"},
            {"rooms": [], "except": ["room"], "flags": {}},
        ]
    )
    await redis_client.publish(f"{key}#/#", everyone)
    assert await other.wait_for("e3") == [[]]
    await barrier(a, [member])
    assert member.received("e3") == []


async def test_extension_types_become_plain_values(make_node, make_client, redis_client, key):
    """notepack 3 dates arrive as ISO strings, notepack 2 ArrayBuffers as bytes."""
    a = await make_node()
    client = await make_client(a)
    ts = msgpack.Timestamp(seconds=1700000000, nanoseconds=123_000_000)
    payload = msgpack.packb(
        [
            "emitter",
            {
                "type": 2,
                "data": ["dates", ts, msgpack.ExtType(0, b"ab"), msgpack.ExtType(0, b"\x00")],
                "nsp": "/",
            },
            {},
        ]
    )
    await redis_client.publish(f"{key}#/#", payload)
    assert await client.wait_for("dates") == [["2023-11-14T22:13:20.123Z", b"ab", None]]


async def test_one_request_subscriber_per_server_and_namespace(
    make_node, make_client, redis_client, key
):
    """PUBSUB NUMSUB counts each server once on each namespace's request channel."""
    a, b = await make_node(), await make_node()
    await make_client(a, ["/", "/custom"])
    await make_client(b, ["/custom"])
    counts = dict(await redis_client.pubsub_numsub(f"{key}-request#/#", f"{key}-request#/custom#"))
    assert counts == {f"{key}-request#/#".encode(): 2, f"{key}-request#/custom#".encode(): 2}
    own = dict(await redis_client.pubsub_numsub(f"{key}-response#/#{a.adapter.uid}#"))
    assert own == {f"{key}-response#/#{a.adapter.uid}#".encode(): 1}


async def test_malformed_messages_are_dropped_and_counted(
    make_node, make_client, redis_client, key
):
    """Junk on every channel kind is dropped, counted, and the listener keeps delivering."""
    a = await make_node(max_message_size=4096)
    client = await make_client(a)
    junk = [
        (f"{key}#/#", b"\xc1not msgpack"),
        (f"{key}#/#", msgpack.packb({"not": "a list"})),
        (f"{key}#/#", msgpack.packb(["u", {"type": 2, "data": []}, {}])),
        (f"{key}#/#", msgpack.packb(["u", {"type": 2, "data": ["e"]}, {"rooms": [{"x": 1}]}])),
        (
            f"{key}#/#",
            msgpack.packb(["u", {"type": 2, "data": ["e"], "nsp": "/"}, {}]) + b"x" * 5000,
        ),
        (
            f"{key}#/#",
            msgpack.packb(["u", {"type": 2, "data": ["e", msgpack.ExtType(9, b"")]}, {}]),
        ),
        (f"{key}-request#/#", b"{not json"),
        (f"{key}-request#/#", b'{"type": 2, "opts": {}, "rooms": "nope"}'),
        (f"{key}-request#/#", b"[1, 2]"),
        (f"{key}-response#/#", b"\x93\x01\x02"),
    ]
    for channel, payload in junk:
        await redis_client.publish(channel, payload)
    await redis_client.publish(f"{key}-request#/#", b'{"type": 99}')
    await redis_client.publish("unknown-channel", b"whatever")
    await barrier(a, [client])
    assert a.adapter.stats["dropped_messages"] == len(junk)
    assert a.adapter.stats["handler_errors"] == 0
    assert client.received("e") == []


async def test_room_channels_follow_membership(make_node, make_client, redis_client, key):
    """With multiplexing, a room channel is subscribed while the room has local members."""
    a = await make_node()
    client = await make_client(a)
    sid = client.sid()

    async def channels():
        return {c.decode() for c in await redis_client.pubsub_channels(f"{key}#*")}

    assert await channels() == {f"{key}#/#", f"{key}#/#{sid}#", f"{key}#/custom#"}
    await a.sio.enter_room(sid, "lobby")
    assert f"{key}#/#lobby#" in await channels()
    await a.sio.leave_room(sid, "lobby")
    await wait_until_async(lambda chans: f"{key}#/#lobby#" not in chans, channels)
    await client.aclose()
    await wait_until_async(lambda chans: chans == {f"{key}#/#", f"{key}#/custom#"}, channels)


async def test_without_multiplexing_a_pattern_is_used(make_node, make_client, redis_client, key):
    """with_channel_multiplexing=False PSUBSCRIBEs K#N#* and still filters unknown rooms."""
    a = await make_node(with_channel_multiplexing=False)
    b = await make_node(with_channel_multiplexing=False)
    member, other = await make_client(b), await make_client(b)
    await b.sio.enter_room(member.sid(), "pr")
    assert await redis_client.pubsub_numpat() == 2  # unique patterns: / and /custom
    assert await redis_client.pubsub_channels(f"{key}#/#*") == []
    await a.sio.emit("pe", to="pr")
    assert await member.wait_for("pe") == [[]]
    await a.sio.emit("none", to="no-such-room")
    await barrier(a, [other, member])
    assert other.received("pe") == other.received("none") == []


async def test_room_churn_leaves_only_rooms_with_members(make_node, make_client, redis_client, key):
    """Joining and leaving 10k rooms leaves exactly the occupied room channels subscribed."""
    a = await make_node()
    client = await make_client(a)
    sid = client.sid()
    rooms = [f"room-{i}" for i in range(10_000)]
    await asyncio.gather(*(a.sio.enter_room(sid, room) for room in rooms))
    assert len(await redis_client.pubsub_channels(f"{key}#/#room-*")) == 10_000
    await asyncio.gather(*(a.sio.leave_room(sid, room) for room in rooms[10:]))
    expected = {f"{key}#/#{room}#".encode() for room in rooms[:10]}
    await wait_until_async(
        lambda chans: set(chans) == expected,
        lambda: redis_client.pubsub_channels(f"{key}#/#room-*"),
    )
    await a.sio.emit("still", to="room-3")
    assert await client.wait_for("still") == [[]]


def nested(depth, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def event(*args):
    return msgpack.packb(["u", {"type": 2, "data": ["e", *args], "nsp": "/"}, {}])


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        ("-request#/#", b'{"type":0,"a":' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("#/#", event(nested(990, msgpack.Timestamp(1, 0)))),
        ("#/#", event({b"key": 1})),
        ("#/#", event(nested(990, 1))),
        ("-request#/#", b'{"type":0,"requestId":["x"]}'),
        ("-request#/#", b'{"type":5,"requestId":{"x":1},"opts":{}}'),
        ("-request#/#", b'{"type":2,"opts":{"rooms":[]},"rooms":["\\ud800"]}'),
    ],
    ids=[
        "deep-json",
        "deep-timestamp",
        "bytes-key",
        "deep-data",
        "list-id",
        "dict-id",
        "surrogate",
    ],
)
async def test_hostile_inputs_are_dropped_without_traceback(
    make_node, make_client, redis_client, key, caplog, channel, payload
):
    """Deep nesting, bytes map keys and unhashable request ids are dropped, counted, one line."""
    a = await make_node()
    client = await make_client(a)
    caplog.set_level("WARNING", logger="socketio_redis_async")
    for _ in range(3):
        await redis_client.publish(key + channel, payload)
    await barrier(a, [client])
    assert a.adapter.stats["dropped_messages"] == 3
    assert a.adapter.stats["handler_errors"] == 0
    assert client.received("e") == []
    ours = [r for r in caplog.records if r.name == "socketio_redis_async"]
    assert not any(r.exc_info for r in ours)
    assert len(ours) == 1 and "dropped a malformed message" in ours[0].getMessage()


async def test_pattern_rooms_that_are_not_ints_are_matched_as_strings(
    make_node, make_client, redis_client, key, caplog
):
    """Without multiplexing, room channels such as '²' or 5,000 digits are plain str rooms."""
    a = await make_node(with_channel_multiplexing=False)
    member = await make_client(a)
    await a.sio.enter_room(member.sid(), "²")
    await a.sio.enter_room(member.sid(), 7)
    for room in ("²", "9" * 5000, "007", "7"):
        payload = msgpack.packb(
            ["u", {"type": 2, "data": ["e", room[:5]], "nsp": "/"}, {"rooms": [room]}]
        )
        await redis_client.publish(f"{key}#/#{room}#", payload)
    await redis_client.publish(
        f"{key}#/#7#",
        msgpack.packb(["u", {"type": 2, "data": ["e", 7], "nsp": "/"}, {"rooms": [7]}]),
    )
    await barrier(a, [member])
    assert member.received("e") == [["²"], [7]]
    assert a.adapter.stats["handler_errors"] == 0
    assert not any(r.exc_info for r in caplog.records)
