"""Connection-state recovery on the in-memory transport (one process, no Redis): the
same engine code, with a ``MemorySessionStore`` on the hub, driven by real python-socketio
servers and in-process clients that send the pid and offset a JS client would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from socketio_redis_async import ConnectionStateRecovery
from socketio_redis_async._recovery.memory_store import MemorySessionStore
from tests.unit_cluster import UnitCluster, UnitServer, open_cluster, received

pytestmark = [pytest.mark.anyio, pytest.mark.unit]


@pytest.fixture
async def cluster() -> AsyncIterator[UnitCluster]:
    async with open_cluster() as cluster:
        yield cluster


async def recovering(cluster: UnitCluster, store: MemorySessionStore) -> UnitServer:
    server = await cluster.add("streams")
    server.mgr._recover_connections(
        ConnectionStateRecovery(5),
        store,
        key_prefix="sio:session:",
        stream_of=server.engine.wire.stream_of,  # type: ignore[attr-defined]
        offset=lambda stream: None,
        max_len=1000,
    )
    return server


async def test_a_dropped_client_recovers_on_another_in_memory_server(cluster):
    """Same sid, rooms and data; the missed broadcasts once, in order, with offsets; an
    excepted one not; the wrong pid gets a new session."""
    store = MemorySessionStore(cluster.hub)
    a, b = await recovering(cluster, store), await recovering(cluster, store)
    client = await cluster.connect(a)
    sid = client.sid()
    assert a.mgr._recovery is not None
    pid = a.mgr._recovery.pid_of("/", sid)
    assert pid is not None and not a.mgr.recovered(sid)
    await a.sio.enter_room(sid, "room1")
    a.mgr.set_socket_data(sid, {"user": "u1"})
    with pytest.raises(TypeError, match="msgpack"):
        a.mgr.set_socket_data(sid, {1, 2})
    await a.sio.emit("e", 1)
    await client.wait_until(lambda: len(received(client, "e")) == 1)
    offset = received(client, "e")[0][-1]
    await client.drop()
    await cluster.until(lambda: sid not in a.sids())
    await b.sio.emit("e", 2, to="room1")
    await b.sio.emit("x", 0, skip_sid="room1")
    await a.sio.emit("e", 3)
    again = await cluster.connect(b, auth={"pid": pid, "offset": offset})
    assert again.sid() == sid and b.mgr.recovered(sid)
    assert b.rooms(sid) == {sid, "room1"} and b.mgr.get_socket_data(sid) == {"user": "u1"}
    await b.sio.emit("e", 4)
    await again.wait_until(lambda: len(received(again, "e")) == 3)
    got = received(again, "e")
    assert [args[0] for args in got] == [2, 3, 4] and len({args[-1] for args in got}) == 3
    assert received(again, "x") == []
    stranger = await cluster.connect(b, auth={"pid": "forged", "offset": offset})
    assert not b.mgr.recovered(stranger.sid()) and b.mgr.stats["recovery_failures"] == 1
