"""The Streams protocol without Redis: Node's stream names and entry format, the streams
wire format, and servers on the in-memory hub reading on from their offset."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from socketio_redis_async._errors import MalformedMessage
from socketio_redis_async._protocol import codec, messages, sharded, streams
from socketio_redis_async._protocol.channels import Kind
from socketio_redis_async._protocol.messages import Broadcast, Request, RequestType
from socketio_redis_async._protocol.streams_wire import StreamsWire
from tests.unit_cluster import UnitCluster, received

pytestmark = [pytest.mark.anyio, pytest.mark.unit]
UID, ME = "0123456789abcdef", "fedcba9876543210"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0), ("/", 47), ("/custom", 1708878944), ("/notifications", -1014064871)],
)
def test_hash_code_is_javas(text, expected):
    """hashCode as Java and Node compute it (int32 wrap-around included)."""
    assert streams.hash_code(text) == expected


def test_hash_code_counts_utf16_code_units():
    """A character outside the BMP counts as its two surrogates, as in JavaScript."""
    assert streams.hash_code("😀") == 0xD83D * 31 + 0xDE00 == 1772899  # Node's value


@pytest.mark.parametrize(
    ("count", "nsp", "stream"),
    [(1, "/x", "s"), (4, "/custom", "s-0"), (4, "/notifications", "s--3"), (3, "/", "s-2")],
    # /custom: 1708878944 % 4 == 0; /notifications: -1014064871 % 4 == -3 in JavaScript
)
def test_streams_are_named_as_node_names_them(count, nsp, stream):
    """One stream, or ``name-<hash % count>`` with JavaScript's sign of the dividend."""
    assert streams.stream_for("s", count, nsp) == stream
    assert stream in streams.all_streams("s", count)


def test_every_stream_a_namespace_may_use_is_read():
    """With n streams, the reader reads -0..-(n-1) and the negative --1..--(n-1)."""
    assert streams.all_streams("s", 3) == ["s-0", "s-1", "s-2", "s--1", "s--2"]
    assert streams.all_streams("s", 1) == ["s"]


@pytest.mark.parametrize(
    ("uid", "kind", "data", "stream"),
    [
        (UID, 3, {"packet": {}, "opts": {}}, True),
        (UID, 3, {"packet": {}, "opts": {}, "requestId": "r"}, False),
        (UID, 4, {}, True),
        (UID, 5, {}, True),
        (UID, 6, {}, True),
        (UID, 7, {}, False),
        (UID, 9, {}, False),
        ("emitter", 9, {}, True),
    ],
)
def test_what_goes_to_the_stream(uid, kind, data, stream):
    """Node's isEphemeral: acked broadcasts, fetches and server-side emits use pub/sub;
    everything an emitter sends goes to the stream."""
    assert streams.goes_to_stream(uid, kind, data) is stream


def test_an_entry_is_uid_nsp_type_data_with_json_data():
    """Plain data is JSON; the fields come in Node's order, every value a string."""
    fields = streams.entry_fields(UID, "/n", 3, {"a": [1, "x"]}, only_plaintext=False)
    assert fields == (b"uid", UID.encode(), b"nsp", b"/n", b"type", b"3", b"data", b'{"a":[1,"x"]}')
    msg = streams.decode_entry(list(fields))
    assert (msg.uid, msg.nsp, msg.kind, msg.data, msg.binary) == (
        UID,
        "/n",
        3,
        {"a": [1, "x"]},
        False,
    )


def test_bytes_make_base64_msgpack_unless_only_plaintext():
    """Data with bytes, of a type that may carry them, is base64(msgpack), else JSON."""
    data = {"packet": {"data": ["ev", b"\x00\x01"]}}
    body = streams.entry_fields(UID, "/", 3, data, only_plaintext=False)[-1]
    assert codec.unpack(base64.b64decode(body)) == data
    assert (
        streams.decode_entry([b"uid", b"u", b"nsp", b"/", b"type", b"3", b"data", body]).data
        == data
    )
    plain = streams.entry_fields(UID, "/", 3, data, only_plaintext=True)[-1]
    assert json.loads(plain)["packet"]["data"][1] == {"type": "Buffer", "data": [0, 1]}
    joined = streams.entry_fields(UID, "/", 4, {"rooms": [b"x"]}, only_plaintext=False)[-1]
    assert joined.startswith(b"{")  # a join never carries bytes in Node's eyes


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ([b"uid", b"u", b"nsp"], "odd number"),
        ([b"nsp", b"/", b"type", b"3"], "needs a uid"),
        ([b"uid", b"u", b"nsp", b"/", b"type", b"three"], "must be text"),
        ([b"uid", b"\xff", b"nsp", b"/", b"type", b"3"], "must be text"),
        ([b"uid", b"u", b"nsp", b"/", b"type", b"3", b"data", b"{nope"], "invalid JSON"),
        ([b"uid", b"u", b"nsp", b"/", b"type", b"3", b"data", b"!!"], "neither JSON nor base64"),
        (
            [
                b"uid",
                b"u",
                b"nsp",
                b"/",
                b"type",
                b"3",
                b"data",
                base64.b64encode(b"\x93\x01\x02\x03"),
            ],
            "must be a map",
        ),
    ],
)
def test_malformed_entries_raise(fields, error):
    """Every malformed entry is a MalformedMessage naming what is wrong."""
    with pytest.raises(MalformedMessage, match=error):
        streams.decode_entry(fields)


def test_an_entry_without_data_is_an_empty_map():
    """``data`` is optional, as in Node (a message without data)."""
    assert streams.decode_entry([b"uid", b"u", b"nsp", b"/", b"type", b"6"]).data == {}


def test_offsets_are_entry_ids():
    """An offset is ``<ms>-<seq>``; anything else is refused with an example."""
    assert streams.check_offset("1700000000000-3") == "1700000000000-3"
    for bad in ("1700000000000", "a-b", 5, "1-2-3"):
        with pytest.raises(ValueError, match="1700000000000-0"):
            streams.check_offset(bad)


# -- the wire format ------------------------------------------------------------------------


def test_broadcasts_are_entries_of_the_namespaces_stream():
    """A broadcast is an XADD on the namespace's stream, trimmed to max_len, and decodes."""
    wire = StreamsWire(stream_name="s", stream_count=4, max_len=50)
    out = wire.broadcast(UID, wire.channels("K", "/notifications"), ["ev", 1], ["r"], ["x"], {})
    assert (out.target, out.max_len) == ("s--3", 50)
    assert out.fields is not None and out.payload == out.fields[-1]
    nsp, msg = wire.decode_entry(list(out.fields), ME)
    assert nsp == "/notifications"
    assert msg == Broadcast(UID, "/notifications", ["ev", 1], ["r"], ["x"], {}, False)
    assert wire.decode_entry(list(out.fields), UID) == ("", None)  # its own: not decoded
    garbled = [*out.fields[:-1], b"{not json"]
    assert wire.decode_entry(garbled, UID) == ("", None)


def test_requests_that_wait_use_pub_sub_as_msgpack():
    """fetch_sockets and server-side emits are msgpack on K#N#; joins are entries."""
    wire = StreamsWire()
    chans = wire.channels("K", "/")
    fetch = wire.request(UID, chans, messages.fetch_request(UID, "r1", ["a"], []))
    assert fetch.fields is None and fetch.target == "K#/#"
    assert codec.unpack(fetch.payload)["type"] == sharded.MessageType.FETCH_SOCKETS
    decoded = wire.decode(Kind.REQUEST, "/", fetch.payload, ME)
    assert isinstance(decoded, Request) and decoded.kind == RequestType.REMOTE_FETCH
    join = wire.request(UID, chans, messages.rooms_request(UID, True, ["a"], [], ["b"]))
    assert join.fields is not None and join.target == "socket.io"
    emitted = wire.request("emitter", chans, messages.server_side_emit_request("emitter", ["e"]))
    assert emitted.fields is not None  # the emitter writes everything to the stream


def test_answers_are_msgpack_on_the_requesters_channel():
    """An answer goes to K#N#<requester># as msgpack and decodes as the answer map."""
    wire = StreamsWire()
    chans = wire.channels("K", "/")
    request = Request(RequestType.SERVER_SIDE_EMIT, uid=UID, request_id="r", data=["e"])
    value: dict[str, Any] = {"requestId": "r", "type": 6, "data": ["ok"]}
    channel, payload, error = wire.encode_answer(ME, chans, request, value, 10_000)
    assert (channel, error) == (f"K#/#{UID}#", None)
    assert wire.decode(Kind.RESPONSE, "/", payload, UID) == {
        "requestId": "r",
        "uid": ME,
        "type": 6,
        "data": ["ok"],
    }


def test_an_answer_in_the_stream_is_malformed():
    """Answers only travel over pub/sub; one found in the stream is dropped."""
    wire = StreamsWire()
    fields = streams.entry_fields(UID, "/", 8, {"requestId": "r", "sockets": []}, False)
    with pytest.raises(MalformedMessage, match="no place in the stream"):
        wire.decode_entry(list(fields), ME)


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("stream_count", 0, ValueError),
        ("stream_count", 1.5, TypeError),
        ("max_len", True, TypeError),
        ("stream_name", "", TypeError),
        ("only_plaintext", 1, TypeError),
    ],
)
def test_bad_options_are_refused(option, value, error):
    """Each option is checked, with a message that says what to pass."""
    with pytest.raises(error, match=option.split("_")[0]):
        StreamsWire(**{option: value})


# -- servers on the in-memory hub ------------------------------------------------------------


async def test_a_server_reads_on_from_its_offset_after_a_lost_link(cluster: UnitCluster):
    """What is appended while a server's link is down reaches its clients, in order,
    once the link is back; nothing is delivered twice."""
    a, b = await cluster.start(2, "streams")
    client = await cluster.connect(b)
    cluster.hub.disconnect(b.transport)
    for i in range(5):
        await a.sio.emit("n", i)
    cluster.hub.reconnect(b.transport)
    await a.sio.emit("n", 5)
    await cluster.flush(client)
    assert received(client, "n") == [[i] for i in range(6)]


async def test_entries_trimmed_before_a_server_read_them_are_counted(cluster: UnitCluster):
    """Past max_len while a server's link is down, the entries it never read are
    counted as lost, and the rest still arrive."""
    a, b = await cluster.start(2, "streams")
    a.engine.wire.max_len = 3  # type: ignore[attr-defined]
    client = await cluster.connect(b)
    cluster.hub.disconnect(b.transport)
    for i in range(10):
        await a.sio.emit("n", i)
    cluster.hub.reconnect(b.transport)
    await cluster.flush(client)
    assert received(client, "n") == [[7], [8], [9]]
    assert b.transport.entries_lost == 7
