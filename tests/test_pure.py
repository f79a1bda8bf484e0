"""Pure code: channel names, the wire codec and option validation (no Redis)."""

from __future__ import annotations

import datetime as dt

import msgpack
import pytest

import socketio_redis_async
from socketio_redis_async import AsyncRedisAdapter
from socketio_redis_async._errors import MalformedMessage
from socketio_redis_async._options import redact_url, resolve_url
from socketio_redis_async._protocol.channels import NamespaceChannels, glob_escape
from socketio_redis_async._protocol.codec import MAX_DEPTH, decode_request, dump_json, pack, unpack
from socketio_redis_async._protocol.messages import Broadcast, decode_broadcast, encode_broadcast
from socketio_redis_async._protocol.rooms import int_room

pytestmark = pytest.mark.unit  # no Redis, no subprocess: tests/conftest.py checks


def test_channel_names_match_node():
    """Channel names are exactly the Node adapter's."""
    ch = NamespaceChannels.build("socket.io", "/chat")
    assert ch.broadcast == "socket.io#/chat#"
    assert ch.room("r") == "socket.io#/chat#r#"
    assert ch.room(12) == "socket.io#/chat#12#"
    assert ch.request == "socket.io-request#/chat#"
    assert ch.response == "socket.io-response#/chat#"
    assert ch.response_for("abc") == "socket.io-response#/chat#abc#"
    assert ch.pattern == "socket.io#/chat#*"
    assert ch.for_rooms(["a"]) == "socket.io#/chat#a#"
    assert ch.for_rooms(["a", "b"]) == ch.for_rooms([]) == "socket.io#/chat#"


def test_room_of_parses_broadcast_channels():
    """room_of extracts the room, '' for the namespace channel, None for foreign ones."""
    ch = NamespaceChannels.build("k", "/")
    assert ch.room_of("k#/#") == ""
    assert ch.room_of("k#/#a#b#") == "a#b"
    assert ch.room_of("k#/chat#x#") is None
    assert ch.room_of("k#/#x") is None


def test_glob_characters_are_escaped_in_patterns():
    """A key with glob characters still gives a pattern that matches only itself."""
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert NamespaceChannels.build("k*", "/").pattern == "k\\*#/#*"


def test_broadcast_round_trip():
    """encode_broadcast and decode_broadcast agree, bytes included."""
    payload = encode_broadcast(
        "u1", "/", ["ev", b"\x00", {"a": [1]}], ["r", 3], ["x"], {"volatile": True}
    )
    assert decode_broadcast(payload) == Broadcast(
        "u1", "/", ["ev", b"\x00", {"a": [1]}], ["r", 3], ["x"], {"volatile": True}
    )


def test_notepack_bytes_decode():
    """A literal notepack.io encoding of an emitter broadcast decodes as Node meant it."""
    # ["emitter", {type: 2, data: ["e", <Buffer 01 02>], nsp: "/"},
    #  {rooms: [], flags: {}, except: []}]
    raw = bytes.fromhex(
        "93a7656d6974746572"
        "83a47479706502a46461746192a165c4020102a36e7370a12f"
        "83a5726f6f6d7390a5666c61677380a6657863657074"
        "90"
    )
    msg = decode_broadcast(raw)
    assert (msg.uid, msg.nsp, msg.data, msg.rooms, msg.except_rooms, msg.flags) == (
        "emitter",
        "/",
        ["e", b"\x01\x02"],
        [],
        [],
        {},
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",
        msgpack.packb("text"),
        msgpack.packb([1, {}, {}]),
        msgpack.packb(["u", {"type": 3, "data": ["e"]}, {}]),
        msgpack.packb(["u", {"type": 2, "data": [1]}, {}]),
        msgpack.packb(["u", {"type": 2, "data": ["e"], "nsp": 5}, {}]),
        msgpack.packb(["u", {"type": 2, "data": ["e"]}, []]),
        msgpack.packb(["u", {"type": 2, "data": ["e"]}]),
        msgpack.packb(["u", {"type": 2, "data": ["e"]}, None]),
        msgpack.packb(["u", {"type": 2, "data": ["e"]}, {"flags": []}]),
        msgpack.packb(["u", {"type": 2, "data": ["e"]}, {"except": [True]}]),
        msgpack.packb(["u", {"type": 2, "data": ["e", msgpack.ExtType(5, b"x")]}, {}]),
    ],
)
def test_malformed_broadcasts_raise(payload):
    """Every malformed broadcast raises MalformedMessage, never anything else."""
    with pytest.raises(MalformedMessage):
        decode_broadcast(payload)


def nested(depth, leaf):
    """``leaf`` inside ``depth`` one-element lists."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def event(*args):
    """A broadcast of event "e" with ``args`` from a server "u", as msgpack."""
    return msgpack.packb(["u", {"type": 2, "data": ["e", *args], "nsp": "/"}, {}])


@pytest.mark.parametrize(
    "payload",
    [
        event(nested(990, msgpack.Timestamp(1, 0))),
        event(nested(990, 1)),
        event(nested(MAX_DEPTH - 2, 1)),  # the message itself is [uid, {data: [...]}]
        event({b"key": 1}),
        event({msgpack.Timestamp(1, 0): 1}),
        event({msgpack.ExtType(0, b"k"): 1}),
    ],
)
def test_deep_or_unencodable_broadcasts_are_malformed(payload):
    """Data nested deeper than MAX_DEPTH, or with map keys JSON cannot hold, is malformed."""
    with pytest.raises(MalformedMessage):
        decode_broadcast(payload)


def test_nesting_up_to_the_limit_is_kept():
    """A broadcast nested exactly MAX_DEPTH deep decodes, dates and numeric keys included."""
    leaf = {1: msgpack.Timestamp(0, 0), 2.5: None, "k": b"x"}
    msg = decode_broadcast(event(nested(MAX_DEPTH - 4, leaf)))
    assert msg.data[1] == nested(
        MAX_DEPTH - 4, {1: "1970-01-01T00:00:00.000Z", 2.5: None, "k": b"x"}
    )


@pytest.mark.parametrize(
    "payload",
    [
        b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
        b'{"requestId":[1],"type":0}',
        b'{"requestId":{"a":1},"type":0}',
        msgpack.packb({"requestId": [1], "type": 0}),
        msgpack.packb({"data": nested(990, msgpack.Timestamp(1, 0))}),
        b'{"type":2,"rooms":["\\ud800"]}',
        b'{"\\uDC00":1}',
    ],
)
def test_malformed_requests_raise(payload):
    """Deep requests and unhashable request ids raise MalformedMessage, never anything else."""
    with pytest.raises(MalformedMessage):
        decode_request(payload)


def test_surrogate_pairs_in_json_are_kept():
    """Escaped surrogate pairs (json.dumps writes emoji so) and a literal \\ud800 decode."""
    assert decode_request(b'{"e":"\\ud83d\\ude00","b":"\\\\ud800"}') == {"e": "😀", "b": "\\ud800"}


def test_int_rooms_in_channel_names():
    """Only what str(int) writes for a 64-bit int names an int room."""
    assert [int_room(t) for t in ("0", "7", "-12", "18446744073709551615")] == [
        0,
        7,
        -12,
        18446744073709551615,
    ]
    for text in ("²", "٣", "007", "-0", "+1", "1 ", "", "-", "9" * 21, "9" * 5000):
        assert int_room(text) is None


def test_timestamps_become_iso_strings():
    """msgpack timestamps (notepack 3 Dates) decode to JavaScript's ISO format."""
    when = dt.datetime(2024, 2, 29, 12, 0, 1, 5000, tzinfo=dt.timezone.utc)
    assert unpack(pack({"d": [when]})) == {"d": ["2024-02-29T12:00:01.005Z"]}


def test_requests_are_json_or_msgpack_by_first_byte():
    """decode_request reads JSON when the payload starts with '{', msgpack otherwise."""
    assert decode_request(b'{"type":1,"requestId":"x"}') == {"type": 1, "requestId": "x"}
    assert decode_request(msgpack.packb({"type": 7})) == {"type": 7}
    for bad in (b"{oops", msgpack.packb([1]), b"\xc1"):
        with pytest.raises(MalformedMessage):
            decode_request(bad)


def test_json_matches_node_stringify():
    """JSON is compact, and bytes become Node's Buffer JSON form."""
    assert (
        dump_json({"a": [1, "b"], "buf": b"\x01\x02"})
        == b'{"a":[1,"b"],"buf":{"type":"Buffer","data":[1,2]}}'
    )
    with pytest.raises(TypeError, match="cannot encode"):
        dump_json({"x": object()})


def test_pack_rejects_unencodable_values():
    """pack raises TypeError that says which types travel."""
    with pytest.raises(TypeError, match="send only dict, list"):
        pack({"x": object()})


def test_url_options():
    """url, host and port resolve to one URL; bad values raise with a hint."""
    assert resolve_url(None, None, None) == "redis://localhost:6379/0"
    assert resolve_url(None, "h", 7000) == "redis://h:7000/0"
    assert resolve_url("rediss://u:p@h:1/2", None, None) == "rediss://u:p@h:1/2"
    with pytest.raises(ValueError, match="either url or host/port"):
        resolve_url("redis://h", "h", None)
    with pytest.raises(ValueError, match="scheme 'http'"):
        resolve_url("http://h", None, None)
    with pytest.raises(TypeError, match="port must be an int"):
        resolve_url(None, "h", "6379")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="between 1 and 65535"):
        resolve_url(None, None, 70000)


def test_passwords_never_appear_in_redacted_urls():
    """redact_url hides the password and keeps the rest."""
    assert redact_url("redis://user:s3cret@host:6380/1") == "redis://user:***@host:6380/1"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": ""}, ValueError, "key must not be empty"),
        ({"key": 5}, TypeError, "key must be a str"),
        ({"requests_timeout": 0}, ValueError, "requests_timeout must be"),
        ({"requests_timeout": "5"}, TypeError, "requests_timeout must be a number"),
        ({"ack_timeout": -1}, ValueError, "ack_timeout"),
        ({"with_channel_multiplexing": 1}, TypeError, "True or False"),
        ({"max_message_size": 0}, ValueError, "max_message_size"),
        ({"pub_client": "redis://x"}, TypeError, "redis.asyncio.Redis"),
        ({"logger": "log"}, TypeError, "logging.Logger"),
        ({"publish_timeout": 0}, ValueError, "publish_timeout must be"),
        ({"publish_timeout": None}, TypeError, "publish_timeout must be a number"),
        ({"on_connection_change": True}, TypeError, "on_connection_change must be a function"),
    ],
)
def test_adapter_options_are_validated(kwargs, error, match):
    """Every bad option raises ValueError or TypeError saying what to pass."""
    with pytest.raises(error, match=match):
        AsyncRedisAdapter(**kwargs)


def test_adapter_properties():
    """The original adapter's properties are there."""
    adapter = AsyncRedisAdapter(host="localhost", port=6380, key="k", requests_timeout=2)
    assert adapter.prefix == "k"
    assert adapter.requests_timeout == 2.0
    assert adapter.host_id == adapter.uid and len(adapter.uid) == 8
    assert "6380" in repr(adapter.pub_client.connection_pool)


def test_public_api_is_sorted_and_complete():
    """__all__ is sorted and lists every public name of the package."""
    names = socketio_redis_async.__all__
    assert names == sorted(names)
    public = {n for n in dir(socketio_redis_async) if not n.startswith("_")} | {"__version__"}
    assert set(names) == public - {"annotations"}


@pytest.mark.parametrize("nsp", ["/", "/chat"])
@pytest.mark.parametrize(
    "data", [["ev"], ["ev", 1, "two", {"k": [None, True, 1.5]}], ["é", "\u2028"]]
)
def test_fast_event_encoding_matches_python_socketio(nsp, data):
    """The adapter's text fast path produces exactly python-socketio's EVENT encoding."""
    from socketio import packet

    from socketio_redis_async._local.delivery import encode_event_text

    expected = packet.Packet(packet.EVENT, data=data, namespace=nsp).encode()
    assert encode_event_text(packet.Packet.json, nsp, data) == expected


def test_health_of_an_adapter_that_never_started():
    """health() works outside the event loop and reports an unstarted adapter as unhealthy."""
    health = AsyncRedisAdapter().health()
    assert not health.healthy and not health.connected
    assert (health.subscribed_channels, health.reconnects, health.publish_failures) == (0, 0, 0)
    assert health.seconds_since_contact is None and health.last_error is None


def test_emitter_publish_timeout_is_validated():
    """Emitters refuse a publish_timeout that is not a positive number of seconds."""
    from socketio_redis_async import AsyncEmitter, Emitter

    with pytest.raises(ValueError, match="publish_timeout must be"):
        Emitter(publish_timeout=0)
    with pytest.raises(TypeError, match="publish_timeout must be a number"):
        AsyncEmitter(publish_timeout="5")  # type: ignore[arg-type]
