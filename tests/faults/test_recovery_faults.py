"""Connection-state recovery when Redis refuses the session writes: clients still connect."""

from __future__ import annotations

import pytest
import redis.asyncio

from tests.helpers import wait_until_async
from tests.recovery import start_recovering

pytestmark = pytest.mark.anyio


async def test_a_refused_session_write_does_not_refuse_the_connection(own_redis, make_client, key):
    """Redis out of memory at CONNECT: the socket connects, the failure is counted, and the
    session is stored by the next refresh once Redis takes writes again."""
    node = await start_recovering(own_redis.url, key, window=3.0)
    admin = redis.asyncio.Redis.from_url(own_redis.url)
    try:
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")
        client = await make_client(node)
        assert client.sid() in node.sids()
        assert node.adapter.stats["recovery_store_errors"] >= 1
        await admin.config_set("maxmemory", "0")
        sessions = "sio:session:*"
        await wait_until_async(lambda found: len(found) == 1, lambda: admin.keys(sessions))
    finally:
        await admin.aclose()
        await node.aclose()
