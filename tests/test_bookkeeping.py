"""The subscription planner and the requests layer, without Redis: what gets subscribed,
what waits for which answers, and that every entry goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from socketio_redis_async import RequestTimeoutError
from socketio_redis_async._cluster.plan import Kind, NamespacePlan
from socketio_redis_async._cluster.requests import AckRequests, PendingRequests, Requester
from socketio_redis_async._protocol import answers, codec
from socketio_redis_async._protocol.wire import ClassicWire
from tests.helpers import plan_sizes

pytestmark = [pytest.mark.anyio, pytest.mark.unit]  # unit: no Redis, no subprocess


class Subs:
    """A fake transport's subscriptions: the wanted set, and every change in order."""

    def __init__(self) -> None:
        self.channels: set[str] = set()
        self.patterns: set[str] = set()
        self.log: list[str] = []

    def want(self, channel: str) -> None:
        self.channels.add(channel)
        self.log.append(f"+{channel}")

    def unwant(self, channel: str) -> None:
        self.channels.discard(channel)
        self.log.append(f"-{channel}")

    def want_pattern(self, pattern: str) -> None:
        self.patterns.add(pattern)

    def unwant_pattern(self, pattern: str) -> None:
        self.patterns.discard(pattern)


def plan(multiplexing: bool = True, kept: set[str] | None = None) -> tuple[NamespacePlan, Subs]:
    subs = Subs()
    keeps = kept if kept is not None else set()
    wire = ClassicWire(multiplexing)
    return NamespacePlan("k", lambda: "me", wire, subs, keeps.__contains__), subs


def test_a_served_namespace_subscribes_its_channels_and_routes_them():
    """Serving a namespace subscribes its request, response, own-response and broadcast
    channels, and routes each to its kind."""
    p, subs = plan()
    p.ensure("/chat")
    assert subs.channels == {
        "k-request#/chat#",
        "k-response#/chat#",
        "k-response#/chat#me#",
        "k#/chat#",
    }
    assert p.route(b"k-request#/chat#")[0] is Kind.REQUEST  # type: ignore[index]
    assert p.route(b"k-response#/chat#me#")[0] is Kind.RESPONSE  # type: ignore[index]
    assert p.route(b"k#/chat#")[0] is Kind.BROADCAST  # type: ignore[index]
    assert p.route(b"k#/other#") is None


def test_without_multiplexing_a_namespace_uses_one_pattern():
    """With multiplexing off, broadcasts come through ``K#N#*`` and rooms add nothing."""
    p, subs = plan(multiplexing=False)
    p.ensure("/")
    p.room_created("/", "r")
    assert subs.patterns == {"k#/#*"} and "k#/#r#" not in subs.channels
    assert p.pattern_route(b"k#/#*") is not None
    assert p.room_channels("/", ["r"]) == []


def test_room_channels_are_counted_per_channel_name():
    """Rooms 1 and "1" share channel ``K#N#1#``: it is subscribed once and dropped only
    when the last of them empties."""
    p, subs = plan()
    p.room_created("/", 1)
    p.room_created("/", "1")
    assert subs.log.count("+k#/#1#") == 1
    p.room_emptied("/", 1)
    assert "k#/#1#" in subs.channels
    p.room_emptied("/", "1")
    assert "k#/#1#" not in subs.channels and p.route(b"k#/#1#") is None


def test_a_lease_keeps_a_namespace_until_released():
    """A request in flight holds its namespace; the last release unsubscribes it all and
    leaves every map empty."""
    p, subs = plan()
    p.hold("/q")
    p.hold("/q")
    assert not p.release_if_idle("/q")
    assert not p.unhold("/q")
    assert p.unhold("/q")
    assert subs.channels == set()
    assert set(plan_sizes(p).values()) == {0}


def test_a_kept_namespace_is_not_released():
    """A namespace the host keeps (sockets, handlers) survives the end of a lease."""
    p, subs = plan(kept={"/kept"})
    p.hold("/kept")
    assert not p.unhold("/kept")
    assert "k-request#/kept#" in subs.channels


async def test_pending_requests_count_answers_and_leave_no_entry():
    """A request is done after the expected answers; an unusable or error answer counts
    as an answer; closing removes the entry."""
    unusable: list[Any] = []
    pending = PendingRequests(lambda answer, exc: unusable.append(answer))
    rid, entry = pending.open(3, answers.sids_of)
    assert pending.on_response({"requestId": rid, "uid": "a", "sockets": ["s1"]})
    assert pending.on_response({"requestId": rid, "uid": "b"})  # no sockets: unusable
    assert not entry.done.done()
    assert pending.on_response({"requestId": rid, "uid": "c", "sockets": [], "error": "too big"})
    assert entry.done.done()
    assert entry.responses == [["s1"]] and entry.signers == {"a", "b", "c"}
    assert entry.errors == [("c", "too big")] and pending.unusable == 1 and len(unusable) == 1
    assert not pending.on_response({"requestId": "other", "sockets": []})
    pending.close(rid)
    assert len(pending) == 0


async def test_ack_requests_expire_and_single_ones_end_at_the_first_ack():
    """Each BROADCAST entry expires after its timeout; a single-socket one ends with its
    first ack; client counts reach ``on_count`` with the reporter's uid."""
    acks: list[Any] = []
    counts: list[tuple[int, str | None]] = []
    gone = anyio.Event()
    requests = AckRequests(lambda coro: coro.close())
    rid = requests.add(
        acks.append, 30, single=True, on_count=lambda n, uid: counts.append((n, uid))
    )
    requests.on_response({"requestId": rid, "type": 8, "clientCount": 2, "uid": "a"})
    requests.on_response({"requestId": rid, "type": 9, "packet": "ok"})
    assert acks == ["ok"] and counts == [(2, "a")] and rid not in requests
    expiring = requests.add(acks.append, 0.01, on_discard=gone.set)
    with anyio.fail_after(5):
        await gone.wait()
    assert expiring not in requests and len(requests) == 0


class Bus:
    """A fake cluster for the Requester: N servers, those that are live, what was sent."""

    def __init__(self, servers: int, live: list[str]) -> None:
        self.uid = "me"
        self.servers = servers
        self.live = live
        self.sent: list[dict[str, Any]] = []
        self.published = asyncio.Event()
        self.serving_now = 0

    @contextlib.asynccontextmanager
    async def serving(self, nsp: str) -> AsyncIterator[None]:
        self.serving_now += 1
        try:
            yield
        finally:
            self.serving_now -= 1

    async def count_servers(self, nsp: str) -> int:
        return self.servers

    async def live_servers(self, nsp: str) -> list[str]:
        return self.live

    async def publish_request(self, nsp: str, request: dict[str, Any]) -> None:
        self.sent.append(request)
        self.published.set()


def requester(bus: Bus, timeout: float = 5) -> Requester:
    return Requester(bus, timeout, lambda coro: coro.close(), lambda a, e: None, 10**6)


async def test_a_round_collects_one_answer_per_other_server():
    """With 3 servers the request waits for 2 answers (compressed ones expanded), asks
    for compression, and holds the namespace only while it runs."""
    bus = Bus(3, ["me", "a", "b"])
    req = requester(bus)

    async def answer() -> None:
        await bus.published.wait()
        rid = bus.sent[0]["requestId"]
        req.on_response({"requestId": rid, "uid": "a", "rooms": ["x"]})
        big = answers.answer(rid, "b", rooms=["y" * 70_000])
        req.on_response(codec.decode_request(answers.compress(big, codec.dump_json(big))))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            found = await req.gather(
                "/", lambda rid: {"requestId": rid, "type": 1}, answers.rooms_of, what="allRooms"
            )
    assert found == [["x"], ["y" * 70_000]]
    assert bus.sent[0]["zlib"] is True and bus.serving_now == 0 and len(req.pending) == 0


async def test_a_round_alone_sends_nothing():
    """With no other server there is no request at all."""
    bus = Bus(1, ["me"])
    assert await requester(bus).gather("/", lambda rid: {}, answers.rooms_of, what="x") == []
    assert bus.sent == []


async def test_a_timed_out_round_names_the_silent_servers():
    """A round that times out raises with the answers so far and the live servers that
    did not answer, this one aside."""
    bus = Bus(3, ["me", "a", "b"])
    req = requester(bus, timeout=0.2)

    async def answer() -> None:
        await bus.published.wait()
        req.on_response({"requestId": bus.sent[0]["requestId"], "uid": "a", "rooms": []})

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            with pytest.raises(RequestTimeoutError) as caught:
                await req.gather(
                    "/", lambda rid: {"requestId": rid}, answers.rooms_of, what="allRooms"
                )
    assert "allRooms" in str(caught.value)
    assert caught.value.responses == [[]] and caught.value.silent_servers == ["b"]
    assert len(req.pending) == 0
