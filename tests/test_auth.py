"""Password/ACL authentication, and errors Redis returns for a PUBLISH."""

from __future__ import annotations

import pytest
import redis.asyncio

from socketio_redis_async import PublishError
from tests.helpers import Node

pytestmark = pytest.mark.anyio


async def test_acl_user_runs_a_cluster(redis_server, redis_client, key, make_client):
    """An ACL user limited to the cluster's channels runs servers; the password stays hidden."""
    user = f"u{key}"
    await redis_client.execute_command(
        "ACL", "SETUSER", user, "on", ">s3cret", "~*", "resetchannels", f"&{key}*", "+@all"
    )
    url = f"redis://{user}:s3cret@127.0.0.1:{redis_server.port}/0"
    a, b = await Node.start(url, key), await Node.start(url, key)
    try:
        client = await make_client(b)
        await a.sio.emit("authed", 1)
        assert await client.wait_for("authed") == [[1]]
        assert "s3cret" not in repr(a.adapter._engine.transport.where)
    finally:
        await a.aclose()
        await b.aclose()


async def test_refused_publish_is_raised_to_the_caller(
    redis_server, redis_client, key, make_node, make_client
):
    """A PUBLISH that Redis refuses (ACL NOPERM) raises PublishError from emit()."""
    user = f"p{key}"
    await redis_client.execute_command(
        "ACL", "SETUSER", user, "on", ">pw", "~*", "resetchannels", "&elsewhere*", "+@all"
    )
    pub = redis.asyncio.Redis.from_url(f"redis://{user}:pw@127.0.0.1:{redis_server.port}/0")
    node = await make_node(pub_client=pub)
    local = await make_client(node)
    with pytest.raises(PublishError, match="NOPERM|No permissions"):
        await node.sio.emit("refused", 1)
    assert await local.wait_for("refused") == [[1]]  # local delivery happened first
    await node.sio.emit("only-local", to=local.sid())  # a local sid: no PUBLISH at all
    assert await local.wait_for("only-local") == [[]]
    await pub.aclose()  # the adapter only borrowed its settings
