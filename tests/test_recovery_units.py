"""Connection-state recovery's pure parts: the session format (Node's), offsets, the
replay rule, the option, and the checks and hook made when the adapter is attached."""

from __future__ import annotations

import base64
from typing import Any

import msgpack
import pytest
import socketio
from socketio import packet

from socketio_redis_async import AsyncStreamsRedisAdapter, ConnectionStateRecovery
from socketio_redis_async._errors import MalformedMessage
from socketio_redis_async._protocol.messages import Broadcast
from socketio_redis_async._protocol.rooms import Room
from socketio_redis_async._recovery import host
from socketio_redis_async._recovery.sessions import (
    Session,
    decode_session,
    encode_session,
    is_offset,
    new_pid,
    offset_key,
    replays_to,
    with_offset,
)

pytestmark = pytest.mark.unit


def node_value(session: Any) -> bytes:
    """A session as Node's streams adapter stores it: base64(msgpack)."""
    return base64.b64encode(msgpack.packb(session))


def test_a_session_round_trips_and_reads_as_node_writes_it():
    """Python's value decodes to the same session; Node's (no offset) decodes too."""
    session = Session("s1", "p1", ["s1", "room", 7], {"user": "u1"}, "12-3")
    assert decode_session(encode_session(session)) == session
    node = decode_session(node_value({"sid": "s", "pid": "p", "rooms": ["s"], "data": {}}))
    assert (node.sid, node.pid, node.rooms, node.data, node.offset) == ("s", "p", ["s"], {}, None)
    stored = msgpack.unpackb(base64.b64decode(encode_session(session)))
    assert {k: stored[k] for k in ("sid", "pid", "rooms", "data")} == {
        "sid": "s1",
        "pid": "p1",
        "rooms": ["s1", "room", 7],
        "data": {"user": "u1"},
    }


def test_fields_another_server_stored_are_kept():
    """Unknown fields survive a decode and a re-encode."""
    session = decode_session(node_value({"sid": "s", "pid": "p", "rooms": [], "x": 1}))
    assert session.extra == {"x": 1}
    assert decode_session(encode_session(session)).extra == {"x": 1}


@pytest.mark.parametrize(
    "raw",
    [
        b"not base64!",
        base64.b64encode(b"\xc1"),
        node_value([1]),
        node_value({"sid": "s"}),
        node_value({"sid": "s", "pid": "p", "rooms": [1.5]}),
    ],
    ids=["base64", "msgpack", "not-a-map", "missing", "bad-room"],
)
def test_a_corrupt_session_is_malformed(raw):
    """Whatever is not a session raises MalformedMessage (the restore fails cleanly)."""
    with pytest.raises(MalformedMessage):
        decode_session(raw)


def test_data_that_cannot_be_stored_raises_type_error():
    """Socket data msgpack cannot carry is refused with a TypeError saying what can."""
    with pytest.raises(TypeError, match="msgpack-able"):
        encode_session(Session("s", "p", [], {1, 2}))


def test_offsets_are_stream_entry_ids():
    """Only ``<ms>-<seq>`` strings are offsets; they compare as numbers."""
    assert is_offset("1796643570513-1") and is_offset("0-0")
    assert not any(map(is_offset, ["", "1", "1-", "-1", "a-1", "1-1-1", 5, None, "1 -1"]))
    assert offset_key("10-2") > offset_key("9-99") and offset_key(b"3-0") == (3, 0)
    assert with_offset(["e", 1], b"5-1") == ["e", 1, "5-1"]
    assert len(new_pid()) == 20 and new_pid() != new_pid()


def broadcast(rooms=(), excepted=(), nsp="/", **flags: Any) -> Broadcast:
    return Broadcast("u", nsp, ["e"], list(rooms), list(excepted), flags)


def test_the_replay_rule_is_rooms_and_except_as_sent():
    """A socket gets back broadcasts to all or to one of its rooms, never excepted ones,
    other namespaces' or volatile ones."""
    rooms: set[Room] = {"sid", "room1"}
    assert replays_to(broadcast(), "/", rooms)
    assert replays_to(broadcast(["room1", "x"]), "/", rooms)
    assert replays_to(broadcast(["sid"]), "/", rooms)
    assert not replays_to(broadcast(["room2"]), "/", rooms)
    assert not replays_to(broadcast([], ["room1"]), "/", rooms)
    assert not replays_to(broadcast(nsp="/other"), "/", rooms)
    assert not replays_to(broadcast(volatile=True), "/", rooms)


def test_the_option_says_what_to_pass():
    """Bad windows raise TypeError/ValueError; the window is given to Redis in ms."""
    assert ConnectionStateRecovery().window_ms == 120_000
    assert ConnectionStateRecovery(0.0005).window_ms == 1
    for bad in ("120", True, None):
        with pytest.raises(TypeError, match="number of seconds"):
            ConnectionStateRecovery(bad)  # type: ignore[arg-type]
    for window in (0, -1, float("inf"), float("nan"), 31 * 24 * 3600):
        with pytest.raises(ValueError, match="max_disconnection_duration"):
            ConnectionStateRecovery(window)
    with pytest.raises(TypeError, match="skip_middlewares"):
        ConnectionStateRecovery(skip_middlewares="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ConnectionStateRecovery"):
        AsyncStreamsRedisAdapter(connection_state_recovery={"max": 1})  # type: ignore[arg-type]


def test_versions_the_hooks_were_not_verified_on_are_refused():
    """check_versions accepts the verified ranges and names the fix for any other."""
    verified = {"python-socketio": "5.18.1", "python-engineio": "4.15.1"}
    host.check_versions(verified.__getitem__)
    for name, found in (("python-socketio", "5.19.0"), ("python-engineio", "5.0.0")):
        with pytest.raises(RuntimeError, match=f"{name}.*not {found}.*pip install"):
            host.check_versions({**verified, name: found}.__getitem__)


def test_the_adapter_refuses_an_unverified_host_when_attached(monkeypatch):
    """With recovery on, AsyncServer(client_manager=...) itself raises on a host version
    the hooks do not fit, not the first reconnect."""
    monkeypatch.setitem(host.VERIFIED, "python-socketio", ((4, 0), (4, 1)))
    adapter = AsyncStreamsRedisAdapter(connection_state_recovery=ConnectionStateRecovery())
    with pytest.raises(RuntimeError, match="verified on 4.0.x"):
        socketio.AsyncServer(client_manager=adapter)


def test_connect_answers_carry_the_pid_and_nothing_else_changes():
    """The CONNECT answer of a known socket gets its pid; other packets, decoded ones and
    unknown sockets' answers are python-socketio's own."""
    sio = socketio.AsyncServer()
    host.add_pids(sio, lambda nsp, sid: "P" if (nsp, sid) == ("/chat", "s1") else None)
    host.add_pids(sio, lambda nsp, sid: "twice")  # idempotent
    make = sio.packet_class
    assert make(packet.CONNECT, {"sid": "s1"}, namespace="/chat").encode() == (
        '0/chat,{"sid":"s1","pid":"P"}'
    )
    assert make(packet.CONNECT, {"sid": "s2"}, namespace="/chat").data == {"sid": "s2"}
    assert make(packet.EVENT, ["e", {"sid": "s1"}], namespace="/chat").data == ["e", {"sid": "s1"}]
    decoded = make(encoded_packet='0/chat,{"sid":"s1"}')
    assert decoded.data == {"sid": "s1"}
    assert make.plain is packet.Packet
