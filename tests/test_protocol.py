"""The protocol layer, without Redis: one builder per request type, request validation,
the room rule and answers (their bytes, compression, size limit and channel)."""

from __future__ import annotations

import struct

import msgpack
import pytest

from socketio_redis_async._errors import MalformedMessage
from socketio_redis_async._protocol import answers, codec, messages
from socketio_redis_async._protocol.channels import NamespaceChannels
from socketio_redis_async._protocol.messages import RequestType, parse_request
from socketio_redis_async._protocol.rooms import check_room, is_room, wire_room, wire_rooms

pytestmark = pytest.mark.unit  # no Redis, no subprocess: tests/conftest.py checks

R = messages


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (
            R.sockets_request("u", "r1", ["a"]),
            b'{"uid":"u","requestId":"r1","type":0,"rooms":["a"]}',
        ),
        (R.all_rooms_request("u", "r1"), b'{"uid":"u","requestId":"r1","type":1}'),
        (
            R.rooms_request("u", True, ["a"], ["b"], [1]),
            b'{"uid":"u","type":2,"opts":{"rooms":["a"],"except":["b"]},"rooms":[1]}',
        ),
        (
            R.rooms_request(None, False, [], [], ["x"]),
            b'{"type":3,"opts":{"rooms":[],"except":[]},"rooms":["x"]}',
        ),
        (
            R.socket_rooms_request("u", "r1", True, "sid", "room"),
            b'{"uid":"u","requestId":"r1","type":2,"sid":"sid","room":"room"}',
        ),
        (
            R.disconnect_request("u", ["a"], [], True),
            b'{"uid":"u","type":4,"opts":{"rooms":["a"],"except":[]},"close":true}',
        ),
        (
            R.socket_disconnect_request("u", "r1", "sid", False),
            b'{"uid":"u","requestId":"r1","type":4,"sid":"sid","close":false}',
        ),
        (
            R.fetch_request("u", "r1", [], ["b"]),
            b'{"uid":"u","requestId":"r1","type":5,"opts":{"rooms":[],"except":["b"]}}',
        ),
        (
            R.server_side_emit_request("u", ["ev", 1]),
            b'{"uid":"u","type":6,"data":["ev",1]}',
        ),
        (
            R.server_side_emit_request("u", ["ev"], "r1"),
            b'{"uid":"u","requestId":"r1","type":6,"data":["ev"]}',
        ),
    ],
)
def test_each_request_builder_writes_nodes_json(request_, wire):
    """Every JSON request is byte-for-byte what Node's ClusterAdapter publishes."""
    assert messages.encode_request(request_) == wire


def test_broadcast_requests_and_broadcasts_are_msgpack():
    """BROADCAST (7) is msgpack with Node's field order; broadcasts too, the emitter's
    with ``flags`` before ``except`` as @socket.io/redis-emitter writes them."""
    request = R.broadcast_request("u", "r1", "/", ["ev"], ["a"], [], {"timeout": 5})
    assert codec.unpack(messages.encode_request(request)) == {
        "uid": "u",
        "requestId": "r1",
        "type": 7,
        "packet": {"type": 2, "data": ["ev"], "nsp": "/"},
        "opts": {"rooms": ["a"], "except": [], "flags": {"timeout": 5}},
    }
    emitter = codec.unpack(R.encode_emitter_broadcast("/", ["ev"], ["a"], ["b"], {}))
    assert emitter == [
        "emitter",
        {"type": 2, "data": ["ev"], "nsp": "/"},
        {"rooms": ["a"], "flags": {}, "except": ["b"]},
    ]
    assert list(emitter[2]) == ["rooms", "flags", "except"]


def test_parse_request_validates_each_type():
    """Each known type parses into a Request; its fields are checked by one rule."""
    sockets = parse_request({"uid": "u", "requestId": "r", "type": 0, "rooms": ["a", 1]})
    assert sockets is not None and sockets.kind is RequestType.SOCKETS and sockets.rooms == ["a", 1]
    join = parse_request(
        {"uid": "u", "type": 2, "opts": {"rooms": ["a"], "except": ["b"]}, "rooms": ["c"]}
    )
    assert join is not None and (join.selector, join.excluded, join.rooms) == (["a"], ["b"], ["c"])
    legacy = parse_request({"uid": "u", "requestId": "r", "type": 3, "sid": "s", "room": 7})
    assert legacy is not None and legacy.sid == "s" and legacy.rooms == [7]
    emit = parse_request({"type": 6, "data": ["ev", 1]})
    assert emit is not None and emit.uid is None and emit.data == ["ev", 1]
    broadcast = parse_request(
        {
            "uid": "u",
            "requestId": "r",
            "type": 7,
            "packet": {"data": ["ev"], "nsp": "/x"},
            "opts": {},
        }
    )
    assert broadcast is not None and broadcast.nsp == "/x" and broadcast.flags == {}
    zlib = parse_request({"uid": "u", "requestId": "r", "type": 1, "zlib": True})
    assert zlib is not None and zlib.accepts_zlib


@pytest.mark.parametrize(
    "raw",
    [
        {"type": 2, "opts": {}, "rooms": "not a list"},
        {"type": 2, "opts": {}},
        {"type": 4, "opts": {"rooms": [True]}},
        {"type": 5, "opts": {"rooms": [1.5]}},
        {"type": 5, "opts": "x"},
        {"type": 5, "requestId": "r"},
        {"type": 7, "requestId": "r", "packet": {"data": ["ev"]}},
        {"type": 2, "opts": [], "rooms": ["a"]},
        {"type": 6, "data": []},
        {"type": 6, "data": [1]},
        {"type": 7, "requestId": "r", "packet": {"data": "x"}},
        {"type": 0, "rooms": {"a": 1}},
        {"type": 3, "sid": "s", "room": None},
        {"type": 5, "requestId": {"a": 1}, "opts": {}},
        {"type": 1, "requestId": 7},
        {"type": 7, "requestId": ["r"], "packet": {"data": ["ev"]}, "opts": {}},
    ],
)
def test_parse_request_rejects_malformed_fields(raw):
    """A known type with an invalid field is malformed (dropped and counted upstream)."""
    with pytest.raises(MalformedMessage):
        parse_request(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": 8, "requestId": "r", "clientCount": 1},
        {"type": 9, "requestId": "r"},
        {"type": 42},
        {"type": "0"},
        {"type": True},
        {"type": 7, "packet": {"data": ["ev"]}},
        {"type": 4, "sid": 12},
        {"type": 4, "opts": None, "close": True},
    ],
)
def test_parse_request_ignores_what_no_server_answers(raw):
    """Responses, unknown types and requests with nothing to act on parse to None."""
    assert parse_request(raw) is None


def test_one_room_rule_for_applications_and_the_wire():
    """A room is a str or an int: bools and floats are refused with TypeError from the
    application and MalformedMessage from Redis."""
    for good in ("a", "", 0, -3, 2**63):
        assert is_room(good) and check_room(good) == good and wire_room(good) == good
    for bad in (True, 1.5, 2.0, None, b"a", ["a"]):
        assert not is_room(bad)
        with pytest.raises(TypeError, match="a room must be a str or an int"):
            check_room(bad)
        with pytest.raises(MalformedMessage):
            wire_room(bad)
    assert wire_rooms(None) == []
    with pytest.raises(MalformedMessage, match="except holds a non-room"):
        wire_rooms([1.0], "except")


def test_answers_are_plain_small_compressed_large_and_bounded():
    """Small answers are plain JSON; large ones are zlib-compressed for a requester that
    accepts it; one still over the limit becomes an error answer with empty lists."""
    small = answers.answer("r", "u", sockets=["s1"])
    payload, error = answers.encode_answer(small, accepts_zlib=True, limit=1000)
    assert payload == b'{"requestId":"r","sockets":["s1"],"uid":"u"}' and error is None

    big = answers.answer("r", "u", sockets=["x" * 100] * 1000)
    plain, _ = answers.encode_answer(big, accepts_zlib=False, limit=10**6)
    packed, error = answers.encode_answer(big, accepts_zlib=True, limit=10**6)
    assert error is None and len(packed) < len(plain) // 10
    assert answers.expand(codec.decode_request(packed), 10**6) == big

    shaped, error = answers.encode_answer(big, accepts_zlib=False, limit=1000)
    assert error is not None and error.startswith("answer too large")
    assert codec.decode_request(shaped) == {
        "requestId": "r",
        "sockets": [],
        "uid": "u",
        "error": error,
    }

    with pytest.raises(ValueError, match="the ack is"):
        answers.encode_answer(
            answers.ack_answer("r", "u", "x" * 2000), accepts_zlib=True, limit=1000
        )


def test_answers_go_where_the_requester_listens():
    """A signed requester gets its own response channel, except for server-side emits
    (Node answers those on the shared channel); an unsigned one the shared channel."""
    channels = NamespaceChannels.build("k", "/")
    assert answers.channel_for(channels, "abc", answers.answer("r", "u")) == "k-response#/#abc#"
    assert answers.channel_for(channels, None, answers.answer("r", "u")) == "k-response#/#"
    assert answers.channel_for(channels, "a#b", answers.answer("r", "u")) == "k-response#/#"
    emit = answers.server_side_answer("r", "u", 1)
    assert answers.channel_for(channels, "abc", emit) == "k-response#/#"


def test_reading_answers_keeps_only_usable_values():
    """Each reader returns its field's values and raises on an answer without them."""
    assert answers.sids_of({"sockets": ["a", 1, "b"]}) == ["a", "b"]
    assert answers.rooms_of({"rooms": ["a", 2]}) == ["a", 2]
    assert answers.sockets_of({"sockets": [{"id": "a"}, {"id": 3}, "x"]}) == [{"id": "a"}]
    for reader, bad in ((answers.sids_of, {}), (answers.sockets_of, {"sockets": "x"})):
        with pytest.raises((KeyError, TypeError)):
            reader(bad)
    with pytest.raises(MalformedMessage):
        answers.rooms_of({"rooms": [None]})


@pytest.mark.parametrize(
    ("arg", "binary"),
    [
        (struct.unpack(">d", bytes([0x40, 0xC4, 0xC7, 0xD4, 0, 0, 0, 1]))[0], False),
        ({"t": 1.5, "s": "\u0100 \u0107"}, False),
        (b"\x00\x01", None),
        ({"deep": [[b"x"]]}, None),
    ],
)
def test_a_broadcast_is_binary_only_when_it_holds_bytes(arg, binary):
    """A float or text whose bytes look like msgpack bin/ext markers is not binary (the
    fast text path takes it); real bytes are."""
    payload = msgpack.packb(["u", {"type": 2, "data": ["ev", arg], "nsp": "/"}, {}])
    broadcast = messages.decode_broadcast(payload)
    assert broadcast.data == ["ev", arg] and broadcast.binary is binary
