"""The pub/sub connection's watchdog: a link that stays silent is a dead link."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
from redis.asyncio.connection import AbstractConnection


async def watch(conn: AbstractConnection, interval: float, last_read: Callable[[], float]) -> None:
    """PING after a silent ``interval``; no data for another interval after it means the
    link is dead (ConnectionError). Time the event loop spent blocked (the reader had no
    turn) is not silence: a tick that comes late never declares the link dead."""
    tick = interval / 4
    loop = asyncio.get_running_loop()
    ping_at: float | None = None
    last_tick = loop.time()
    while True:
        await anyio.sleep(tick)
        now = loop.time()
        stalled, last_tick = now - last_tick > 2 * tick, now
        if ping_at is not None and last_read() >= ping_at:
            ping_at = None  # answered (or other data arrived)
        if ping_at is not None and now - ping_at >= interval and not stalled:
            idle = now - last_read()
            raise ConnectionError(f"no data and no answer to PING for {idle:.1f} s")
        if ping_at is None and now - last_read() >= interval:
            ping_at = now
            await conn.send_packed_command(conn.pack_command("PING"), check_health=False)
