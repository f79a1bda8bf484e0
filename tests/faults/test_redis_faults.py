"""Redis faults: a corrupt reply, a frozen Redis, a killed and restarted Redis.

Every test runs real redis-server processes (killed with SIGKILL, frozen with SIGSTOP) and
real python-socketio servers and clients, and asserts bounds: no emit or request waits
past its documented bound, the publish backlog stays bounded, every failure is the
package's own exception, and delivery resumes once Redis is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio

from socketio_redis_async import (
    AsyncEmitter,
    Emitter,
    PublishError,
    RedisCommandError,
)
from tests.faults.proxy import RedisProxy
from tests.helpers import Client, Node, run_cli, wait_until

pytestmark = pytest.mark.anyio

SLACK = 1.0  # seconds allowed past a documented bound (scheduling on a loaded machine)


class Records(logging.Handler):
    """Keeps (monotonic time, level, message) of every record of one logger."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[float, int, str]] = []
        self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((time.monotonic(), record.levelno, record.getMessage()))
        self.tracebacks += record.exc_info is not None

    def first(self, text: str, after: float) -> float | None:
        return next((t for t, _, m in self.records if t >= after and text in m), None)


def logger_for(name: str) -> tuple[logging.Logger, Records]:
    logger = logging.getLogger(f"socketio_redis_async.test.{name}")
    records = Records()
    logger.addHandler(records)
    return logger, records


@pytest.fixture
async def proxy(redis_server) -> AsyncIterator[RedisProxy]:
    async with RedisProxy(redis_server.port) as p:
        yield p


async def test_corrupt_reply_fails_only_its_batch(proxy, key, make_node, make_client):
    """A corrupt PUBLISH reply fails that emit with PublishError; later emits still work."""
    a = await make_node(url=proxy.url, publish_timeout=2)
    b = await make_node()
    client = await make_client(b)
    await a.sio.emit("before")
    await client.wait_for("before")
    proxy.corrupt_next_publish_reply()
    with anyio.fail_after(5), pytest.raises(PublishError) as info:
        await a.sio.emit("corrupted")
    assert proxy.corrupted == 1
    assert info.value.__cause__ is not None  # the hiredis ProtocolError, chained
    for i in range(3):
        with anyio.fail_after(5):  # before the fix the publisher task was dead: a hang
            await a.sio.emit("after", i)
    assert await client.wait_for("after", 3) == [[0], [1], [2]]
    # Redis did run that PUBLISH (only its answer was lost): PublishError means "not known
    # to be delivered", not "not delivered".
    assert a.adapter.stats["publish_failures"] == 1
    assert "ProtocolError" in (a.adapter.health().last_error or "")


async def test_frozen_redis_bounds_emits_backlog_and_detection(own_redis, key, reliability):
    """Redis frozen 8 s under 50 emits/s: each emit ends within publish_timeout, the backlog
    stays bounded, both links' loss is logged within 2.5 health intervals, delivery resumes."""
    rate, freeze_for, timeout = 50, 8.0, 5.0  # publish_timeout and the interval: defaults
    interval = 2.0
    log_a, records_a = logger_for(f"a{key}")
    log_b, records_b = logger_for(f"b{key}")
    a = await Node.start(own_redis.url, key, logger=log_a)
    b = await Node.start(own_redis.url, key, logger=log_b)
    client = await Client().connect(b)
    await b.sio.enter_room(client.sid(), "room")
    durations: list[float] = []
    outcomes: dict[int, str] = {}
    peak = [0, 0]
    next_seq = [0]
    stop = anyio.Event()

    async def one(seq: int) -> None:
        start = time.monotonic()
        try:
            await a.sio.emit("tick", seq, to="room")
            outcomes[seq] = "ok"
        except PublishError:
            outcomes[seq] = "failed"
        durations.append(time.monotonic() - start)

    async def steady(tg: Any) -> None:
        while not stop.is_set():
            tg.start_soon(one, next_seq[0])
            next_seq[0] += 1
            publisher = a.adapter._engine.transport.publisher
            peak[0] = max(peak[0], publisher.backlog_entries)
            peak[1] = max(peak[1], publisher.backlog_bytes)
            await anyio.sleep(1 / rate)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(steady, tg)
            await client.wait_for("tick", 10)
            frozen_at = time.monotonic()
            own_redis.freeze()
            await anyio.sleep(freeze_for)  # the fault itself: Redis answers nothing
            own_redis.thaw()
            thawed_at = time.monotonic()
            first_after = next_seq[0]
            with anyio.fail_after(15):
                while not any(args[0] >= first_after for args in client.received("tick")):
                    await client.wait_for("tick", len(client.received("tick")) + 1)
            resumed_at = time.monotonic()
            stop.set()
    finally:
        await client.aclose()
        await a.aclose()
        await b.aclose()
    failed = sum(1 for v in outcomes.values() if v == "failed")
    detected = [r.first("lost the pub/sub connection", frozen_at) for r in (records_a, records_b)]
    assert failed > 0, "emits during the freeze should have failed with PublishError"
    assert max(durations) <= timeout + SLACK
    assert peak[0] <= rate * (timeout + SLACK)
    assert peak[1] <= 4 * 8 * 1024 * 1024
    assert all(t is not None for t in detected), "the frozen link was not logged"
    assert records_a.tracebacks == records_b.tracebacks == 0  # one line each, no traceback
    detection = max(t - frozen_at for t in detected if t is not None)
    assert detection <= 2.5 * interval + SLACK
    reliability.record(
        "freeze.emit_max_blocking",
        max(durations),
        "s",
        f"longest emit during an {freeze_for:g} s Redis freeze (SIGSTOP), {rate} emits/s",
        f"publish_timeout ({timeout:g} s) + {SLACK:g} s",
    )
    reliability.record(
        "freeze.detection",
        detection,
        "s",
        "time from a Redis freeze until both servers logged the dead pub/sub link",
        f"2.5 x health_check_interval ({2.5 * interval:g} s) + {SLACK:g} s",
    )
    reliability.record(
        "freeze.peak_backlog",
        peak[0],
        "messages",
        f"peak publish backlog during the freeze ({peak[1]} bytes at most)",
        "emit rate x publish_timeout; bytes <= 4 x max_message_size",
    )
    reliability.record(
        "freeze.resume",
        resumed_at - thawed_at,
        "s",
        "time from thawing Redis until a new emit reached a client on another server",
    )


async def test_full_backlog_fails_fast(own_redis, key):
    """With Redis frozen, publishes past 4 x max_message_size waiting bytes fail at once."""
    a = await Node.start(own_redis.url, key, max_message_size=4096, publish_timeout=3)
    done: list[str] = []

    async def one() -> None:
        try:
            await a.sio.emit("big", "x" * 2000, to="room")
            done.append("ok")
        except PublishError as exc:
            done.append("full" if "already waiting" in str(exc) else "timeout")

    try:
        own_redis.freeze()
        with anyio.fail_after(3 + 2 * SLACK):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(one)
                await wait_until(lambda: len(done) >= 12)
                assert a.adapter._engine.transport.publisher.backlog_bytes <= 4 * 4096
        # The refused ones ended first, while the queued ones still waited for Redis.
        assert done[:12] == ["full"] * 12
        assert "ok" not in done
        assert a.adapter.stats["publish_failures"] == 20
    finally:
        own_redis.thaw()
        await a.aclose()


CallFactory = Callable[[Node, str], Awaitable[Any]]
CALLS: dict[str, CallFactory] = {
    "emit": lambda n, sid: n.sio.emit("x"),
    "enter_room_remote": lambda n, sid: n.sio.enter_room(sid, "r"),
    "close_room": lambda n, sid: n.sio.close_room("r"),
    "server_count": lambda n, sid: n.adapter.server_count(),
    "all_rooms": lambda n, sid: n.adapter.all_rooms(),
    "clients": lambda n, sid: n.adapter.clients(),
    "client_rooms": lambda n, sid: n.adapter.client_rooms(sid),
    "fetch_sockets": lambda n, sid: n.adapter.fetch_sockets(),
    "emit_with_ack": lambda n, sid: n.adapter.emit_with_ack("x"),
    "custom_request": lambda n, sid: n.adapter.custom_request(1),
    "server_side_emit": lambda n, sid: n.adapter.server_side_emit("x"),
    "server_side_emit_with_ack": lambda n, sid: n.adapter.server_side_emit_with_ack("x"),
    "sockets_join": lambda n, sid: n.adapter.sockets_join("r"),
    "sockets_leave": lambda n, sid: n.adapter.sockets_leave("r"),
    "disconnect_sockets": lambda n, sid: n.adapter.disconnect_sockets(),
    "remote_join": lambda n, sid: n.adapter.remote_join(sid, "r"),
    "remote_leave": lambda n, sid: n.adapter.remote_leave(sid, "r"),
    "remote_disconnect": lambda n, sid: n.adapter.remote_disconnect(sid),
}


@pytest.mark.parametrize("fault", ["killed", "frozen"])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_public_calls_raise_own_errors_within_bound(own_redis, key, fault, call):
    """With Redis killed or frozen, each public call raises RedisCommandError in bound."""
    bound = 0.5  # requests_timeout and publish_timeout
    a = await Node.start(own_redis.url, key, requests_timeout=bound, publish_timeout=bound)
    b = await Node.start(own_redis.url, key)
    client = await Client().connect(b)
    remote_sid = client.sid()
    try:
        own_redis.kill() if fault == "killed" else own_redis.freeze()
        with anyio.fail_after(2 * bound + SLACK), pytest.raises(RedisCommandError) as info:
            await CALLS[call](a, remote_sid)
        assert not isinstance(info.value, redis.RedisError)
        assert isinstance(info.value.__cause__, (redis.RedisError, OSError))
        assert own_redis.url.split("//")[1].split("/")[0] in str(info.value)
    finally:
        if fault == "frozen":
            own_redis.thaw()
        await client.aclose()
        await a.aclose()
        await b.aclose()


async def test_emitters_and_cli_are_bounded_on_a_frozen_redis(own_redis, key):
    """Emitter, AsyncEmitter and the CLI fail with their own error within their timeout."""
    bound = 0.5
    aem = AsyncEmitter(own_redis.url, key=key, publish_timeout=bound)
    em = Emitter(own_redis.url, key=key, publish_timeout=bound)
    assert await aem.emit("warm") == 0 and em.emit("warm") == 0
    own_redis.freeze()
    try:
        with anyio.fail_after(bound + SLACK), pytest.raises(PublishError) as info:
            await aem.emit("ev")
        # The emitter's bound or its client's socket timeout (both publish_timeout) fires.
        assert isinstance(info.value.__cause__, (TimeoutError, redis.TimeoutError))
        with anyio.fail_after(bound + SLACK), pytest.raises(PublishError) as info:
            await anyio.to_thread.run_sync(em.emit, "ev")
        assert isinstance(info.value.__cause__, redis.TimeoutError)
        for command in ("servers", "rooms"):
            code, _, err = await run_cli(
                command, "--url", own_redis.url, "--key", key, "--timeout", "0.5", timeout=15
            )
            assert code == 1 and "within 0.5 s" in err and "Traceback" not in err, err
    finally:
        own_redis.thaw()
        await aem.aclose()
        em.close()


async def test_redis_restart_signals_and_recovers(own_redis, key, reliability):
    """kill -9 and restart of Redis under 50 emits/s: B signals the loss and the return,
    health() goes unhealthy then healthy, and delivery resumes within the bound."""
    rate, outage, cap = 50, 1.0, 1.0  # cap: the subscriber's reconnect backoff cap
    changes: list[tuple[float, bool]] = []
    b = await Node.start(
        own_redis.url,
        key,
        on_connection_change=lambda up: changes.append((time.monotonic(), up)),
    )
    a = await Node.start(own_redis.url, key)
    client = await Client().connect(b)
    await b.sio.enter_room(client.sid(), "room")
    sent: dict[int, float] = {}  # seq -> when its emit returned successfully
    stop = anyio.Event()

    async def one(seq: int) -> None:
        try:
            await a.sio.emit("tick", seq, to="room")
            sent[seq] = time.monotonic()
        except PublishError:
            pass  # reported to the caller: not a silent loss

    async def steady(tg: Any) -> None:
        seq = 0
        while not stop.is_set():
            tg.start_soon(one, seq)
            seq += 1
            await anyio.sleep(1 / rate)

    def received() -> set[int]:
        return {args[0] for args in client.received("tick")}

    try:
        await wait_until(lambda: b.adapter.health().healthy)
        assert changes and changes[-1][1] is True
        async with anyio.create_task_group() as tg:
            tg.start_soon(steady, tg)
            await client.wait_for("tick", 10)
            killed_at = time.monotonic()
            own_redis.kill()
            await wait_until(lambda: not b.adapter.health().healthy, timeout=5)
            await wait_until(lambda: changes[-1][1] is False, timeout=5)
            assert b.adapter.health().last_error
            await anyio.sleep(outage)  # the fault itself: Redis is down
            own_redis.start()
            started_at = time.monotonic()
            await wait_until(lambda: any(t > started_at for t in sent.values()), timeout=10)
            with anyio.fail_after(10):
                while not any(sent.get(s, 0) > started_at for s in received()):
                    await client.wait_for("tick", len(client.received("tick")) + 1)
            resumed_at = time.monotonic()
            await wait_until(lambda: b.adapter.health().healthy, timeout=10)
            stop.set()
        # Pub/sub keeps order: once a last emit arrives, every earlier one that will ever
        # arrive has arrived.
        await a.sio.emit("last", to="room")
        await client.wait_for("last")
        lost = sorted(s for s, t in sent.items() if t > killed_at and s not in received())
    finally:
        await client.aclose()
        await a.aclose()
        await b.aclose()
    ups = [up for t, up in changes if t > killed_at]
    assert ups[:1] == [False] and ups[-1] is True
    assert b.adapter.stats["reconnects"] >= 1
    recovery = resumed_at - started_at
    assert recovery <= 2 * cap + 0.2 + 2 * SLACK
    # A holds its publishes after reconnecting until B, retrying at least every cap
    # seconds, has re-subscribed: what little is lost was in flight when Redis died.
    assert len(lost) <= rate * 0.5
    reliability.record(
        "restart.recovery",
        recovery,
        "s",
        f"Redis kill -9, {outage:g} s down, restart: time until a new emit reached a client "
        "on another server",
        f"2 x reconnect backoff cap ({cap:g} s) + 0.2 s + {2 * SLACK:g} s",
    )
    reliability.record(
        "restart.lost",
        len(lost),
        "messages",
        f"emits reported successful but never delivered across that restart, at {rate}/s",
        "emit rate x 0.5 s",
    )


async def test_a_blocked_event_loop_is_not_a_dead_link(own_redis, key):
    """Application code that blocks the event loop for 3 health intervals (a long sync
    call, or 100k joins at once) does not make the subscriber drop a healthy link: only a
    PING left unanswered while the loop runs counts."""
    log, records = logger_for(f"blocked{key}")
    node = await Node.start(own_redis.url, key, logger=log, health_check_interval=0.5)
    client = await Client().connect(node)
    try:
        await node.sio.enter_room(client.sid(), "room")
        time.sleep(1.5)  # noqa: ASYNC251 - the fault: the process is busy, the link is fine
        await wait_until(lambda: node.adapter._engine.transport.subscriber.last_contact is not None)
        await node.sio.emit("after", 1, to="room")
        assert await client.wait_for("after") == [[1]]
        # With the loop running again, an idle interval brings a PING, and it is answered.
        subscriber = node.adapter._engine.transport.subscriber
        since = subscriber.last_contact or 0.0
        await wait_until(lambda: (subscriber.last_contact or 0.0) > since + 0.5, timeout=10)
        assert records.first("lost the pub/sub connection", 0.0) is None
        assert node.adapter.stats["reconnects"] == 0
    finally:
        await client.aclose()
        await node.aclose()
