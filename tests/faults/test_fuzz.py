"""Hostile input on every channel the adapter listens on, from hypothesis, on real Redis.

One pool of payloads is generated per run (msgpack and JSON values of every shape,
well-formed broadcasts and requests carrying any data, near-valid ones, raw bytes, nesting
far past the limit) and fired at each kind of channel, then a normal broadcast follows as
a sentinel: when a real client receives it, the listener has handled everything before
it. It must not have logged a traceback, must have logged at most one line a second, must
have counted drops, and must still deliver.

Examples are random on each run; ``FUZZ_SEED=<n>`` replays one run and ``FUZZ_EXAMPLES``
sets the pool's size."""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import time
import warnings
from collections.abc import Callable
from typing import Any, cast

import anyio
import msgpack
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisWarning

from socketio_redis_async._errors import MalformedMessage
from socketio_redis_async._protocol.codec import MAX_DEPTH, decode_request, dump_json
from socketio_redis_async._protocol.messages import Broadcast, decode_broadcast
from socketio_redis_async._protocol.wire import ClassicWire, ShardedWire

pytestmark = pytest.mark.anyio

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
"""Generated payloads; each test fires all of them at its kind of channel."""
SEED = int(os.environ.get("FUZZ_SEED", random.randrange(2**32)))

# Plain values. JSON holds no bytes and only str keys, but may hold lone surrogates; msgpack
# holds bytes, timestamps, extension types, 64-bit integers and keys of any scalar type.
json_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=8)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | json_text
mp_plain = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12)
    | st.builds(msgpack.Timestamp, st.integers(-(2**34), 2**34 - 1), st.integers(0, 999_999_999))
    | st.builds(msgpack.ExtType, st.just(0), st.binary(max_size=3))  # notepack ArrayBuffer
)
mp_scalars = mp_plain | st.builds(msgpack.ExtType, st.integers(1, 127), st.binary(max_size=12))


def containers(scalars: st.SearchStrategy[Any], keys: st.SearchStrategy[Any]) -> Any:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=10,
    )


json_values = containers(json_scalars, json_text)
mp_values = containers(mp_scalars, mp_scalars)
mp_plain_values = containers(mp_plain, st.text(max_size=8) | st.integers() | st.floats())


PLAIN_TEXT = st.text(max_size=8)


def envelope(
    values: st.SearchStrategy[Any], valid: bool, text: st.SearchStrategy[str] = PLAIN_TEXT
) -> tuple[Any, Any]:
    """Broadcasts and requests: well-formed ones carrying any data (``valid``), or ones
    where any field may be anything at all. Names and ids are drawn from ``text``."""

    def field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return good if valid else good | values

    room = st.sampled_from(["fuzz-room", 42, "²", "other"]) | text
    rooms = field(st.lists(room | st.integers(-(2**63), 2**63 - 1), max_size=3))
    data = st.builds(lambda ev, rest: [ev, *rest], field(text), st.lists(values))
    packet = st.fixed_dictionaries(
        {"data": field(data)},
        optional={
            "type": field(st.sampled_from([2, 5])),
            "nsp": field(st.sampled_from(["/", "/custom"])),
        },
    )
    opts = st.fixed_dictionaries(
        {},
        optional={
            "rooms": rooms,
            "except": rooms,
            "flags": field(st.dictionaries(text, values, max_size=3)),
        },
    )
    broadcast = st.tuples(field(text), field(packet), field(opts)).map(list)
    request = st.fixed_dictionaries(
        {"type": field(st.sampled_from([0, 1, 2, 3, 5, 6, 7, 8, 9]))},
        optional={
            "uid": field(text),
            "requestId": field(text),
            "opts": field(opts),
            "rooms": rooms,
            "data": field(data),
            "packet": field(packet),
            "sid": field(text),
            "room": field(room),
            "close": field(st.booleans()),
            "sockets": values,
            "clientCount": values,
        },
    )
    return broadcast, request


def harmless(value: Any) -> Any:
    """The one valid request that must not pass: a REMOTE_DISCONNECT of every socket."""
    if isinstance(value, dict) and value.get("type") == 4:
        value["type"] = 40
    return value


def dump(value: Any) -> bytes | None:
    try:
        return json.dumps(value).encode()
    except ValueError:
        return None  # an int of more than 4,300 digits


def pack(value: Any) -> bytes | None:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return None  # more than 511 levels, for instance; deep_payloads builds those


def deep_payloads() -> st.SearchStrategy[bytes]:
    """Values nested from just under the limit to past msgpack's and Python's own limits."""
    depth = st.integers(MAX_DEPTH - 8, MAX_DEPTH + 8) | st.integers(0, 5000)
    leaf_mp = st.sampled_from(
        [
            msgpack.packb(msgpack.Timestamp(1, 0)),
            b"\x01",
            b"\xc4\x01x",  # bytes
            b"\x81\xc4\x01k\x01",  # a bytes key
            b"\xd5\xff\x00\x00",  # a timestamp of the wrong length
            b"\xd4\x80\x00",  # extension type -128
        ]
    )
    mark = "\x00deep\x00"

    def in_envelope(outer: Any, inner: bytes, json_form: bool) -> bytes:
        if json_form:
            return json.dumps(outer).encode().replace(json.dumps(mark).encode(), inner)
        return msgpack.packb(outer).replace(msgpack.packb(mark), inner)

    outers = st.sampled_from(
        [
            ["u", {"type": 2, "data": ["e", mark], "nsp": "/"}, {}],
            {"type": 6, "data": ["e", mark], "requestId": "r"},
            {"type": 3, "opts": {"rooms": [mark]}, "rooms": ["x"]},
            {"type": 9, "requestId": "r", "packet": mark},
            mark,
        ]
    )
    msgpack_deep = st.builds(
        lambda outer, n, opener, leaf: in_envelope(outer, opener * n + leaf, False),
        outers,
        depth,
        st.sampled_from([b"\x91", b"\x81\xa1k", b"\xdc\x00\x01"]),
        leaf_mp,
    )
    json_deep = st.builds(
        lambda outer, n, pair: in_envelope(outer, pair[0] * n + b"1" + pair[1] * n, True),
        outers.filter(lambda o: not isinstance(o, list)),
        depth,
        st.sampled_from([(b"[", b"]"), (b'{"k":', b"}")]),
    )
    return msgpack_deep | json_deep


def encoded(
    strategy: st.SearchStrategy[Any], encode: Callable[[Any], bytes | None]
) -> st.SearchStrategy[bytes]:
    return cast(
        "st.SearchStrategy[bytes]",
        strategy.map(harmless).map(encode).filter(lambda p: p is not None),
    )


good_mp_broadcast, good_mp_request = envelope(mp_plain_values, valid=True)
_, good_json_request = envelope(json_values, valid=True, text=json_text)
payloads = st.one_of(
    encoded(good_mp_broadcast, pack),  # well-formed, any data: reaches delivery
    encoded(good_mp_request, pack),
    encoded(good_json_request, dump),
    encoded(st.one_of(*envelope(mp_values, valid=False), mp_values), pack),
    encoded(st.one_of(*envelope(json_values, valid=False, text=json_text), json_values), dump),
    deep_payloads(),
    st.binary(max_size=64),
)


placeholder = st.fixed_dictionaries(
    {"_placeholder": st.just(True), "num": st.integers(-2, 3) | json_scalars}
)
bridge_messages = st.fixed_dictionaries(
    {
        "method": st.sampled_from(
            ["emit", "callback", "disconnect", "enter_room", "leave_room", "close_room"]
        )
        | json_scalars,
        "host_id": st.just("old-host") | json_scalars,
    },
    optional={
        "event": json_text | json_scalars,
        "data": json_values
        | st.lists(placeholder | json_values, max_size=3).map(lambda a: [a, "AQI="]),
        "binary": st.booleans() | json_scalars,
        "namespace": st.sampled_from(["/", "/custom", "nope"]) | json_scalars,
        "room": json_values | st.sampled_from(["r", 1]),
        "skip_sid": json_values,
        "callback": json_values | st.tuples(json_text, st.just("/"), st.integers()).map(list),
        "sid": json_text | json_scalars,
        "id": json_values | st.integers(),
        "args": json_values,
        "socketio_redis_async": json_scalars,
    },
)
bridge_emits = st.fixed_dictionaries(
    {
        "method": st.just("emit"),
        "host_id": st.just("old-host"),
        "event": st.text(max_size=8),
        "data": st.lists(json_values, max_size=3),
        "room": st.sampled_from([None, "r"]),
    }
)
"""python-socketio AsyncRedisManager messages, well-formed or nearly (bridge mode)."""


def generate(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy`` (hypothesis picks them; nothing is shrunk)."""
    found: list[Any] = []

    @seed(SEED)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HypothesisWarning)  # the strategy's repr is long
        collect()
    return found


@pytest.fixture(scope="module")
def pool() -> list[bytes]:
    """The generated payloads, made once and fired at every kind of channel."""
    return generate(payloads, EXAMPLES)


async def fuzz(
    node: Any,
    client: Any,
    redis_client: Any,
    caplog: Any,
    reliability: Any,
    name: str,
    pool: list[bytes],
    channels: list[bytes],
    delivers: bool = False,
) -> None:
    """Publish every payload of ``pool`` on ``channels`` in turn, then check the adapter."""
    caplog.set_level(logging.WARNING)
    before = node.adapter.stats
    started = time.monotonic()
    for i, payload in enumerate(pool):
        await redis_client.publish(channels[i % len(channels)], payload)
    sentinel = msgpack.packb(
        ["sentinel", {"type": 2, "data": ["fuzz-sentinel", name], "nsp": "/"}, {}]
    )
    await redis_client.publish(f"{node.adapter.prefix}#/#", sentinel)
    assert await client.wait_for("fuzz-sentinel", timeout=60) == [[name]], f"FUZZ_SEED={SEED}"
    elapsed = time.monotonic() - started
    stats = node.adapter.stats
    records = caplog.records
    tracebacks = [r.getMessage() for r in records if r.exc_info or "Traceback" in r.getMessage()]
    assert tracebacks == [], f"FUZZ_SEED={SEED}"
    assert stats["handler_errors"] == before["handler_errors"], f"FUZZ_SEED={SEED}"
    dropped = stats["dropped_messages"] - before["dropped_messages"]
    assert dropped > 0
    ours = [r for r in records if r.name == "socketio_redis_async"]
    assert len(ours) <= 1 + elapsed, "malformed messages are logged at most once a second"
    assert all(len(r.getMessage()) < 500 for r in records)
    assert len(records) == len(ours), [r.getMessage() for r in records if r not in ours]
    delivered = sum(1 for _, event, _ in client.events if event != "fuzz-sentinel")
    if delivers:  # well-formed broadcasts carrying odd data did reach the client
        assert delivered > 0
    reliability.record(
        f"fuzz.{name}.dropped",
        dropped,
        "messages",
        f"fuzz, {name}: of {len(pool)} generated messages, dropped as malformed",
        "0 tracebacks, no handler errors",
    )
    reliability.record(
        f"fuzz.{name}.delivered",
        delivered,
        "events",
        f"fuzz, {name}: generated events delivered to the client",
        "> 0 on broadcast and room channels",
    )
    reliability.record(
        f"fuzz.{name}.log_lines",
        len(ours),
        "lines",
        f"fuzz, {name}: log lines for {len(pool)} messages in {elapsed:.1f} s",
        "≤ 1 per second",
    )


async def test_broadcast_channel(
    make_node, make_client, redis_client, caplog, reliability, key, pool
):
    """Hostile payloads on K#N# are dropped without a traceback; delivery goes on."""
    node = await make_node()
    client = await make_client(node)
    await fuzz(
        node,
        client,
        redis_client,
        caplog,
        reliability,
        "broadcast",
        pool,
        [f"{key}#/#".encode()],
    )


async def test_room_channels(make_node, make_client, redis_client, caplog, reliability, key, pool):
    """Hostile payloads on subscribed room channels (a room, an int room, a sid)."""
    node = await make_node()
    client = await make_client(node)
    await node.sio.enter_room(client.sid(), "fuzz-room")
    await node.sio.enter_room(client.sid(), 42)
    names = [f"{key}#/#{room}#".encode() for room in ("fuzz-room", 42, client.sid())]
    await fuzz(
        node,
        client,
        redis_client,
        caplog,
        reliability,
        "room channels",
        pool,
        names,
    )


async def test_pattern_channels(
    make_node, make_client, redis_client, caplog, reliability, key, pool
):
    """Without multiplexing, any K#N#<room># reaches the pattern: odd rooms included."""
    node = await make_node(with_channel_multiplexing=False)
    client = await make_client(node)
    await node.sio.enter_room(client.sid(), "fuzz-room")
    await node.sio.enter_room(client.sid(), 42)
    await node.sio.enter_room(client.sid(), "²")
    mine = [f"{key}#/#{r}#".encode() for r in ("fuzz-room", "42", "²", client.sid(), "")]
    odd = ["042", "-0", "٤٢", "9" * 5000, "#", "*", "fuzz-room#", "42#x"]
    room = st.sampled_from(odd) | st.text(max_size=10) | st.integers().map(str)
    channel = room.map(lambda r: f"{key}#/#{r}#".encode("utf-8", "surrogatepass"))
    raw = st.binary(max_size=10).map(lambda r: f"{key}#/#".encode() + r)
    generated = await anyio.to_thread.run_sync(generate, channel | raw, 300)
    # Every other message goes to a room this server has, the rest anywhere.
    names = [name for pair in zip(itertools.cycle(mine), generated) for name in pair]
    await fuzz(
        node,
        client,
        redis_client,
        caplog,
        reliability,
        "pattern channels",
        pool,
        names,
    )


async def test_request_channel(
    make_node, make_client, redis_client, caplog, reliability, key, pool
):
    """Hostile requests of every type on K-request#N# are dropped or answered, never crash."""
    node = await make_node()
    client = await make_client(node)
    await node.sio.enter_room(client.sid(), "fuzz-room")
    await fuzz(
        node,
        client,
        redis_client,
        caplog,
        reliability,
        "request channel",
        pool,
        [f"{key}-request#/#".encode()],
    )


async def test_response_channels(
    make_node, make_client, redis_client, caplog, reliability, key, pool
):
    """Hostile answers on the generic and the server's own response channel."""
    node = await make_node()
    client = await make_client(node)
    names = [f"{key}-response#/#".encode(), f"{key}-response#/#{node.adapter.uid}#".encode()]
    await fuzz(
        node,
        client,
        redis_client,
        caplog,
        reliability,
        "response channels",
        pool,
        names,
    )


async def test_bridge_channel(make_node, make_client, redis_client, caplog, reliability, key, pool):
    """Hostile and near-valid AsyncRedisManager messages on the bridge channel."""
    channel = f"{key}-bridge"
    node = await make_node(bridge_channel=channel)
    client = await make_client(node)
    await node.sio.enter_room(client.sid(), "r")
    strategy = encoded(bridge_messages | bridge_emits, dump)
    shaped = await anyio.to_thread.run_sync(generate, strategy, 600)
    await fuzz(
        node,
        client,
        redis_client,
        caplog,
        reliability,
        "bridge channel",
        [p for pair in zip(pool, shaped, strict=False) for p in pair] + pool[len(shaped) :],
        [channel.encode()],
        delivers=True,
    )


async def test_a_burst_of_deep_timestamps_costs_little(
    make_node, make_client, redis_client, caplog, reliability, key
):
    """200 timestamps nested 990 deep (1 KB each) are dropped with one log line a second."""
    node = await make_node()
    client = await make_client(node)
    deep = b"\x91" * 990 + msgpack.packb(msgpack.Timestamp(1, 0))
    payload = msgpack.packb(["u", {"type": 2, "data": ["e", "mark"], "nsp": "/"}, {}]).replace(
        msgpack.packb("mark"), deep
    )
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    for _ in range(200):
        await redis_client.publish(f"{key}#/#", payload)
    sentinel = msgpack.packb(["s", {"type": 2, "data": ["fuzz-sentinel"], "nsp": "/"}, {}])
    await redis_client.publish(f"{key}#/#", sentinel)
    await client.wait_for("fuzz-sentinel")
    elapsed = time.monotonic() - started
    assert node.adapter.stats["dropped_messages"] == 200
    assert not any(r.exc_info for r in caplog.records)
    log_bytes = sum(len(r.getMessage()) for r in caplog.records)
    assert len(caplog.records) <= 1 + elapsed
    reliability.record(
        "fuzz.deep_timestamps.log_bytes",
        log_bytes,
        "bytes",
        f"log written for 200 timestamps nested 990 deep ({len(payload)} bytes each)",
        "one line a second (before: 38.7 MB)",
    )
    reliability.record(
        "fuzz.deep_timestamps.seconds",
        round(elapsed, 3),
        "s",
        "from the first of those 200 messages to a broadcast after them being delivered",
        "– (before: 3.4 s of stalled listener)",
    )


@pytest.mark.parametrize("wire", [ClassicWire(), ShardedWire()], ids=["classic", "sharded"])
def test_monitor_describes_every_payload(pool, wire):
    """Each wire's monitor describe() summarises every generated payload as one JSON line."""
    kinds = set()
    for channel in ("k#/#", "k#/#room#", "k-request#/#", "k-response#/#", "k-response#/#uid#"):
        for payload in pool:
            entry = wire.describe("k", channel, payload)
            line = json.dumps(entry)
            assert "\n" not in line and entry["channel"] == channel
            kinds.add(entry["kind"])
    assert "malformed" in kinds
    if wire.name == "classic":  # the pool holds classic messages of every kind
        assert kinds == {"broadcast", "request", "response", "malformed"}


def test_whatever_decodes_can_be_delivered(pool):
    """Every payload either raises MalformedMessage or decodes to data that can be sent on."""
    from socketio import packet

    from socketio_redis_async._local.delivery import encode_event_text

    decoded = 0
    for payload in pool:
        for decode in (decode_broadcast, decode_request):
            try:
                msg = decode(payload)
            except MalformedMessage:
                continue
            decoded += 1
            if isinstance(msg, Broadcast):
                if msg.binary is False:
                    encode_event_text(packet.Packet.json, msg.nsp, msg.data)
                packet.Packet(packet.EVENT, data=msg.data, namespace=msg.nsp).encode()
            else:
                dump_json(msg)
                # Every str is valid Unicode: rooms become channel names, sent as UTF-8.
                json.dumps(msg, ensure_ascii=False, default=repr).encode()
    assert decoded > 0
