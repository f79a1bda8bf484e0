"""Both wire formats side by side, without Redis: channel names, capabilities, and every
message encoded by one decoded back into the neutral model (or refused as malformed)."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
import redis.asyncio

from socketio_redis_async import AsyncEmitter, Emitter
from socketio_redis_async._emitter_messages import (
    AsyncPublisher,
    Publisher,
    broadcast_message,
    disconnect_message,
    rooms_message,
    server_side_message,
)
from socketio_redis_async._errors import MalformedMessage
from socketio_redis_async._operator import Selection
from socketio_redis_async._protocol import answers, codec, messages, sharded
from socketio_redis_async._protocol.channels import Kind
from socketio_redis_async._protocol.messages import Broadcast, Request, RequestType
from socketio_redis_async._protocol.wire import ClassicWire, ShardedWire, WireFormat

pytestmark = pytest.mark.unit  # no Redis, no subprocess: tests/conftest.py checks

SID = "s" * 20  # a socket id (Node's test: a string of 20 characters)
UID = "ab12cd34ef56ab78"  # the sender: a sharded-shaped uid, which classic takes too
ME = "0123456789abcdef"  # the server decoding
PACKET = {"type": 2, "data": ["ev"], "nsp": "/"}
WIRES = [pytest.param(ClassicWire(), id="classic"), pytest.param(ShardedWire(), id="sharded")]


def named(value: Any) -> str | None:
    """Test ids: a wire format by its protocol and mode, anything else as pytest does."""
    if isinstance(value, ShardedWire):
        return f"sharded-{value.mode}"
    if isinstance(value, ClassicWire):
        return "classic" if value.multiplexing else "classic-patterns"
    return "payload" if isinstance(value, bytes) else None


def envelope(kind: int, data: dict[str, Any], uid: str = UID, nsp: str = "/") -> bytes:
    """A hand-built sharded message, as JSON."""
    return json.dumps({"uid": uid, "nsp": nsp, "type": kind, "data": data}).encode()


def decode_request(wire: WireFormat, request: dict[str, Any]) -> Request:
    """``request`` (a classic request map) encoded by ``wire`` from UID, decoded by ME."""
    out = wire.request(UID, wire.channels("K", "/"), request)
    decoded = wire.decode(Kind.REQUEST, "/", out.payload, ME)
    assert isinstance(decoded, Request)
    return decoded


# -- channels and capabilities -------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "names"),
    [
        (ClassicWire(), ("K#/n#", "K-request#/n#", "K-response#/n#", "K-response#/n#")),
        (ShardedWire(), ("K#/n#", "K#/n#", "K#/n#", f"K#/n#{UID}#")),
    ],
    ids=named,
)
def test_channels_are_nodes(wire, names):
    """Node's channel names; a non-server requester hears answers on the shared or its own one."""
    chans = wire.channels("K", "/n")
    assert (
        chans.broadcast,
        chans.request,
        chans.response,
        wire.answer_channel(chans, UID),
    ) == names
    assert chans.room("r") == "K#/n#r#"


@pytest.mark.parametrize(
    ("wire", "rooms", "channel"),
    [
        (ClassicWire(), ["r"], "K#/#r#"),
        (ClassicWire(), [SID], f"K#/#{SID}#"),
        (ClassicWire(), [7], "K#/#7#"),
        (ClassicWire(), ["a", "b"], "K#/#"),
        (ShardedWire("dynamic"), ["r"], "K#/#r#"),
        (ShardedWire("dynamic"), [SID], "K#/#"),
        (ShardedWire("dynamic"), [], "K#/#"),
        (ShardedWire("static"), ["r"], "K#/#"),
        (ShardedWire("dynamic-private"), [SID], f"K#/#{SID}#"),
    ],
    ids=named,
)
def test_a_broadcast_goes_where_its_servers_listen(wire, rooms, channel):
    """One room with a channel of its own (per protocol and mode) gets it; else the namespace's."""
    assert wire.broadcast(UID, wire.channels("K", "/"), ["ev"], rooms, [], {}).target == channel
    if len(rooms) == 1:
        assert wire.room_has_channel(rooms[0]) is (channel != "K#/#")


@pytest.mark.parametrize(
    ("wire", "length", "room_is_uid"),
    [(ClassicWire(), 8, True), (ShardedWire(), 16, False)],
    ids=named,
)
def test_new_uids_are_server_uids(wire, length, room_is_uid):
    """A fresh uid is a server's; a sharded room name, matched by the uid pattern too, is not."""
    uid = wire.new_uid()
    assert len(uid) == length and wire.is_server_uid(uid) and uid != wire.new_uid()
    assert not wire.is_server_uid("")
    assert wire.is_server_uid("lobby") is room_is_uid


@pytest.mark.parametrize(
    ("wire", "asks", "single", "multiplexing", "command"),
    [
        (ClassicWire(), set(range(8)), True, True, "PUBLISH"),
        (ClassicWire(multiplexing=False), set(range(8)), True, False, "PUBLISH"),
        (ShardedWire("static"), set(range(2, 8)), False, True, "SPUBLISH"),
    ],
    ids=named,
)
def test_capabilities(wire, asks, single, multiplexing, command):
    """What each protocol can ask, whether rooms have channels, how it publishes."""
    assert wire.requests == asks
    assert (wire.single_socket_forms, wire.multiplexing) == (single, multiplexing)
    assert wire.publish_command == command


SAMPLES = {
    RequestType.SOCKETS: messages.sockets_request(UID, "r", []),
    RequestType.ALL_ROOMS: messages.all_rooms_request(UID, "r"),
    RequestType.REMOTE_JOIN: messages.rooms_request(UID, True, [], [], ["x"]),
    RequestType.REMOTE_LEAVE: messages.rooms_request(UID, False, [], [], ["x"]),
    RequestType.REMOTE_DISCONNECT: messages.disconnect_request(UID, [], [], False),
    RequestType.REMOTE_FETCH: messages.fetch_request(UID, "r", [], []),
    RequestType.SERVER_SIDE_EMIT: messages.server_side_emit_request(UID, ["e"]),
    RequestType.BROADCAST: messages.broadcast_request(UID, "r", "/", ["e"], [], [], {}),
}
SINGLE_SOCKET = [
    messages.socket_rooms_request(UID, "r", True, SID, "x"),
    messages.socket_rooms_request(UID, "r", False, SID, "x"),
    messages.socket_disconnect_request(UID, "r", SID, True),
]


@pytest.mark.parametrize("wire", WIRES)
def test_the_requests_a_wire_lists_are_those_it_can_encode(wire):
    """``requests`` and ``single_socket_forms`` say exactly what ``request`` takes."""
    encodable = set()
    for kind, request in SAMPLES.items():
        try:
            wire.request(UID, wire.channels("K", "/"), request)
        except ValueError:
            continue
        encodable.add(kind)
    assert encodable == wire.requests
    for request in SINGLE_SOCKET:
        try:
            decode_request(wire, request)
        except ValueError:
            assert not wire.single_socket_forms
        else:
            assert wire.single_socket_forms


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (ClassicWire(), ([], ["k\\*#*", "k\\*-request#*", "k\\*-response#*"])),
        (ShardedWire(), (["k*#/n#"], [])),
    ],
    ids=named,
)
def test_monitor_subscribes_what_the_protocol_allows(wire, expected):
    """Classic: escaped patterns over every namespace; sharded (no patterns): the main channel."""
    assert wire.monitor_subscriptions("k*", "/n") == expected


# -- broadcasts ------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("emitter", [False, True], ids=["server", "emitter"])
@pytest.mark.parametrize(
    ("data", "rooms", "except_rooms", "flags"),
    [
        pytest.param(["ev", 1, "two"], [], [], {}, id="everyone"),
        pytest.param(
            ["ev", {"k": [None, True, 1.5]}],
            ["r", 7],
            ["x"],
            {"volatile": True, "compress": False},
            id="rooms-except-flags",
        ),
        pytest.param(["ev", b"\x00\x01", {"b": b"x"}], [SID], [], {}, id="binary"),
    ],
)
def test_broadcasts_round_trip(wire, emitter, data, rooms, except_rooms, flags):
    """A server's or emitter's broadcast decodes as sent, bytes included, with its binary hint."""
    channels = wire.channels("K", "/n")
    if emitter:
        payload = wire.emitter_broadcast(channels, data, rooms, except_rooms, flags).payload
    else:
        payload = wire.broadcast(UID, channels, data, rooms, except_rooms, flags).payload
    sender = messages.EMITTER_UID if emitter else UID
    binary = None if sharded.has_bytes(data) else False
    expected = Broadcast(sender, "/n", data, rooms, except_rooms, flags, binary)
    assert wire.decode(Kind.BROADCAST, "/n", payload, ME) == expected


@pytest.mark.parametrize("wire", WIRES)
def test_own_broadcasts_and_other_namespaces_decode_to_none(wire):
    """This server's own broadcast and another namespace's are not delivered."""
    mine = wire.broadcast(ME, wire.channels("K", "/"), ["ev"], [], [], {}).payload
    assert wire.decode(Kind.BROADCAST, "/", mine, ME) is None
    other = wire.broadcast(UID, wire.channels("K", "/other"), ["ev"], [], [], {}).payload
    assert wire.decode(Kind.BROADCAST, "/", other, ME) is None
    assert isinstance(wire.decode(Kind.BROADCAST, "/other", other, ME), Broadcast)


def test_a_sharded_message_from_this_server_or_another_namespace_is_none():
    """Like Node's ClusterAdapter, a sharded wire ignores its own and other namespaces' messages."""
    wire = ShardedWire()
    request = wire.request(
        ME, wire.channels("K", "/"), messages.fetch_request(ME, "r", [], [])
    ).payload
    assert wire.decode(Kind.REQUEST, "/", request, ME) is None
    assert wire.decode(Kind.REQUEST, "/x", request, UID) is None
    assert isinstance(wire.decode(Kind.REQUEST, "/", request, UID), Request)
    value = answers.answer("r", ME, sockets=[])
    answer = sharded.encode_answer(ME, "/", value, RequestType.REMOTE_FETCH, 1000)[0]
    assert wire.decode(Kind.RESPONSE, "/", answer, ME) is None
    assert wire.decode(Kind.RESPONSE, "/", answer, UID) == value


def test_a_classic_request_from_this_server_is_passed_on():
    """A classic request from this server is passed on: responders filter by type, as in Node."""
    wire = ClassicWire()
    payload = wire.request(
        ME, wire.channels("K", "/"), messages.server_side_emit_request(ME, ["e"])
    ).payload
    request = wire.decode(Kind.REQUEST, "/", payload, ME)
    assert isinstance(request, Request) and request.uid == ME


@pytest.mark.parametrize(
    ("wire", "payload"),
    [
        (ClassicWire(), msgpack.packb([UID, PACKET, {}])),
        (ShardedWire(), envelope(3, {"packet": PACKET, "opts": {}})),
    ],
    ids=named,
)
def test_a_broadcast_with_empty_opts_reaches_everyone(wire, payload):
    """``opts: {}`` selects every socket, as Node's ``new Set(opts.rooms)`` does."""
    expected = Broadcast(UID, "/", ["ev"], [], [], {}, False)
    assert wire.decode(Kind.BROADCAST, "/", payload, ME) == expected


# -- requests --------------------------------------------------------------------------------


REQUESTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "sockets": (
        messages.sockets_request(UID, "r1", ["a", 1]),
        {"request_id": "r1", "rooms": ["a", 1]},
    ),
    "all-rooms": (messages.all_rooms_request(UID, "r1"), {"request_id": "r1"}),
    "join": (
        messages.rooms_request(UID, True, ["a"], ["b"], ["c", 2]),
        {"selector": ["a"], "excluded": ["b"], "rooms": ["c", 2]},
    ),
    "leave": (
        messages.rooms_request(UID, False, [], [SID], ["c"]),
        {"selector": [], "excluded": [SID], "rooms": ["c"]},
    ),
    "disconnect": (
        messages.disconnect_request(UID, [7], [], True),
        {"selector": [7], "excluded": [], "close": True},
    ),
    "fetch": (
        messages.fetch_request(UID, "r1", ["a"], ["b"]),
        {"request_id": "r1", "selector": ["a"], "excluded": ["b"]},
    ),
    "emit": (
        messages.server_side_emit_request(UID, ["ev", {"k": None}]),
        {"data": ["ev", {"k": None}]},
    ),
    "emit-with-ack": (
        messages.server_side_emit_request(UID, ["ev"], "r1"),
        {"request_id": "r1", "data": ["ev"]},
    ),
    "broadcast-with-acks": (
        messages.broadcast_request(UID, "r1", "/", ["ev", b"\x01"], ["a"], ["b"], {"timeout": 5}),
        {"request_id": "r1", "selector": ["a"], "excluded": ["b"], "data": ["ev", b"\x01"]}
        | {"nsp": "/", "flags": {"timeout": 5}},
    ),
    "join-one-socket": (
        messages.socket_rooms_request(UID, "r1", True, SID, "room"),
        {"request_id": "r1", "sid": SID, "rooms": ["room"]},
    ),
    "disconnect-one-socket": (
        messages.socket_disconnect_request(UID, "r1", SID, True),
        {"request_id": "r1", "sid": SID, "close": True},
    ),
}
UNSET: dict[str, Any] = {"request_id": None, "selector": None, "excluded": None, "sid": None}
UNSET |= {"rooms": None, "close": False, "data": None, "nsp": None, "flags": None}


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(("request_", "fields"), list(REQUESTS.values()), ids=list(REQUESTS))
def test_requests_round_trip_or_are_refused(wire, request_, fields):
    """A request decodes to the same Request on both wires; one a wire cannot ask: ValueError."""
    single = "sid" in request_
    if request_["type"] not in wire.requests or (single and not wire.single_socket_forms):
        with pytest.raises(ValueError, match="no equivalent"):
            wire.request(UID, wire.channels("K", "/"), request_)
        return
    decoded = decode_request(wire, request_)
    expected = {**UNSET, "kind": RequestType(request_["type"]), "uid": UID, **fields}
    assert {name: getattr(decoded, name) for name in expected} == expected
    assert not decoded.accepts_zlib


def test_a_classic_join_with_null_opts_is_the_single_socket_form():
    """Null opts is the single-socket form (Node's ``if (request.opts)``), never every socket."""
    raw = {"uid": UID, "requestId": "r1", "type": 2, "opts": None, "sid": SID, "room": "a"}
    request = ClassicWire().decode(Kind.REQUEST, "/", codec.dump_json(raw), ME)
    assert isinstance(request, Request)
    assert (request.sid, request.rooms, request.selector) == (SID, ["a"], None)


C, S = ClassicWire(), ShardedWire()
MALFORMED = {
    "c-no-opts": (C, Kind.BROADCAST, msgpack.packb([UID, PACKET])),
    "c-null-opts": (C, Kind.BROADCAST, msgpack.packb([UID, PACKET, None])),
    "c-list-opts": (C, Kind.BROADCAST, msgpack.packb([UID, PACKET, ["r"]])),
    "c-rooms-not-a-list": (C, Kind.BROADCAST, msgpack.packb([UID, PACKET, {"rooms": "r"}])),
    "c-not-msgpack": (C, Kind.BROADCAST, b"\xc1"),
    "c-fetch-no-opts": (C, Kind.REQUEST, b'{"type":5,"requestId":"r"}'),
    "c-fetch-null-opts": (C, Kind.REQUEST, b'{"type":5,"requestId":"r","opts":null}'),
    "c-acks-no-opts": (
        C,
        Kind.REQUEST,
        codec.pack({"type": 7, "requestId": "r", "packet": PACKET}),
    ),
    "c-str-opts": (C, Kind.REQUEST, b'{"type":2,"opts":"x","rooms":["a"]}'),
    "c-join-rooms-not-a-list": (C, Kind.REQUEST, b'{"type":2,"opts":{},"rooms":"a"}'),
    "c-answer-not-a-map": (C, Kind.RESPONSE, b"[1]"),
    "s-no-opts": (S, Kind.BROADCAST, envelope(3, {"packet": PACKET})),
    "s-null-opts": (S, Kind.BROADCAST, envelope(3, {"packet": PACKET, "opts": None})),
    "s-str-opts": (S, Kind.BROADCAST, envelope(3, {"packet": PACKET, "opts": "x"})),
    "s-no-event": (S, Kind.BROADCAST, envelope(3, {"packet": {"data": []}, "opts": {}})),
    "s-acks-int-id": (S, Kind.REQUEST, envelope(3, {"packet": PACKET, "opts": {}, "requestId": 5})),
    "s-acks-no-opts": (S, Kind.REQUEST, envelope(3, {"packet": PACKET, "requestId": "r"})),
    "s-join-no-opts": (S, Kind.REQUEST, envelope(4, {"rooms": ["a"]})),
    "s-leave-rooms-not-a-list": (S, Kind.REQUEST, envelope(5, {"opts": {}, "rooms": "a"})),
    "s-disconnect-float-room": (S, Kind.REQUEST, envelope(6, {"opts": {"rooms": [1.5]}})),
    "s-fetch-no-opts": (S, Kind.REQUEST, envelope(7, {"requestId": "r"})),
    "s-emit-no-event": (S, Kind.REQUEST, envelope(9, {"packet": []})),
    "s-heartbeat": (S, Kind.REQUEST, envelope(1, {})),
    "s-unknown-type": (S, Kind.REQUEST, envelope(42, {})),
    "s-no-data": (S, Kind.RESPONSE, b'{"uid":"u","nsp":"/","type":8}'),
}


@pytest.mark.parametrize(("wire", "kind", "payload"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_messages_raise(wire, kind, payload):
    """What Node could not process either (opts missing or not a map...) is MalformedMessage."""
    with pytest.raises(MalformedMessage):
        wire.decode(kind, "/", payload, ME)


# -- answers ---------------------------------------------------------------------------------

FETCHED: list[dict[str, Any]] = [{"id": SID, "rooms": [SID, "a"], "data": None, "handshake": {}}]
ACKED = messages.broadcast_request(UID, "r1", "/", ["ev"], [], [], {})


@pytest.mark.parametrize(
    ("wire", "request_", "value", "shared"),
    [
        pytest.param(wire, request_, value, shared, id=f"{wire.name}-{name}")
        for wire in (ClassicWire(), ShardedWire())
        for name, request_, value, shared in [
            (
                "fetch",
                messages.fetch_request(UID, "r1", [], []),
                answers.answer("r1", ME, sockets=FETCHED),
                False,
            ),
            (
                "emit",
                messages.server_side_emit_request(UID, ["ev"], "r1"),
                answers.server_side_answer("r1", ME, [1, "two"]),
                wire.name == "classic",  # Node answers type 6 on the shared channel
            ),
            ("count", ACKED, answers.client_count_answer("r1", ME, 3), False),
            ("ack", ACKED, answers.ack_answer("r1", ME, [b"\x00", "ok"]), False),
            (
                "sockets",
                messages.sockets_request(UID, "r1", []),
                answers.answer("r1", ME, sockets=[SID]),
                False,
            ),
            (
                "all-rooms",
                messages.all_rooms_request(UID, "r1"),
                answers.answer("r1", ME, rooms=["a", 1]),
                False,
            ),
        ]
        if request_["type"] in wire.requests
    ],
    ids=named,
)
def test_answers_round_trip_to_the_requester(wire, request_, value, shared):
    """An answer reaches the requester's channel and decodes to the map the requests layer reads."""
    chans = wire.channels("K", "/")
    request = decode_request(wire, request_)
    channel, payload, error = wire.encode_answer(ME, chans, request, value, 10_000)
    assert error is None
    assert channel == (chans.response if shared else chans.response_for(UID))
    assert wire.decode(Kind.RESPONSE, "/", payload, UID) == value


@pytest.mark.parametrize("wire", WIRES)
def test_a_too_large_answer_is_replaced_by_an_error_the_requester_reads(wire):
    """An answer over the limit keeps its request id, empties its lists and carries the error."""
    request = decode_request(wire, messages.fetch_request(UID, "r1", [], []))
    value = answers.answer("r1", ME, sockets=[{**FETCHED[0], "data": "x" * 500}] * 20)
    _, payload, error = wire.encode_answer(ME, wire.channels("K", "/"), request, value, 1000)
    assert error is not None and "max_answer_size=1000" in error and len(payload) <= 1000
    decoded = wire.decode(Kind.RESPONSE, "/", payload, UID)
    assert decoded == {"requestId": "r1", "uid": ME, "sockets": [], "error": error}


@pytest.mark.parametrize("wire", WIRES)
def test_a_too_large_ack_is_the_callers_data(wire):
    """An ack cannot be shrunk: over the limit it raises ValueError."""
    request = decode_request(wire, ACKED)
    ack = answers.ack_answer("r1", ME, "x" * 2000)
    with pytest.raises(ValueError, match="the ack is"):
        wire.encode_answer(ME, wire.channels("K", "/"), request, ack, 1000)


BIG = answers.answer("r1", ME, sockets=[{**FETCHED[0], "data": "x" * 100}] * 1000)


@pytest.mark.parametrize("zlib", [True, False], ids=["accepts-zlib", "plain"])
def test_classic_answers_are_compressed_for_a_requester_that_accepts_it(zlib):
    """A large classic answer is zlib-compressed only for a requester that sent ``zlib: true``."""
    wire = ClassicWire()
    extra = {answers.ZLIB: True} if zlib else {}
    request = decode_request(wire, {**messages.fetch_request(UID, "r1", [], []), **extra})
    assert request.accepts_zlib is zlib
    _, payload, error = wire.encode_answer(ME, wire.channels("K", "/"), request, BIG, 10**7)
    decoded = wire.decode(Kind.RESPONSE, "/", payload, UID)
    assert error is None and isinstance(decoded, dict)
    if zlib:
        assert set(decoded) == {"requestId", "uid", answers.ZLIB}
        assert len(payload) < len(codec.dump_json(BIG)) // 10
        assert answers.expand(decoded, 10**7) == BIG
    else:
        assert decoded == BIG


def test_a_sharded_requester_never_gets_compressed_answers():
    """Even a sharded request carrying ``zlib: true`` gets a plain answer, which Node reads."""
    wire = ShardedWire()
    forged = envelope(7, {"opts": {}, "requestId": "r1", "zlib": True})
    request = wire.decode(Kind.REQUEST, "/", forged, ME)
    assert isinstance(request, Request) and not request.accepts_zlib
    _, payload, _ = wire.encode_answer(ME, wire.channels("K", "/"), request, BIG, 10**7)
    assert wire.decode(Kind.RESPONSE, "/", payload, UID) == BIG


# -- what emitters publish, and what monitor shows ------------------------------------------


@pytest.mark.parametrize(
    ("wire", "channel"),
    [
        (ClassicWire(), "K#/n#r#"),
        (ShardedWire("dynamic"), "K#/n#r#"),
        (ShardedWire("static"), "K#/n#"),
    ],
    ids=named,
)
def test_emitter_messages_are_the_wires(wire, channel):
    """Emitter broadcasts, socket operations and server-side emits are the wire's, and decode."""
    sel = Selection(nsp="/n", rooms=("r",), except_rooms=(SID,), flags=(("volatile", True),))
    out = broadcast_message(wire, "K", sel, "ev", (1, b"\x02"))
    where, payload = out.target, out.payload
    assert where == channel
    expected = Broadcast("emitter", "/n", ["ev", 1, b"\x02"], ["r"], [SID], {"volatile": True})
    assert wire.decode(Kind.BROADCAST, "/n", payload, ME) == expected
    request_channel = wire.channels("K", "/n").request
    for out, kind in [
        (rooms_message(wire, "K", sel, True, "x"), RequestType.REMOTE_JOIN),
        (disconnect_message(wire, "K", sel, True), RequestType.REMOTE_DISCONNECT),
        (server_side_message(wire, "K", "/n", "job", (1,)), RequestType.SERVER_SIDE_EMIT),
    ]:
        request = wire.decode(Kind.REQUEST, "/n", out.payload, ME)
        assert out.target == request_channel and isinstance(request, Request)
        assert request.kind == kind and request.request_id is None


def test_an_emitter_holds_its_servers_wire_format():
    """An emitter's flags pick its wire; only an SPUBLISH emitter's own client seeks a cluster."""
    classic, sync = Emitter(), Emitter(sharded=True, subscription_mode="static")
    given = AsyncEmitter(client=redis.asyncio.Redis(), sharded=True)
    publishers: list[Publisher | AsyncPublisher] = [classic, sync, given]  # mypy checks
    assert [type(p._wire) for p in publishers] == [ClassicWire, ShardedWire, ShardedWire]
    assert (classic.mode, sync.mode, given.mode) == (None, "static", "dynamic")
    assert (classic._link.checked, sync._link.checked, given._link.checked) == (True, False, True)
    chain = classic.of("/x").to("r")
    assert chain._e is not classic and chain.nsp == "/x" and sync.to("r")._e is sync
    classic.close()
    sync.close()


DESCRIBED = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\xc1", id="not-msgpack"),
    pytest.param(b"{", id="broken-json"),
    pytest.param(b"[1]", id="json-list"),
    pytest.param(b"\x91" * 5000 + b"\x01", id="deep"),
    pytest.param(msgpack.packb([UID, PACKET]), id="classic-no-opts"),
    pytest.param(msgpack.packb([UID, {**PACKET, "data": ["e", b"\x01"]}, {}]), id="classic"),
    pytest.param(
        envelope(3, {"packet": {**PACKET, "data": ["e", {"k": 1}]}, "opts": {}}), id="sharded"
    ),
    pytest.param(envelope(3, {"packet": 7, "opts": 8, "requestId": [1]}), id="sharded-odd"),
    pytest.param(
        msgpack.packb({"uid": UID, "nsp": "/", "type": 12, "data": {"packet": b"x"}}), id="ack"
    ),
]


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("payload", DESCRIBED)
def test_describe_never_raises(wire, payload):
    """``monitor`` summarises anything on any of a namespace's channels as one JSON line."""
    chans = wire.channels("K", "/")
    for channel in (chans.broadcast, chans.room("r"), chans.request, chans.response):
        entry = wire.describe("K", channel, payload)
        assert entry["channel"] == channel
        assert entry["kind"] in {"broadcast", "request", "response", "malformed"}
        assert "\n" not in json.dumps(entry)


@pytest.mark.parametrize(
    ("wire", "channel", "payload", "kind"),
    [
        (ClassicWire(), "K#/#", msgpack.packb([UID, PACKET, {}]), "broadcast"),
        (ClassicWire(), "K#/#", msgpack.packb([UID, PACKET]), "malformed"),
        (ClassicWire(), "K-request#/#", codec.dump_json(REQUESTS["emit"][0]), "request"),
        (ShardedWire(), "K#/#", envelope(3, {"packet": PACKET, "opts": {}}), "broadcast"),
        (ShardedWire(), "K#/#", envelope(9, {"packet": ["ev"]}), "request"),
        (ShardedWire(), "K#/#", b"nope", "malformed"),
    ],
    ids=named,
)
def test_describe_names_what_it_saw(wire, channel, payload, kind):
    """monitor shows a readable message's kind, sender and event, an unreadable one's reason."""
    entry = wire.describe("K", channel, payload)
    assert entry["kind"] == kind
    if kind == "malformed":
        assert entry["error"]
    else:
        assert (entry["uid"], entry["event"]) == (UID, "ev")
