"""``queued_emits=True``: an emit without a callback returns once its message is queued.

Real redis-server processes and real python-socketio servers and clients, on the classic,
sharded and streams adapters: the order of what a task queues and then awaits, the
delivery and batching of a single emitting loop, the backlog's bound under a frozen
Redis, failures reported through the stats, the log and ``on_connection_change``, and
``aclose()`` flushing or reporting what it dropped. The option's validation and the
in-memory transport's queued path are unit tests.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

import anyio
import pytest
import redis.asyncio

from socketio_redis_async import (
    AsyncRedisAdapter,
    AsyncShardedRedisAdapter,
    AsyncStreamsRedisAdapter,
    PublishError,
)
from socketio_redis_async._options import adapter_options
from tests.helpers import Client, Node, wait_until
from tests.monitor import monitored, sends, unretrieved
from tests.streams import start_streams
from tests.unit_cluster import UnitCluster, make_options

pytestmark = pytest.mark.anyio

# The embedded Redis 6.2 (tests-embedded-redis) has no sharded pub/sub: no sharded case
# is made there, as that session leaves out the sharded test files (no skips in CI).
EMBEDDED = os.environ.get("SOCKETIO_REDIS_SERVER") == "embedded"
KINDS = ("classic", "streams") if EMBEDDED else ("classic", "sharded", "streams")
ADAPTERS: dict[str, Any] = {
    "classic": AsyncRedisAdapter,
    "sharded": AsyncShardedRedisAdapter,
    "streams": AsyncStreamsRedisAdapter,
}
SEND_COMMAND = {"classic": "publish", "sharded": "spublish", "streams": "xadd"}
SLACK = 1.0  # seconds allowed past a documented bound (scheduling on a loaded machine)


async def start(kind: str, url: str, key: str, **options: Any) -> Node:
    """A server on ``kind``'s adapter (streams: its stream named after ``key``)."""
    if kind == "streams":
        return await start_streams(url, key, **options)
    return await Node.start(url, key, ADAPTERS[kind], **options)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", KINDS)
async def test_queued_broadcasts_reach_redis_before_a_request_awaited_after_them(
    redis_server, key, kind, caplog
):
    """1,000 queued broadcasts, then an awaited request: Redis runs every broadcast first."""
    a = await start(kind, redis_server.url, key, queued_emits=True)
    b = await start(kind, redis_server.url, key)
    client = await Client().connect(b)
    marker = f"order-{uuid.uuid4().hex}"
    try:
        await b.sio.enter_room(client.sid(), "r")
        b.adapter.custom_hook = lambda data: "seen"
        async with monitored(redis_server.url) as commands:
            for i in range(1000):
                await a.sio.emit("tick", f"queued-{i}", to="r")
            assert await a.adapter.custom_request(marker) == [None, "seen"]
            await wait_until(lambda: bool(sends(commands, marker)), timeout=10)
        ticks = sends(commands, "queued-")
        request = commands.index(sends(commands, marker)[0])
        assert len(ticks) == 1000
        assert max(commands.index(tick) for tick in ticks) < request
        await client.wait_for("tick", 1000, timeout=30)
        assert unretrieved(caplog) == []
    finally:
        await client.aclose()
        await a.aclose()
        await b.aclose()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_single_loop_of_queued_emits_arrives_in_order_in_few_batches(
    redis_server, key, kind
):
    """One loop awaiting 1,000 queued emits: all arrive, in order, in far fewer batches."""
    a = await start(kind, redis_server.url, key, queued_emits=True)
    b = await start(kind, redis_server.url, key)
    client = await Client().connect(b)
    try:
        await b.sio.enter_room(client.sid(), "r")
        before = a.adapter.stats
        for i in range(1000):
            await a.sio.emit("tick", i, to="r")
        got = await client.wait_for("tick", 1000, timeout=30)
        assert [args[0] for args in got] == list(range(1000))
        await wait_until(lambda: a.adapter.stats["publish_backlog_bytes"] == 0)
        stats = a.adapter.stats
        published = stats["published"] - before["published"]
        batches = stats["publish_batches"] - before["publish_batches"]
        assert published == 1000
        assert batches * 10 <= published, f"{batches} batches for {published} messages"
        assert stats["publish_failures"] == stats["queued_publish_failures"] == 0
    finally:
        await client.aclose()
        await a.aclose()
        await b.aclose()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
async def test_the_backlog_bound_holds_while_redis_is_frozen(own_redis, key, kind):
    """Redis frozen: emits wait for room under the bound; none past publish_timeout."""
    size, timeout = 2048, 1.0
    a = await start(
        kind, own_redis.url, key, queued_emits=True, max_message_size=size, publish_timeout=timeout
    )
    payload = "x" * 1000
    durations: list[float] = []
    peak = 0
    outcomes: list[BaseException | None] = []

    async def emit() -> None:
        nonlocal peak
        began = time.monotonic()
        try:
            await a.sio.emit("big", payload)
            outcomes.append(None)
        except PublishError as exc:
            outcomes.append(exc)
        durations.append(time.monotonic() - began)
        peak = max(peak, a.adapter.stats["publish_backlog_bytes"])

    own_redis.freeze()
    try:
        for _ in range(12):  # one loop: about 7 fit, the next waits for the first batch
            await emit()
        assert outcomes[:7] == [None] * 7
        assert timeout / 2 <= max(durations) <= timeout + SLACK
        async with anyio.create_task_group() as tg:  # many emitters at once
            for _ in range(40):
                tg.start_soon(emit)
        errors = [exc for exc in outcomes if exc is not None]
        assert errors, "some emitter should have found no room within publish_timeout"
        assert all("waiting for it" in str(exc) for exc in errors)
        assert max(durations) <= timeout + SLACK
        assert 0 < peak <= 4 * size
        assert a.adapter.stats["publish_failures"] >= len(errors)
    finally:
        own_redis.thaw()
        await a.aclose()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
async def test_failed_queued_emits_reach_stats_log_and_connection_callback(
    own_redis, key, kind, caplog
):
    """Refused queued emits are counted, logged once, and flip on_connection_change."""
    caplog.set_level(logging.INFO, logger="socketio_redis_async")
    changes: list[bool] = []
    a = await start(
        kind, own_redis.url, key, queued_emits=True, on_connection_change=changes.append
    )
    admin = redis.asyncio.Redis.from_url(own_redis.url)
    command = SEND_COMMAND[kind]
    try:
        await wait_until(lambda: changes == [True])
        await admin.execute_command("ACL", "SETUSER", "default", f"-{command}")
        for i in range(20):
            await a.sio.emit("tick", i)  # returns: nobody is told but the reports
        await wait_until(lambda: a.adapter.stats["queued_publish_failures"] == 20)
        await wait_until(lambda: changes == [True, False])
        assert a.adapter.stats["publish_failures"] >= 20
        assert a.adapter.health().publish_failures >= 20
        warnings = [r for r in caplog.records if "could not be published" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "NOPERM" in warnings[0].getMessage()
        await admin.execute_command("ACL", "SETUSER", "default", f"+{command}")
        await a.sio.emit("tick", "back")
        await wait_until(lambda: changes == [True, False, True])
        assert any("published to Redis again (20 failed" in r.getMessage() for r in caplog.records)
        assert a.adapter.stats["queued_publish_failures"] == 20
        assert unretrieved(caplog) == []
    finally:
        await admin.execute_command("ACL", "SETUSER", "default", "+@all")
        await admin.aclose()
        await a.aclose()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
async def test_aclose_flushes_what_is_queued(redis_server, key, kind):
    """aclose() right after a loop of queued emits: every message still arrives, in order."""
    a = await start(kind, redis_server.url, key, queued_emits=True)
    b = await start(kind, redis_server.url, key)
    client = await Client().connect(b)
    try:
        await b.sio.enter_room(client.sid(), "r")
        for i in range(300):
            await a.sio.emit("tick", i, to="r")
        assert a.adapter.stats["publish_backlog_bytes"] > 0  # some were still waiting
        await a.aclose()
        got = await client.wait_for("tick", 300, timeout=20)
        assert [args[0] for args in got] == list(range(300))
        assert a.adapter.stats["queued_dropped_at_close"] == 0
    finally:
        await client.aclose()
        await a.aclose()
        await b.aclose()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
async def test_aclose_reports_what_it_dropped(own_redis, key, kind, caplog):
    """Redis frozen at aclose(): it returns within its bound and counts and logs the drops."""
    timeout = 0.5
    a = await start(kind, own_redis.url, key, queued_emits=True, publish_timeout=timeout)
    own_redis.freeze()
    try:
        for i in range(10):
            await a.sio.emit("tick", i)
        began = time.monotonic()
        await a.aclose()
        assert time.monotonic() - began <= 10 + SLACK  # the listener's own stop bound
        assert a.adapter.stats["queued_dropped_at_close"] == 10
        assert a.adapter.stats["queued_publish_failures"] == 0
        logged = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert any(m.startswith("10 queued broadcasts were dropped") for m in logged), logged
    finally:
        own_redis.thaw()
        await a.aclose()


# -- unit: the option and the in-memory transport --------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_queued_emits_takes_only_a_bool(kind, value):
    """queued_emits that is not True or False raises TypeError saying what to pass."""
    with pytest.raises(TypeError, match="queued_emits must be True or False"):
        ADAPTERS[kind](queued_emits=value)


@pytest.mark.unit
def test_a_misspelt_option_raises_type_error():
    """An unknown option name raises TypeError on every adapter."""
    for adapter in ADAPTERS.values():
        with pytest.raises(TypeError, match="queue_emits"):
            adapter(queue_emits=True)


@pytest.mark.unit
def test_queued_emits_defaults_to_false_and_reaches_the_engine():
    """The option is off by default and each adapter hands True to its engine."""
    assert adapter_options(None, "k", {}).queued_emits is False
    assert adapter_options(None, "k", {"queued_emits": True}).queued_emits is True
    assert make_options().queued_emits is False
    assert make_options(queued_emits=True).queued_emits is True
    for adapter in ADAPTERS.values():
        assert adapter()._engine.options.queued_emits is False
        assert adapter(queued_emits=True)._engine.options.queued_emits is True


@pytest.mark.unit
@pytest.mark.parametrize("wire", ["classic", "sharded", "streams"])
async def test_queued_emits_on_the_memory_bus(cluster: UnitCluster, wire: str):
    """In memory: queued emits arrive; a failed one is counted and signalled, not raised."""
    changes: list[bool] = []
    a = await cluster.add(wire, queued_emits=True, on_connection_change=changes.append)
    b = await cluster.add(wire)
    client = await cluster.connect(b)
    await a.sio.emit("hello", 1)
    await cluster.settle()
    await cluster.flush(client)
    assert [e.args for e in client.events if e.name == "hello"] == [[1]]
    cluster.hub.disconnect(a.transport)
    await a.sio.emit("hello", 2)  # does not raise: the failure is reported
    assert a.mgr.stats["queued_publish_failures"] == 1
    cluster.hub.reconnect(a.transport)
    await cluster.settle()
    assert changes == [True, False]
    await a.sio.emit("hello", 3)
    await cluster.settle()  # the callback runs in a task the engine owns: settle awaits it
    assert changes == [True, False, True]
