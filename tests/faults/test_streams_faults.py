"""AsyncStreamsRedisAdapter under faults: Redis restarted, frozen and failed over while
numbered broadcasts flow, a server process SIGKILLed, hostile entries on the stream.

Real redis-server, Sentinel and server processes, real python-socketio clients. Server A
sends the numbers 0, 1, 2... (event ``n``) one after another; a send that raises
PublishError is retried, as an application must (PublishError means "not known to be
delivered", not "not delivered"). A client of server B records what arrives. Every test
asserts what the adapter promises (at-least-once, in order, resuming from the last entry
read) and records what it measured: retries, duplicates, losses, the time to resume.
"""

from __future__ import annotations

import base64
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import msgpack
import pytest
import redis.asyncio
from hypothesis import strategies as st

from socketio_redis_async import AsyncEmitter, PublishError
from socketio_redis_async._transport.backoff import BACKOFF_CAP, GRACE
from tests.faults.test_fuzz import SEED, generate, json_values, mp_plain_values, mp_values
from tests.helpers import (
    Client,
    FaultyRedis,
    Node,
    ServerProcess,
    start_server_process,
    wait_until,
)
from tests.sentinel import SentinelTopology
from tests.streams import kill_readers, reader_clients, reader_stalled, start_streams

pytestmark = pytest.mark.anyio

SLACK = 2.0  # seconds allowed past a bound (scheduling on a loaded 2-core machine)
RETRY_PAUSE = 0.05  # between a failed send and its retry
AOF = ("--appendonly", "yes", "--appendfsync", "always")


# -- numbered broadcasts ---------------------------------------------------------------------


@dataclass
class Sender:
    """Sends ``("n", i)`` from ``node`` for i = 0, 1, 2..., each after the previous one
    returned; a send that raises PublishError is retried until it returns."""

    node: Node
    pace: float
    acked: dict[int, float] = field(default_factory=dict)
    """Number -> when its send returned (Redis acknowledged the XADD)."""
    retried: dict[int, int] = field(default_factory=dict)
    """Number -> how many of its sends raised PublishError."""
    longest: float = 0.0
    """The longest time one number took to be sent, retries included."""

    @property
    def retries(self) -> int:
        return sum(self.retried.values())

    async def send(self, count: int | None = None, stop: anyio.Event | None = None) -> None:
        i = 0
        while (count is None or i < count) and not (stop is not None and stop.is_set()):
            started = time.monotonic()
            while True:
                try:
                    await self.node.sio.emit("n", i)
                    break
                except PublishError:
                    self.retried[i] = self.retried.get(i, 0) + 1
                    await anyio.sleep(RETRY_PAUSE)
            now = time.monotonic()
            self.acked[i] = now
            self.longest = max(self.longest, now - started)
            i += 1
            await anyio.sleep(self.pace)

    def sent_after(self, moment: float) -> set[int]:
        return {n for n, t in self.acked.items() if t > moment}


def numbers(client: Client) -> list[int]:
    """The numbers ``client`` received, in the order they arrived."""
    return [args[0] for args in client.received("n")]


@dataclass
class Tally:
    """What a client received of the numbers ``expected``."""

    missing: list[int]
    duplicated: dict[int, int]
    """Number -> how many extra copies arrived."""
    out_of_order: int
    """Numbers whose first copy arrived after the first copy of a larger number."""

    @property
    def duplicates(self) -> int:
        return sum(self.duplicated.values())


def tally(got: list[int], expected: Iterable[int]) -> Tally:
    seen: dict[int, int] = {}
    out_of_order, highest = 0, -1
    for n in got:
        seen[n] = seen.get(n, 0) + 1
        if seen[n] == 1:
            out_of_order += n < highest
            highest = max(highest, n)
    missing = sorted(set(expected) - set(seen))
    return Tally(missing, {n: c - 1 for n, c in seen.items() if c > 1}, out_of_order)


async def barrier(sender: Node, client: Client, timeout: float = 20) -> None:
    """A last broadcast through the stream: once it arrives, everything before it has."""
    count = len(client.received("marker"))
    await sender.sio.emit("marker")
    await client.wait_for("marker", count + 1, timeout=timeout)


def record_outcome(
    reliability: Any, key: str, what: str, sender: Sender, outcome: Tally, bound: str
) -> None:
    reliability.record(
        f"{key}.retries",
        sender.retries,
        "sends",
        f"{what}: sends that raised PublishError and were retried "
        f"({len(sender.retried)} numbers of {len(sender.acked)})",
        "measured; each is retried until Redis acknowledges it",
    )
    reliability.record(
        f"{key}.duplicates",
        outcome.duplicates,
        "messages",
        f"{what}: numbers delivered twice (a retried send whose first XADD Redis applied)",
        bound,
    )


# -- 1. Redis restarted with its data ---------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["kill -9", "shutdown"])
async def test_redis_restarted_with_its_data_loses_nothing(how, key, reliability):
    """Redis (appendfsync always) down 1 s mid-way through 500 sends: B gets every number
    in order, twice only if its send was retried, and resumes within bound."""
    total, outage = 500, 1.0
    with FaultyRedis(extra_args=AOF) as server:
        b = await start_streams(server.url, key)
        a = await start_streams(server.url, key)
        client = await Client().connect(b)
        sender = Sender(a, pace=0.01)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sender.send, total)
                await wait_until(lambda: len(numbers(client)) >= 100, timeout=30)
                server.kill() if how == "kill -9" else server.stop()
                await anyio.sleep(outage)  # the fault itself: Redis is down
                server.start()
                started_at = time.monotonic()
                await wait_until(
                    lambda: bool(sender.sent_after(started_at) & set(numbers(client))), timeout=30
                )
                resumed = time.monotonic() - started_at
            await barrier(a, client)
            outcome = tally(numbers(client), range(total))
            stats = b.adapter.stats
        finally:
            await client.aclose()
            await a.aclose()
            await b.aclose()
    assert outcome.missing == []
    assert outcome.out_of_order == 0
    assert set(outcome.duplicated) <= set(sender.retried), "a number came twice unasked"
    assert sender.retries > 0, "sends while Redis was down should have raised PublishError"
    assert stats["stream_gaps"] == stats["stream_entries_lost"] == 0
    assert stats["stream_reconnects"] >= 1
    bound = 2 * BACKOFF_CAP + GRACE + SLACK
    assert resumed <= bound
    name = "streams.restart." + how.replace(" ", "")
    what = f"Streams adapter, Redis {how} (appendfsync always), {outage:g} s down, 500 sends"
    reliability.record(
        f"{name}.resume",
        resumed,
        "s",
        f"{what}: restart until a number sent after it reached a client on another server",
        f"2 x reconnect backoff cap ({BACKOFF_CAP:g} s) + {GRACE:g} s + {SLACK:g} s",
    )
    reliability.record(
        f"{name}.lost",
        len(outcome.missing) + outcome.out_of_order,
        "messages",
        f"{what}: numbers lost or out of order at the other server",
        "0: every number, in order",
    )
    record_outcome(reliability, name, what, sender, outcome, "only numbers whose send was retried")


# -- 2. Redis frozen --------------------------------------------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.parametrize("publish_timeout", [5.0, 1.0], ids=["sends-wait", "sends-time-out"])
async def test_frozen_redis_delivers_every_broadcast_in_order(
    publish_timeout, own_redis, key, reliability
):
    """Redis frozen 2 s mid-way through the sends: B's reader notices, reconnects and reads
    on from its offset; every number arrives in order, twice only if its send was retried."""
    total, freeze, block, timeout = 300, 2.0, 0.25, 1.0
    changes: list[tuple[float, bool]] = []
    b = await start_streams(
        own_redis.url,
        key,
        block_time=block,
        requests_timeout=timeout,
        on_connection_change=lambda up: changes.append((time.monotonic(), up)),
    )
    a = await start_streams(own_redis.url, key, publish_timeout=publish_timeout)
    client = await Client().connect(b)
    sender = Sender(a, pace=0.01)
    try:
        await wait_until(lambda: bool(changes) and changes[-1][1], timeout=10)
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender.send, total)
            await wait_until(lambda: len(numbers(client)) >= 50, timeout=30)
            frozen_at = time.monotonic()
            own_redis.freeze()
            try:
                await anyio.sleep(freeze)  # the fault itself: Redis answers nothing
            finally:
                own_redis.thaw()
            thawed_at = time.monotonic()
            await wait_until(
                lambda: bool(sender.sent_after(thawed_at) & set(numbers(client))), timeout=30
            )
            resumed = time.monotonic() - thawed_at
            noticed = [t for t, up in changes if not up and t > frozen_at]
            assert noticed, "B's link never went down during the freeze"
            await wait_until(lambda: changes[-1][1] and changes[-1][0] > thawed_at, timeout=10)
            back = changes[-1][0] - thawed_at
        await barrier(a, client)
        outcome = tally(numbers(client), range(total))
        stats = b.adapter.stats
    finally:
        await client.aclose()
        await a.aclose()
        await b.aclose()
    assert outcome.missing == []
    assert outcome.out_of_order == 0
    assert set(outcome.duplicated) <= set(sender.retried), "a number came twice unasked"
    assert noticed[0] - frozen_at <= block + timeout + SLACK
    assert stats["stream_reconnects"] >= 1
    assert stats["stream_gaps"] == stats["stream_entries_lost"] == 0
    if publish_timeout > freeze + SLACK:
        assert sender.retries == 0 and outcome.duplicates == 0
        assert sender.longest <= freeze + SLACK
    else:
        assert sender.retries > 0
        assert sender.longest <= freeze + publish_timeout + SLACK
    name = f"streams.freeze.timeout{publish_timeout:g}s"
    what = f"Streams adapter, Redis frozen {freeze:g} s, publish_timeout {publish_timeout:g} s"
    reliability.record(
        f"{name}.longest_send",
        sender.longest,
        "s",
        f"{what}: the longest send of one number, retries included",
        f"freeze + {'' if publish_timeout > freeze + SLACK else 'publish_timeout + '}{SLACK:g} s",
    )
    reliability.record(
        f"{name}.detection",
        noticed[0] - frozen_at,
        "s",
        f"{what}: freeze until B's reader reported its link down (block_time {block:g} s, "
        f"requests_timeout {timeout:g} s)",
        f"block_time + requests_timeout + {SLACK:g} s",
    )
    reliability.record(
        f"{name}.resume",
        resumed,
        "s",
        f"{what}: thaw until a number sent after it reached B's client ({back:.2f} s until "
        f"B's link was up again, {stats['stream_reconnects']} reader reconnects)",
    )
    bound = (
        "0 (no send fails)"
        if publish_timeout > freeze + SLACK
        else "measured: only numbers whose send was retried"
    )
    record_outcome(reliability, name, what, sender, outcome, bound)


# -- 3. Sentinel failover ---------------------------------------------------------------------


@pytest.fixture
async def sentinel() -> AsyncIterator[SentinelTopology]:
    with SentinelTopology() as topology:
        await topology.wait_ready()
        yield topology


async def numbers_in_stream(url: str, stream: str) -> set[int]:
    """The numbers the ``n`` broadcasts held in ``stream`` carry."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await client.xrange(stream))
    finally:
        await client.aclose()
    found = set()
    for _, fields in entries:
        data = json.loads(fields[b"data"]).get("packet", {}).get("data", [])
        if data[:1] == ["n"]:
            found.add(data[1])
    return found


async def cut_off_the_replica(master_url: str) -> None:
    """Stop replication for good: the replica's link is killed and its PSYNC refused (the
    clients, which never PSYNC, go on as before), so what is added from now on exists on
    the master alone."""
    master = redis.asyncio.Redis.from_url(master_url)
    try:
        await master.execute_command("ACL", "SETUSER", "default", "-psync", "-sync")
        await master.execute_command("CLIENT", "KILL", "TYPE", "replica")
    finally:
        await master.aclose()


@pytest.mark.timeout(150)
@pytest.mark.parametrize("replica", ["in-sync", "cut-off"])
async def test_sentinel_failover_loses_only_what_redis_lost(replica, sentinel, key, reliability):
    """Sentinel failover mid-way through the sends (replica in sync, or cut off): B follows
    the new master within bound, and misses only numbers the new master lacks."""
    a = await start_streams(sentinel.url, key)
    b = await start_streams(sentinel.url, key)
    client = await Client().connect(b)
    sender = Sender(a, pace=0.02)
    stop = anyio.Event()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender.send, None, stop)
            await wait_until(lambda: len(numbers(client)) >= 20, timeout=30)
            if replica == "cut-off":
                await cut_off_the_replica(sentinel.master.url)
                cut_at = time.monotonic()
                await wait_until(
                    lambda: len(sender.sent_after(cut_at) & set(numbers(client))) >= 20,
                    timeout=30,
                )
            old_port = sentinel.master.port
            killed_at = time.monotonic()
            sentinel.master.kill()
            with anyio.fail_after(45):
                while await sentinel.master_port() == old_port:
                    await anyio.sleep(0.1)
            promoted_at = time.monotonic()
            assert await sentinel.master_port() == sentinel.replica.port
            await wait_until(
                lambda: bool(sender.sent_after(promoted_at) & set(numbers(client))), timeout=30
            )
            resumed_at = time.monotonic()
            await wait_until(
                lambda: len(sender.sent_after(promoted_at) & set(numbers(client))) >= 20,
                timeout=30,
            )
            stop.set()
        await barrier(a, client)
        gaps_at_failover = b.adapter.stats["stream_gaps"]
        # A later reconnect of B's reader, with nothing lost meanwhile.
        promoted = redis.asyncio.Redis.from_url(sentinel.replica.url)
        try:
            reconnects = b.adapter.stats["stream_reconnects"]
            assert await kill_readers(promoted, b) == 1
            await wait_until(lambda: b.adapter.stats["stream_reconnects"] > reconnects)
            readers = await reader_clients(promoted, b)
        finally:
            await promoted.aclose()
        await barrier(a, client)
        held = await numbers_in_stream(sentinel.replica.url, key)
        got = numbers(client)
        outcome = tally(got, sender.acked)
        stats = b.adapter.stats
    finally:
        await client.aclose()
        await a.aclose()
        await b.aclose()
    assert len(readers) == 1, "B's reader did not follow the promoted replica"
    # What B misses, Redis lost: no number the new master holds was skipped.
    assert set(outcome.missing).isdisjoint(held), "B skipped entries the new master holds"
    assert set(outcome.duplicated) <= set(sender.retried), "a number came twice unasked"
    dropped_by_redis = set(sender.acked) - held
    read_then_lost = set(got) & dropped_by_redis
    if replica == "cut-off":  # the fault did happen: the new stream lacks what B read
        assert len(read_then_lost) >= 20 and len(dropped_by_redis) >= 20
        assert gaps_at_failover == 1, "B did not report that Redis lost what it read last"
    else:
        assert gaps_at_failover == 0, "B reported a loss the new master does not have"
    assert stats["stream_gaps"] == gaps_at_failover, "a later reconnect reported a phantom gap"
    gap = resumed_at - killed_at
    assert gap <= 45 + 30
    name = f"streams.sentinel.{replica}"
    what = (
        f"Streams adapter, Sentinel failover (master kill -9, down-after 1 s, replica "
        f"{replica}), ~50 sends/s"
    )
    reliability.record(
        f"{name}.gap",
        gap,
        "s",
        f"{what}: kill until a number sent after the promotion reached B "
        f"({resumed_at - promoted_at:.2f} s after the promotion was seen)",
        "delivery resumes (test waits at most 45 s + 30 s)",
    )
    reliability.record(
        f"{name}.lost",
        len(outcome.missing),
        "messages",
        f"{what}: numbers acknowledged by Redis that never reached B (the new master lacks "
        f"{len(dropped_by_redis)} acknowledged numbers, {len(read_then_lost)} of them read "
        f"by B from the old master; {gaps_at_failover} gaps reported by B)",
        "measured, not bounded (replication is asynchronous); none the new master holds",
    )
    reliability.record(
        f"{name}.out_of_order",
        outcome.out_of_order,
        "messages",
        f"{what}: numbers whose first copy reached B after a larger number's",
        "measured",
    )
    reliability.record(
        f"{name}.phantom_gaps",
        stats["stream_gaps"] - gaps_at_failover,
        "gaps",
        f"{what}: gaps B reported at a later reconnect of its reader, nothing lost meanwhile",
        "0",
    )
    record_outcome(
        reliability, name, what, sender, outcome, "measured: only numbers whose send was retried"
    )


# -- 4. a server process SIGKILLed ------------------------------------------------------------


async def connections_of(client: redis.asyncio.Redis, uid: str) -> list[str]:
    """Names of the connections a server (by uid) holds on Redis."""
    return [
        str(c.get("name"))
        for c in await client.client_list()
        if f":{uid}:" in str(c.get("name", ""))
    ]


@pytest.mark.timeout(90)
async def test_a_killed_server_leaves_the_count_at_once(
    redis_server, redis_client, key, make_streams, reliability
):
    """A streams server process SIGKILLed drops out of server_count() at once (bounded);
    Redis holds none of its connections and the others still broadcast."""
    bound = 2.0
    survivor = await make_streams()
    peers: list[ServerProcess] = []
    try:
        for _ in range(2):
            peers.append(await start_server_process(redis_server.url, key, streams=True))
        assert await survivor.adapter.server_count() == 3
        victim, other = peers
        assert await connections_of(redis_client, victim.uid)
        killed_at = time.monotonic()
        victim.signal(signal.SIGKILL)
        with anyio.fail_after(bound + SLACK):
            while await survivor.adapter.server_count() != 2:
                await anyio.sleep(0.005)
        took = time.monotonic() - killed_at
        assert await connections_of(redis_client, victim.uid) == []
        client = Client("on-other")
        await client.sio.connect(other.url, transports=["websocket"], wait_timeout=5)
        try:
            await survivor.sio.emit("after", 1)
            assert await client.wait_for("after", timeout=10) == [[1]]
        finally:
            await client.aclose()
        assert await survivor.adapter.server_count() == 2
    finally:
        for peer in peers:
            await peer.aclose(grace=5)
    assert took <= bound
    reliability.record(
        "streams.kill_server.count",
        took,
        "s",
        "Streams adapter: a server process SIGKILLed until server_count() (PUBSUB NUMSUB) "
        "on a survivor no longer counted it",
        f"< {bound:g} s (Redis sees the closed socket at once)",
    )


# -- 5. hostile entries on the stream ---------------------------------------------------------

EMITTER = b"emitter"
OTHER_UID = b"0123456789abcdef"
BROADCAST_DATA = {"packet": {"type": 2, "data": ["hostile", 1]}, "opts": {}}


def entry(
    uid: bytes = OTHER_UID, nsp: bytes = b"/", kind: bytes = b"3", data: Any = BROADCAST_DATA
) -> list[bytes]:
    """An entry's fields in Node's order; ``data`` as bytes, or a map to write as JSON."""
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return [b"uid", uid, b"nsp", nsp, b"type", kind, b"data", body]


def b64(value: bytes) -> bytes:
    return base64.b64encode(value)


def deep_json(depth: int) -> bytes:
    return b'{"packet":{"type":2,"data":["e",' + b"[" * depth + b"1" + b"]" * depth + b"]}}"


def malformed_entries(huge: int) -> dict[str, list[bytes]]:
    """Entries B must drop and count, one of each kind."""
    mp_deep = b"\x81\xa6packet\x82\xa4type\x02\xa4data" + b"\x91" * 3000 + b"\x01"
    return {
        "no uid": entry()[2:],
        "no nsp": entry()[:2] + entry()[4:],
        "no type": entry()[:4] + entry()[6:],
        "type not a number": entry(kind=b"three"),
        "type empty": entry(kind=b""),
        "type unknown": entry(kind=b"99"),
        "type negative": entry(kind=b"-3"),
        "type 3.0": entry(kind=b"3.0"),
        "uid not UTF-8": entry(uid=b"\xff\xfe"),
        "nsp not UTF-8": entry(nsp=b"/\xff"),
        "data not JSON": entry(data=b"{not json"),
        "data neither JSON nor base64": entry(data=b"!!not base64!!"),
        "data base64 of junk": entry(data=b64(b"\xc1\xc1")),
        "data base64 msgpack list": entry(data=b64(msgpack.packb([1, 2, 3]))),
        "data base64 msgpack str": entry(data=b64(msgpack.packb("text"))),
        "data JSON list": entry(data=b"[1,2]"),
        "data JSON nested too deep": entry(data=deep_json(5000)),
        "data msgpack nested too deep": entry(data=b64(mp_deep)),
        "packet missing": entry(data={"opts": {}}),
        "packet not a map": entry(data={"packet": 5, "opts": {}}),
        "packet data not a list": entry(data={"packet": {"type": 2, "data": "x"}}),
        "opts rooms not a list": entry(data={**BROADCAST_DATA, "opts": {"rooms": 5}}),
        "join with rooms a number": entry(kind=b"4", data={"opts": {}, "rooms": 5}),
        "disconnect with opts a list": entry(kind=b"6", data={"opts": [1], "close": True}),
        "fetch with a map requestId": entry(kind=b"7", data={"opts": {}, "requestId": {"a": 1}}),
        "broadcast with a list requestId": entry(data={**BROADCAST_DATA, "requestId": [1]}),
        "answer type 8 on the stream": entry(kind=b"8", data={"requestId": "r", "sockets": []}),
        "answer type 10 on the stream": entry(kind=b"10", data={"requestId": "r"}),
        "answer type 11 on the stream": entry(kind=b"11", data={"requestId": "r"}),
        "answer type 12 on the stream": entry(kind=b"12", data={"requestId": "r"}),
        "huge data": entry(data=b'{"packet":{"type":2,"data":["big","' + b"x" * huge + b'"]}}'),
    }


def ignored_entries(own_uid: bytes) -> dict[str, list[bytes]]:
    """Well-formed entries B must neither deliver nor count: its own, another namespace's."""
    quiet = {"packet": {"type": 2, "data": ["must-not-arrive", 1]}, "opts": {}}
    return {
        "own uid": entry(uid=own_uid, data=quiet),
        "namespace it does not serve": entry(nsp=b"/nope", data=quiet),
    }


def harmless(fields: list[bytes]) -> list[bytes]:
    """No generated entry may disconnect the client: a type that reads as 6 becomes 60."""
    out = list(fields)
    for i in range(0, len(out), 2):
        if out[i] == b"type":
            try:
                if int(out[i + 1]) == 6:
                    out[i + 1] = b"60"
            except ValueError:
                pass
    return out


def _json_or_none(value: Any) -> bytes | None:
    try:
        return json.dumps(value).encode()
    except ValueError:
        return None


def _pack_or_none(value: Any) -> bytes | None:
    try:
        return b64(msgpack.packb(value, use_bin_type=True))
    except (TypeError, ValueError, OverflowError):
        return None


def hostile_strategy() -> st.SearchStrategy[list[bytes]]:
    """Random entries: well-formed broadcasts carrying any data (JSON, or base64 msgpack
    with bytes), Node's four fields with any values, or any fields at all."""
    event = st.builds(lambda ev, rest: [ev, *rest], st.text(max_size=8), st.lists(json_values))
    mp_event = st.builds(
        lambda ev, rest: [ev, *rest], st.text(max_size=8), st.lists(mp_plain_values)
    )
    rooms = st.lists(st.sampled_from(["r", "other"]) | st.text(max_size=4), max_size=2)
    good_opts = st.fixed_dictionaries({}, optional={"rooms": rooms, "except": rooms})
    good = st.one_of(
        st.builds(lambda d, o: {"packet": {"type": 2, "data": d}, "opts": o}, event, good_opts).map(
            _json_or_none
        ),
        st.builds(
            lambda d, o: {"packet": {"type": 5, "data": d}, "opts": o}, mp_event, good_opts
        ).map(_pack_or_none),
    ).filter(lambda d: d is not None)
    well_formed = st.tuples(st.sampled_from([EMITTER, OTHER_UID]), good).map(
        lambda t: [b"uid", t[0], b"nsp", b"/", b"type", b"3", b"data", t[1]]
    )
    packet = st.fixed_dictionaries(
        {"data": event | json_values},
        optional={"type": st.sampled_from([2, 5]) | json_values, "nsp": st.just("/") | json_values},
    )
    opts = st.fixed_dictionaries(
        {}, optional={"rooms": json_values, "except": json_values, "flags": json_values}
    )
    body = st.fixed_dictionaries(
        {},
        optional={
            "packet": packet | json_values,
            "opts": opts | json_values,
            "rooms": json_values,
            "requestId": json_values,
            "close": json_values,
        },
    )
    data = st.one_of(
        body.map(_json_or_none),
        json_values.map(_json_or_none),
        body.map(_pack_or_none),
        mp_values.map(_pack_or_none),
        st.binary(max_size=32),
    ).filter(lambda d: d is not None)
    kind = (
        st.sampled_from([b"3", b"4", b"5", b"7", b"8", b"9", b"10", b"11", b"12", b"13", b"0"])
        | st.integers().map(lambda i: b"%d" % i)
        | st.binary(max_size=4)
    )
    uid = st.sampled_from([EMITTER, OTHER_UID]) | st.binary(max_size=20)
    nsp = st.sampled_from([b"/", b"/custom", b"/nope", b""]) | st.binary(max_size=6)
    node_order = st.tuples(uid, nsp, kind, data).map(
        lambda t: [b"uid", t[0], b"nsp", t[1], b"type", t[2], b"data", t[3]]
    )
    names = st.sampled_from([b"uid", b"nsp", b"type", b"data"]) | st.binary(max_size=6)
    anything = st.lists(st.tuples(names, st.binary(max_size=24) | data), min_size=1, max_size=6)
    flat = anything.map(lambda pairs: [x for pair in pairs for x in pair])
    return st.one_of(well_formed, node_order, flat).map(harmless)


@pytest.mark.timeout(120)
async def test_hostile_stream_entries(
    make_streams, make_client, redis_server, redis_client, caplog, reliability
):
    """Hostile entries amid valid broadcasts: no traceback, every valid one arrives in
    order, the malformed are dropped and counted, one log line a second at most."""
    limit = 64 * 1024
    b = await make_streams(max_message_size=limit)
    client = await make_client(b)
    await b.sio.enter_room(client.sid(), "r")
    malformed = malformed_entries(huge=limit)
    ignored = ignored_entries(b.adapter.uid.encode())
    generated = await anyio.to_thread.run_sync(generate, hostile_strategy(), 1000)
    hostile = [*malformed.values(), *ignored.values(), *generated]
    caplog.set_level(logging.WARNING)
    before = b.adapter.stats
    reader = b.adapter._streams.readers[0]
    stream = b.adapter.stream_name
    valid = 0
    async with AsyncEmitter(redis_server.url, streams=True, stream_name=stream) as emitter:
        started = time.monotonic()
        for i, fields in enumerate(hostile):
            if i % 10 == 0:
                await emitter.emit("valid", valid)
                valid += 1
            await redis_client.execute_command("XADD", stream, "*", *fields)
        await emitter.emit("fuzz-sentinel", "stream")
        assert await client.wait_for("fuzz-sentinel", timeout=60) == [["stream"]], (
            f"FUZZ_SEED={SEED}"
        )
    elapsed = time.monotonic() - started
    stats = b.adapter.stats
    records = caplog.records
    tracebacks = [r.getMessage() for r in records if r.exc_info or "Traceback" in r.getMessage()]
    assert tracebacks == [], f"FUZZ_SEED={SEED}"
    assert stats["handler_errors"] == before["handler_errors"], f"FUZZ_SEED={SEED}"
    assert reader.handler_errors == 0, f"FUZZ_SEED={SEED}"
    assert stats["stream_reconnects"] == before["stream_reconnects"], "the reader lost its link"
    assert stats["stream_entries_read"] - before["stream_entries_read"] >= len(hostile) + valid
    assert [args[0] for args in client.received("valid")] == list(range(valid))
    assert client.received("must-not-arrive") == []
    dropped = stats["dropped_messages"] - before["dropped_messages"]
    assert dropped >= len(malformed), f"FUZZ_SEED={SEED}"
    ours = [r for r in records if r.name == "socketio_redis_async"]
    assert len(ours) <= 1 + elapsed, "malformed entries are logged at most once a second"
    assert all(len(r.getMessage()) < 500 for r in records)
    assert len(records) == len(ours), [r.getMessage() for r in records if r not in ours]
    assert client.sio.connected
    delivered = sum(1 for _, event, _ in client.events if event not in ("valid", "fuzz-sentinel"))
    assert delivered > 0, "well-formed broadcasts carrying odd data should have arrived"
    name = "stream entries"
    reliability.record(
        f"fuzz.{name}.dropped",
        dropped,
        "messages",
        f"fuzz, {name}: of {len(hostile)} hostile entries ({len(malformed)} malformed by "
        f"construction, {len(generated)} generated), dropped as malformed",
        "0 tracebacks, no handler errors, the reader keeps its link",
    )
    reliability.record(
        f"fuzz.{name}.delivered",
        delivered,
        "events",
        f"fuzz, {name}: generated events delivered to the client, besides all {valid} valid "
        "broadcasts interleaved with them (in order)",
        "every valid broadcast, in order",
    )
    reliability.record(
        f"fuzz.{name}.log_lines",
        len(ours),
        "lines",
        f"fuzz, {name}: log lines for {len(hostile) + valid} entries in {elapsed:.1f} s",
        "≤ 1 per second",
    )


# -- a reconnect after Redis lost its data ----------------------------------------------------


async def emit_until_taken(sender: Node, number: int) -> None:
    """Emit ``number``, again after each PublishError, until Redis takes it."""
    while True:
        try:
            await sender.sio.emit("n", number)
            return
        except PublishError:
            await anyio.sleep(RETRY_PAUSE)


@pytest.mark.timeout(60)
async def test_a_reconnect_after_redis_lost_its_stream_reports_no_phantom_gap(
    own_redis, key, make_client
):
    """After Redis lost its stream (reported once), a later reconnect of B's reader, with
    nothing lost meanwhile, reports no second gap."""
    a = await start_streams(own_redis.url, key)
    b = await start_streams(own_redis.url, key)
    client = await make_client(b)
    try:
        await Sender(a, pace=0).send(30)
        await barrier(a, client)
        # B's reader is away (its handler stalls: a long GC pause, a busy loop...) while
        # Redis loses its data and A adds entries to the new stream.
        async with reader_stalled(b, a, ("n", 30)):
            own_redis.kill()
            own_redis.start()  # without its data: the stream is gone
            for i in range(100, 110):
                await emit_until_taken(a, i)
        await wait_until(lambda: b.adapter.stats["stream_gaps"] == 1, timeout=10)
        await barrier(a, client)
        assert numbers(client) == [*range(31), *range(100, 110)]
        reconnects = b.adapter.stats["stream_reconnects"]
        redis_client = redis.asyncio.Redis.from_url(own_redis.url)
        try:
            assert await kill_readers(redis_client, b) == 1
        finally:
            await redis_client.aclose()
        await wait_until(lambda: b.adapter.stats["stream_reconnects"] > reconnects)
        await a.sio.emit("n", 110)
        await barrier(a, client)
        assert numbers(client)[-1] == 110
        assert b.adapter.stats["stream_gaps"] == 1, (
            "a reconnect reported entries lost that were not"
        )
    finally:
        await a.aclose()
        await b.aclose()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("added_since", [5, 50])
async def test_entries_redis_lost_before_a_reader_read_them_are_reported(
    added_since, own_redis, key, make_client
):
    """Entries Redis lost (restarted without its data) before B's reader read them are
    reported as a gap, however many entries A added to the new stream meanwhile (fewer or
    more than B had read)."""
    a = await start_streams(own_redis.url, key)
    b = await start_streams(own_redis.url, key)
    client = await make_client(b)
    try:
        await Sender(a, pace=0).send(30)
        await barrier(a, client)
        async with reader_stalled(b, a, ("n", 30)):
            for i in range(31, 40):
                await a.sio.emit("n", i)
            own_redis.kill()
            own_redis.start()  # without its data: 31..39, never read by B, are gone
            for i in range(100, 100 + added_since):
                await emit_until_taken(a, i)
        await barrier(a, client)
        got = numbers(client)
        assert got == [*range(31), *range(100, 100 + added_since)]
        assert b.adapter.stats["stream_gaps"] >= 1, "9 entries were lost without a report"
    finally:
        await a.aclose()
        await b.aclose()
