"""What other servers make this one do: app handlers, unusable answers, acks never sent."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import anyio
import pytest
import redis.asyncio

from socketio_redis_async import RequestTimeoutError
from tests.helpers import wait_until

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("form", ["legacy", "selector"])
async def test_remote_disconnect_handler_may_query_the_cluster(make_node, make_client, form):
    """A disconnect handler run by a remote disconnect awaits fetch_sockets() without deafening
    its server: broadcasts keep arriving meanwhile and fetch_sockets() gets its answer."""
    a, b = await make_node(), await make_node()
    release = asyncio.Event()
    outcome: list[Any] = []

    @b.sio.on("disconnect")
    async def on_disconnect(sid: str, reason: str) -> None:
        with anyio.fail_after(10):
            await release.wait()
        try:
            outcome.append(sorted(s.id for s in await b.adapter.fetch_sockets()))
        except Exception as exc:
            outcome.append(exc)

    leaving = await make_client(b, name="leaving")
    staying = await make_client(b, name="staying")
    sid = leaving.sid()
    if form == "legacy":
        await a.adapter.remote_disconnect(sid)
    else:
        await a.adapter.disconnect_sockets(to=sid)
    await leaving.wait_disconnected()
    await a.sio.emit("still-there", 1)
    assert await staying.wait_for("still-there") == [[1]]
    release.set()
    await wait_until(lambda: bool(outcome), timeout=10)
    # The handler runs before the socket is forgotten, so it still sees itself.
    assert outcome == [sorted([sid, staying.sid()])]
    assert b.adapter.stats["pending_requests"] == 0


async def _bad_answerer(url: str, key: str, answers: list[dict[str, Any]]) -> None:
    """Looks like one more server on namespace '/', and answers every request with the next
    of ``answers`` (plus its requestId)."""
    client = redis.asyncio.Redis.from_url(url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(f"{key}-request#/#", f"{key}-response#/#spy1#")
        async for message in pubsub.listen():
            if message["type"] != "message" or not answers:
                continue
            request = json.loads(message["data"])
            answer = {**answers.pop(0), "requestId": request["requestId"], "uid": "spy1"}
            await client.publish(f"{key}-response#/#", json.dumps(answer))
    finally:
        with anyio.CancelScope(shield=True):
            await pubsub.aclose()
            await client.aclose()


async def test_unusable_answers_are_counted_and_logged_once_a_second(
    make_node, make_client, redis_server, key, caplog
):
    """Answers without the expected field end the wait, are counted in stats
    ("unusable_answers") and logged at most once a second, without traceback."""
    a = await make_node()
    client = await make_client(a)
    answers: list[dict[str, Any]] = [{"rooms": 5}, {"sockets": 7}, {}]
    async with anyio.create_task_group() as tg:
        tg.start_soon(_bad_answerer, redis_server.url, key, answers)
        with anyio.fail_after(10):
            while await a.adapter.server_count() < 2:
                await anyio.sleep(0.01)
        caplog.set_level(logging.WARNING, logger="socketio_redis_async")
        with anyio.fail_after(1.5):  # less than requests_timeout: nothing waits for a timeout
            assert await a.adapter.all_rooms() == {client.sid()}
            assert await a.adapter.clients() == [client.sid()]
            assert [s.id for s in await a.adapter.fetch_sockets()] == [client.sid()]
        tg.cancel_scope.cancel()
    assert a.adapter.stats["unusable_answers"] == 3
    assert a.adapter.stats["pending_requests"] == 0
    lines = [r for r in caplog.records if "unusable answer" in r.getMessage()]
    assert len(lines) == 1
    assert "spy1" in lines[0].getMessage() and lines[0].exc_info is None


async def test_remote_ack_callbacks_expire_on_the_receiving_server(make_node, make_client):
    """Ack callbacks a remote emit left on the client's server go away after the requester's
    timeout when the client never acks; an ack that comes in time still reaches the caller."""
    a = await make_node(ack_timeout=1)
    b = await make_node()
    client = await make_client(b)
    client.never_ack.add("ask")
    sid = client.sid()
    callbacks = b.sio.manager.callbacks

    def waiting() -> int:
        return len([k for k in callbacks.get(sid, {}) if k != 0])

    for _ in range(3):  # emit(callback=): expires after the sender's ack_timeout
        await a.sio.emit("ask", to=sid, callback=lambda *args: None)
    await wait_until(lambda: waiting() == 3, what="callbacks registered on b")
    await wait_until(lambda: waiting() == 0, timeout=5, what="remote ack callbacks expired")
    async with anyio.create_task_group() as tg:  # emit_with_ack: after its own timeout

        async def ask() -> None:
            with pytest.raises(RequestTimeoutError):
                await a.adapter.emit_with_ack("ask", to=sid, timeout=1)

        tg.start_soon(ask)
        await wait_until(lambda: waiting() == 1, what="callback registered on b")
    await wait_until(lambda: waiting() == 0, timeout=5, what="remote ack callback expired")
    client.ack_value = lambda event, args: "pong"
    got: list[Any] = []
    await a.sio.emit("ok", to=sid, callback=got.append)
    await wait_until(lambda: got == ["pong"])
    assert await a.adapter.emit_with_ack("ok", to=sid, timeout=2) == ["pong"]
    assert waiting() == 0
