"""The in-memory transport, without Redis: delivery as Redis pub/sub does it, counting,
limits, closing, faults, and the glob matcher its patterns use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from socketio_redis_async import AdapterClosedError, PublishError
from socketio_redis_async._protocol.channels import NamespaceChannels, glob_escape
from socketio_redis_async._transport.base import TRANSPORT_STATS, TransportFactory, TransportHooks
from socketio_redis_async._transport.glob import glob_match
from socketio_redis_async._transport.memory import (
    MemoryHub,
    MemoryTransport,
    memory_transport,
)

pytestmark = [pytest.mark.anyio, pytest.mark.unit]  # unit: no Redis, no subprocess

Message = tuple[bytes, bytes, "bytes | None"]


class Engine:
    """What an engine gives a transport: records the messages and link changes it gets."""

    def __init__(self, uid: str = "e", fail: bytes | None = None) -> None:
        self.uid = uid
        self.fail = fail  # a payload whose handling raises
        self.messages: list[Message] = []
        self.changes: list[bool] = []
        self._more = asyncio.Event()

    async def on_message(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        if payload == self.fail:
            raise RuntimeError("the handler failed")
        self.messages.append((channel, payload, pattern))
        self._more.set()

    def hooks(self) -> TransportHooks:
        return TransportHooks(self.on_message, self.changes.append, lambda: self.uid)

    async def received(self, count: int) -> list[Message]:
        """Wait (bounded) until ``count`` messages arrived; all of them."""
        with anyio.fail_after(5):
            while len(self.messages) < count:
                self._more.clear()
                await self._more.wait()
        return self.messages

    def payloads(self) -> list[bytes]:
        return [payload for _, payload, _ in self.messages]


@pytest.fixture
async def hub() -> AsyncIterator[MemoryHub]:
    hub = MemoryHub()
    yield hub
    for transport in list(hub.transports):
        await transport.aclose()


Make = Callable[..., tuple[MemoryTransport, Engine]]


@pytest.fixture
def make(hub: MemoryHub) -> Make:
    def make(
        *channels: str, listen: bool = True, max_message_size: int = 1 << 20
    ) -> tuple[MemoryTransport, Engine]:
        """A transport on the hub wanting ``channels``, and the engine it reports to."""
        engine = Engine(fail=b"boom")
        transport = MemoryTransport(hub, engine.hooks(), max_message_size=max_message_size)
        for channel in channels:
            transport.want(channel)
        if listen:
            transport.listen()
        return transport, engine

    return make


async def test_messages_arrive_in_publish_order(make: Make):
    """Every message published reaches the subscriber, in publish order, as a plain
    ``(channel, payload, None)``, and PUBLISH answers one receiver."""
    a, _ = make()
    _, engine = make("c")
    answers = [await a.publish("c", b"%d" % i) for i in range(50)]
    assert answers == [1] * 50
    messages = await engine.received(50)
    assert messages == [(b"c", b"%d" % i, None) for i in range(50)]


async def test_the_publisher_receives_what_it_publishes(make: Make):
    """Like Redis, a server subscribed to a channel gets its own messages on it."""
    a, engine = make("c")
    assert await a.publish("c", b"mine") == 1
    assert await engine.received(1) == [(b"c", b"mine", None)]


async def test_a_pattern_delivers_with_the_pattern_after_the_channel(make: Make):
    """A channel subscription and a matching pattern each get the message, the channel's
    first and the pattern's with the pattern; PUBLISH counts both deliveries."""
    a, _ = make()
    b, engine = make("k#/#r#")
    b.want_pattern("k#/#*")
    assert await a.publish("k#/#r#", b"x") == 2
    assert await a.publish("k#/other#", b"y") == 0
    await a.publish("k#/#", b"z")
    assert await engine.received(3) == [
        (b"k#/#r#", b"x", None),
        (b"k#/#r#", b"x", b"k#/#*"),
        (b"k#/#", b"z", b"k#/#*"),
    ]


async def test_subscribers_and_channels_are_counted_across_transports(make: Make):
    """NUMSUB and PUBSUB CHANNELS see every listening transport on the hub; one that does
    not listen yet counts nothing until it does."""
    a, _ = make("x", "y")
    b, _ = make("y")
    idle, _ = make("y", "z", listen=False)
    assert await a.count_subscribers("y") == 2 and await b.count_subscribers("x") == 1
    assert await b.count_subscribers("z") == 0
    assert await a.channels("*") == [b"x", b"y"]
    idle.listen()
    assert await a.count_subscribers("y") == 3
    assert await a.channels("[xz]") == [b"x", b"z"]


async def test_the_server_uid_pattern_lists_the_response_channels(make: Make):
    """The engine's ``uid_pattern`` finds every server's own response channel, even with
    glob characters in the key and the namespace."""
    names = NamespaceChannels.build("k*[1]?", "/a\\b")
    a, _ = make(names.response_for("uid1"), names.response)
    make(names.response_for("uid2"), names.request)
    make("k*[1]?-response#/a\\b#")  # the shared one: no uid, not listed
    assert names.uids(await a.channels(names.uid_pattern)) == ["uid1", "uid2"]


async def test_unwant_stops_the_delivery(make: Make):
    """After unwant (and unwant_pattern) nothing more arrives on the channel; a later
    message on a channel still wanted proves nothing was only late."""
    a, _ = make()
    b, engine = make("gone", "kept")
    b.want_pattern("g*")
    b.unwant("gone")
    b.unwant_pattern("g*")
    assert await a.publish("gone", b"lost") == 0
    await a.publish("kept", b"marker")
    await engine.received(1)
    assert engine.payloads() == [b"marker"]
    assert await a.count_subscribers("gone") == 0


async def test_a_message_over_the_size_limit_is_refused(make: Make):
    """Over max_message_size, check_size and publish raise what the Redis transports raise
    and deliver nothing; a publish's own limit replaces the maximum."""
    a, engine = make("c", max_message_size=10)
    a.check_size(b"x" * 10)
    with pytest.raises(ValueError, match="exceeds max_message_size=10"):
        a.check_size(b"x" * 11)
    with pytest.raises(ValueError, match="exceeds max_message_size=10"):
        await a.publish("c", b"x" * 11)
    with pytest.raises(ValueError, match="6 bytes"):
        await a.publish("c", b"x" * 6, limit=5)
    assert await a.publish("c", b"y" * 20, limit=20) == 1
    assert await engine.received(1) == [(b"c", b"y" * 20, None)]
    assert a.stats()["published"] == 1 and a.stats()["publish_failures"] == 0


async def test_a_closed_transport_refuses_and_leaves_the_hub(hub: MemoryHub, make: Make):
    """After aclose the transport no longer listens, publishes or listens again, and its
    subscriptions are gone from the hub."""
    a, _ = make("c")
    b, _ = make()
    assert await b.count_subscribers("c") == 1
    await a.aclose()
    assert not a.listening and a not in hub.transports
    assert await b.count_subscribers("c") == 0 and await b.publish("c", b"x") == 0
    with pytest.raises(AdapterClosedError):
        await a.publish("c", b"x")
    with pytest.raises(AdapterClosedError):
        a.listen()
    assert not a.health().healthy


async def test_stop_listening_ends_the_listener_task(make: Make):
    """stop_listening cancels the listener and waits for it; the transport stops
    receiving and counting."""
    a, _ = make("c")
    b, _ = make()
    task = a._task
    await a.stop_listening()
    assert task is not None and task.done() and not a.listening
    assert await b.publish("c", b"x") == 0


async def test_a_failing_handler_is_counted_and_the_listener_goes_on(
    make: Make, caplog: pytest.LogCaptureFixture
):
    """A message whose handler raises is counted in handler_errors and logged; the
    listener handles the next message."""
    a, engine = make("c")
    with caplog.at_level(logging.ERROR, logger="socketio_redis_async"):
        await a.publish("c", b"boom")
        await a.publish("c", b"after")
        await engine.received(1)
    assert engine.payloads() == [b"after"] and a.listening
    assert a.stats()["handler_errors"] == 1
    assert any("error while handling a message" in r.message for r in caplog.records)


async def test_start_confirms_at_once_and_announces_once(make: Make):
    """start() returns with everything subscribed and on_change(True) called once, however
    often it is called; confirm() returns at once; the health says so."""
    a, engine = make("c", "d", listen=False)
    a.want_pattern("p*")
    assert not a.listening and not a.health().connected and engine.changes == []
    await a.start()
    await a.start()
    await a.confirm(["c", "d"])
    assert a.listening and engine.changes == [True]
    health = a.health()
    assert health.healthy and health.connected
    assert (health.subscribed_channels, health.wanted_channels) == (3, 3)


async def test_a_dropped_link_loses_messages_until_it_is_back(hub: MemoryHub, make: Make):
    """hub.disconnect: on_change(False), the link's subscriptions gone, what was queued
    lost, publishing fails with PublishError; hub.reconnect: on_change(True), subscribed
    again, counted as a reconnect."""
    a, _ = make()
    b, engine = make("c")
    assert hub.publish("c", b"queued") == 1  # queued: the listener has not run yet
    hub.disconnect(b)
    assert engine.changes == [True, False]
    health = b.health()
    assert not health.healthy and not health.connected and health.subscribed_channels == 0
    assert health.last_error is not None and "lost the link" in health.last_error
    assert await a.publish("c", b"missed") == 0 and await a.count_subscribers("c") == 0
    with pytest.raises(PublishError, match="the link is down"):
        await b.publish("c", b"refused")
    hub.disconnect(b)  # no second announcement
    hub.reconnect(b)
    assert engine.changes == [True, False, True]
    assert await a.publish("c", b"back") == 1
    assert await engine.received(1) == [(b"c", b"back", None)]
    assert b.health().healthy
    assert (b.stats()["reconnects"], b.stats()["publish_failures"]) == (1, 1)
    assert b.health().publish_failures == 1


async def test_stats_have_the_transport_keys(make: Make):
    """stats() has exactly TRANSPORT_STATS; each publish is counted, as its own batch, and
    timed in the latency histogram."""
    a, engine = make("c", "d")
    for _ in range(3):
        await a.publish("c", b"x")
    await engine.received(3)
    stats = a.stats()
    assert set(stats) == set(TRANSPORT_STATS)
    assert stats["published"] == stats["publish_batches"] == a.latency.count == 3
    assert stats["subscribed_channels"] == 2 and stats["publish_backlog_bytes"] == 0
    assert a.health().seconds_since_contact is not None


async def test_the_factory_builds_a_transport_for_the_hooks(hub: MemoryHub):
    """memory_transport(hub) is a TransportFactory: each call builds a transport on the
    hub with the options given."""
    factory: TransportFactory = memory_transport(hub, max_message_size=4, where="mem://x")
    transport = factory(Engine().hooks())
    assert isinstance(transport, MemoryTransport) and transport in hub.transports
    assert transport.where == "mem://x"
    with pytest.raises(ValueError, match="max_message_size=4"):
        transport.check_size(b"12345")


@pytest.mark.parametrize(
    ("pattern", "string", "matches"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("a*", "a", True),
        ("a*", "abc", True),
        ("*c", "abc", True),
        ("a**c", "abbc", True),
        ("*", "", False),  # only "" matches "" (PUBSUB CHANNELS * does not list "")
        ("", "", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("?", "\n", True),
        ("[abc]", "b", True),
        ("[abc]", "d", False),
        ("[a-c]x", "bx", True),
        ("[c-a]x", "bx", True),  # a reversed range
        ("[^a-c]", "b", False),
        ("[^a-c]", "d", True),
        ("[]", "a", False),  # an empty class matches nothing
        ("[^]", "]", True),  # its negation any byte
        ("[ab", "b", True),  # an open class ends with the pattern
        ("[a-]x", "^", True),  # "a-]" is a range: the class goes on, "x" is in it
        ("[a-]x", "x", True),
        ("[a-]x", "^x", False),
        ("[\\]]", "]", True),
        ("[\\-a]", "-", True),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("\\?", "?", True),
        ("\\?", "a", False),
        ("\\[a]", "[a]", True),
        ("\\[a]", "a", False),
        ("a\\", "a\\", True),  # a trailing backslash is itself
        ("a.c", "abc", False),  # no regular expression syntax
        ("(a|b)", "(a|b)", True),
    ],
)
def test_glob_match_follows_redis(pattern: str, string: str, matches: bool):
    """Each case as Redis' stringmatchlen answers it (checked against redis-server 7.0)."""
    assert glob_match(pattern.encode(), string.encode()) is matches


@pytest.mark.parametrize("name", ["a*b", "a?b", "a[b]c", "a\\b", "[", "]", "*", "k#/#é#"])
def test_an_escaped_name_matches_only_itself(name: str):
    """glob_escape makes a pattern that matches the name and not what its glob characters
    would have matched."""
    pattern = glob_escape(name).encode()
    assert glob_match(pattern, name.encode())
    for other in ("axb", "ab", "abc", "a\\\\b", "x", "", name + "x"):
        if other != name:
            assert not glob_match(pattern, other.encode())
    assert glob_match(pattern + b"*", (name + "#tail").encode())
