"""A peer server in another OS process SIGKILLed while a cluster request waits for it."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from socketio_redis_async import RequestTimeoutError
from tests.helpers import Client, Node, ServerProcess, start_server_process, wait_until

pytestmark = pytest.mark.anyio

TIMEOUT = 1.0
SLACK = 2.0


@pytest.fixture
async def start_peer() -> AsyncIterator[Callable[[str, str], Awaitable[ServerProcess]]]:
    """Start ``tests/server_process.py`` processes; kill whatever is left at the end."""
    peers: list[ServerProcess] = []

    async def start(redis_url: str, key: str) -> ServerProcess:
        peer = await start_server_process(redis_url, key)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        await peer.aclose(grace=0)


REQUESTS: dict[str, Callable[[Node, str], Awaitable[Any]]] = {
    "all_rooms": lambda a, sid: a.adapter.all_rooms(),
    "fetch_sockets": lambda a, sid: a.adapter.fetch_sockets(),
    "clients": lambda a, sid: a.adapter.clients(),
    "server_side_emit_with_ack": lambda a, sid: a.adapter.server_side_emit_with_ack("ping"),
    "emit_with_ack": lambda a, sid: a.adapter.emit_with_ack("q"),
    "custom_request": lambda a, sid: a.adapter.custom_request(1),
    "remote_join": lambda a, sid: a.adapter.remote_join(sid, "room"),
}


@pytest.mark.parametrize("kind", sorted(REQUESTS))
async def test_peer_killed_mid_request(kind, make_node, start_peer, redis_server, key, reliability):
    """A request in flight when its peer is SIGKILLed ends within requests_timeout with
    RequestTimeoutError naming the dead server, and leaves nothing pending."""
    a = await make_node(requests_timeout=TIMEOUT)
    peer = await start_peer(redis_server.url, key)
    client = Client("on-peer")
    await client.sio.connect(peer.url, transports=["websocket"], wait_timeout=5)
    try:
        sid = client.sid()
        assert await a.adapter.server_count() == 2
        await REQUESTS[kind](a, sid)  # while the peer lives, the request succeeds
        peer.signal(signal.SIGSTOP)
        published = a.adapter.stats["published"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.ensure_future(REQUESTS[kind](a, sid))

        def in_flight() -> bool:
            stats = a.adapter.stats
            waiting = stats["pending_requests"] + stats["pending_acks"]
            return bool(waiting > 0 and stats["published"] > published)

        await wait_until(in_flight, what="request published")
        peer.signal(signal.SIGKILL)
        with anyio.fail_after(TIMEOUT + SLACK), pytest.raises(RequestTimeoutError) as info:
            await task
        took = loop.time() - started
        assert peer.uid in info.value.silent_servers
        await wait_until(
            lambda: a.adapter.stats["pending_requests"] + a.adapter.stats["pending_acks"] == 0
        )
        reliability.record(
            f"peer_kill.{kind}",
            round(took, 2),
            "s",
            f"{kind}() with its peer SIGKILLed mid-request, until RequestTimeoutError",
            f"requests_timeout ({TIMEOUT:g} s) + {SLACK:g} s",
        )
    finally:
        await client.aclose()
        await client.sio.eio.disconnect(abort=True)  # its HTTP session, after the peer died
