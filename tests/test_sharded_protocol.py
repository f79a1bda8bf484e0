"""The sharded protocol's pure parts: encoding, channels, translation, slot grouping."""

from __future__ import annotations

import asyncio
import json

import msgpack
import pytest

from socketio_redis_async._errors import MalformedMessage
from socketio_redis_async._protocol import messages, sharded
from socketio_redis_async._protocol.messages import RequestType
from socketio_redis_async._transport.shards import SLOTS, parse_slots, slot_of
from socketio_redis_async._transport.subscriptions import Subscriptions

pytestmark = pytest.mark.unit  # no Redis, no subprocess: tests/conftest.py checks

SID = "a" * 20


def test_messages_are_json_unless_a_binary_capable_type_holds_bytes():
    """Node's rule: msgpack only for types 3, 8, 9, 10, 12 whose data has bytes."""
    plain = sharded.encode("u", "/", sharded.MessageType.BROADCAST, {"packet": {"data": ["e", 1]}})
    assert json.loads(plain)["type"] == 3
    binary = sharded.encode(
        "u", "/", sharded.MessageType.BROADCAST, {"packet": {"data": ["e", b"\x00"]}}
    )
    assert msgpack.unpackb(binary)["data"]["packet"]["data"][1] == b"\x00"
    join = sharded.encode("u", "/", sharded.MessageType.SOCKETS_JOIN, {"rooms": [b"\x01"]})
    assert json.loads(join)["data"]["rooms"] == [{"type": "Buffer", "data": [1]}]


@pytest.mark.parametrize(
    ("mode", "rooms", "suffix"),
    [
        ("static", ["room"], ""),
        ("dynamic", ["room"], "room#"),
        ("dynamic", [SID], ""),
        ("dynamic", ["a", "b"], ""),
        ("dynamic", [7], "7#"),
        ("dynamic-private", [SID], f"{SID}#"),
        ("dynamic-private", [], ""),
    ],
)
def test_broadcast_channels_follow_nodes_compute_channel(mode, rooms, suffix):
    """One room gets its own channel in the dynamic modes (socket ids only in -private)."""
    chans = sharded.channels("K", "/n")
    assert sharded.broadcast_channel(chans, mode, rooms) == "K#/n#" + suffix
    assert chans.request == chans.response == "K#/n#"
    assert chans.response_for("ab" * 8) == f"K#/n#{'ab' * 8}#"


def _round_trip(request: dict[str, object]) -> messages.Request:
    parsed = sharded.as_request(sharded.decode(sharded.encode_request("uid", "/", request)))
    assert parsed is not None and parsed.uid == "uid" and not parsed.accepts_zlib
    return parsed


def test_requests_translate_both_ways():
    """Each classic request the adapter sends becomes the sharded one and back, unchanged."""
    join = _round_trip(messages.rooms_request("uid", True, ["a"], ["b"], ["c"]))
    assert (join.kind, join.selector, join.excluded, join.rooms) == (
        RequestType.REMOTE_JOIN,
        ["a"],
        ["b"],
        ["c"],
    )
    leave = _round_trip(messages.rooms_request("uid", False, [], [], ["c"]))
    assert leave.kind == RequestType.REMOTE_LEAVE
    gone = _round_trip(messages.disconnect_request("uid", ["a"], [], True))
    assert (gone.kind, gone.selector, gone.close) == (RequestType.REMOTE_DISCONNECT, ["a"], True)
    fetch = _round_trip(messages.fetch_request("uid", "r1", ["a"], []))
    assert (fetch.kind, fetch.request_id, fetch.selector) == (RequestType.REMOTE_FETCH, "r1", ["a"])
    emit = _round_trip(messages.server_side_emit_request("uid", ["ev", 1], "r2"))
    assert (emit.kind, emit.data, emit.request_id) == (
        RequestType.SERVER_SIDE_EMIT,
        ["ev", 1],
        "r2",
    )
    plain = _round_trip(messages.server_side_emit_request("uid", ["ev"]))
    assert plain.request_id is None
    flags = {"timeout": 5}
    ack = _round_trip(messages.broadcast_request("uid", "r3", "/", ["e"], ["a"], [], flags))
    assert (ack.kind, ack.data, ack.flags, ack.request_id) == (
        RequestType.BROADCAST,
        ["e"],
        flags,
        "r3",
    )
    with pytest.raises(ValueError, match="no equivalent"):
        sharded.encode_request("uid", "/", messages.all_rooms_request("uid", "r"))


def test_answers_translate_both_ways_and_a_too_large_one_carries_an_error():
    """Answers keep their values; over the limit, lists empty and an error the requester raises."""
    sockets: list[dict[str, object]] = [{"id": SID, "rooms": [SID], "data": None, "handshake": {}}]
    value = {"requestId": "r", "sockets": sockets, "uid": "u"}
    payload, error = sharded.encode_answer("u", "/", value, RequestType.REMOTE_FETCH, 10_000)
    msg = sharded.decode(payload)
    assert (msg.kind, error) == (sharded.MessageType.FETCH_SOCKETS_RESPONSE, None)
    assert sharded.as_answer(msg) == {"requestId": "r", "uid": "u", "sockets": sockets}
    small, error = sharded.encode_answer("u", "/", value, RequestType.REMOTE_FETCH, 100)
    assert error is not None and "max_answer_size=100" in error
    answer = sharded.as_answer(sharded.decode(small))
    assert answer is not None and answer["sockets"] == [] and answer["error"] == error
    count = {"type": 8, "requestId": "r", "clientCount": 3, "uid": "u"}
    msg = sharded.decode(sharded.encode_answer("u", "/", count, RequestType.BROADCAST, 1000)[0])
    assert sharded.as_answer(msg) == count
    ack = {"type": 9, "requestId": "r", "packet": b"\x00" * 50, "uid": "u"}
    assert sharded.as_answer(
        sharded.decode(sharded.encode_answer("u", "/", ack, RequestType.BROADCAST, 1000)[0])
    ) == {"type": 9, "requestId": "r", "packet": b"\x00" * 50, "uid": "u"}
    with pytest.raises(ValueError, match="the ack is"):
        sharded.encode_answer("u", "/", ack, RequestType.BROADCAST, 20)


@pytest.mark.parametrize(
    "payload",
    [
        b"{}",
        b'{"uid":"u","nsp":"/","type":3}',
        b'{"uid":"u","nsp":"/","type":3.5,"data":{}}',
        b'{"uid":null,"nsp":"/","type":3,"data":{}}',
        b"\x93\x01\x02\x03",
        b"nope",
    ],
)
def test_an_invalid_envelope_is_malformed(payload):
    """No uid/nsp/int type/data map: MalformedMessage, never another exception."""
    with pytest.raises(MalformedMessage):
        sharded.decode(payload)


@pytest.mark.parametrize(
    "kind, request_id", [(7, {"a": 1}), (3, ["r"]), (9, 7), (8, {}), (10, [1]), (12, 1.5)]
)
def test_a_request_id_that_is_not_a_string_is_malformed(kind, request_id):
    """A request or answer whose requestId is not a string (no server sends one) is
    MalformedMessage, never a TypeError further in."""
    data = {"opts": {}, "requestId": request_id, "packet": {"type": 2, "data": ["ev"]}}
    msg = sharded.decode(msgpack.packb({"uid": "u", "nsp": "/", "type": kind, "data": data}))
    read = sharded.as_answer if kind in sharded.ANSWERS else sharded.as_request
    with pytest.raises(MalformedMessage, match="requestId"):
        read(msg)


def test_the_slot_map_is_read_from_cluster_slots():
    """Every slot gets its master; an empty host means the node that answered."""
    reply = [[0, 99, [b"", 7001, b"id1"], [b"10.0.0.2", 7004, b"id4"]], [100, 16383, [b"h", 7002]]]
    owners = parse_slots(reply, ("127.0.0.1", 7001))
    assert len(owners) == SLOTS
    assert owners[0] == owners[99] == ("127.0.0.1", 7001)
    assert owners[100] == owners[16383] == ("h", 7002)
    assert slot_of("{room}a") == slot_of("{room}b")


def test_sharded_subscriptions_are_sent_one_slot_per_command():
    """SSUBSCRIBEs group channels by slot; an unsubscription this side asked for is told
    apart from one Redis pushed."""

    async def run() -> None:
        subs = Subscriptions("SSUBSCRIBE", "SUNSUBSCRIBE", asyncio.Event(), slot_of)
        names = [f"K#/#room-{i}#" for i in range(50)] + ["{t}a", "{t}b"]
        for name in names:
            subs.want(name)
        commands = subs.plan()
        assert sorted(n for command in commands for n in command[1:]) == sorted(names)
        for command in commands:
            assert command[0] == "SSUBSCRIBE"
            assert len({slot_of(name) for name in command[1:]}) == 1
        assert ["SSUBSCRIBE", "{t}a", "{t}b"] in [[c[0], *sorted(c[1:])] for c in commands]
        subs.unwant("{t}a")
        assert subs.plan() == [["SUNSUBSCRIBE", "{t}a"]]
        assert subs.left("{t}a") is True  # the one asked for
        assert subs.left("{t}b") is False  # pushed by Redis: the slot moved

    asyncio.run(run())
