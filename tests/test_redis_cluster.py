"""The classic adapter on a real Redis Cluster (3 masters, 3 replicas, redis-server 7).

Each server is pointed at a different node: broadcasts cross the cluster bus, and counting
servers must ask every node (PUBSUB NUMSUB per node is socket.io-redis-adapter#210).
"""

from __future__ import annotations

import asyncio

import anyio
import pytest
import redis.asyncio

from socketio_redis_async._transport.cluster_nodes import parse_nodes
from tests.helpers import Node, acl_log_entries, wait_until
from tests.node_harness import NodeServer
from tests.rediscluster import RedisCluster
from tests.test_acl import server_rules

pytestmark = pytest.mark.anyio


async def test_servers_on_different_nodes_broadcast_and_count_each_other(
    redis_cluster: RedisCluster, key, make_client
):
    """Two servers on different nodes exchange broadcasts, and requests see both of them."""
    a = await Node.start(redis_cluster.url(0), key)
    b = await Node.start(redis_cluster.url(4), key)
    try:
        assert redis_cluster.node_of(f"socketio-redis-async:{a.adapter.uid}:sub").port != (
            redis_cluster.node_of(f"socketio-redis-async:{b.adapter.uid}:sub").port
        )
        ca, cb = await make_client(a), await make_client(b)
        await b.sio.enter_room(cb.sid(), "lobby")
        await a.sio.emit("from-a", 1)
        await b.sio.emit("from-b", 2)
        await a.sio.emit("room", 3, to="lobby")
        assert await cb.wait_for("from-a") == [[1]] and await ca.wait_for("from-b") == [[2]]
        assert await cb.wait_for("room") == [[3]] and ca.received("room") == []
        assert await a.adapter.server_count() == 2 and await b.adapter.server_count() == 2
        found = {s.id: s for s in await a.adapter.fetch_sockets()}
        assert set(found) == {ca.sid(), cb.sid()} and "lobby" in found[cb.sid()].rooms
        assert "lobby" in await a.adapter.all_rooms()
        await a.adapter.sockets_join("vip", to=cb.sid())
        await wait_until(lambda: "vip" in b.sio.rooms(cb.sid()))
    finally:
        await a.aclose()
        await b.aclose()


async def test_one_servers_messages_keep_their_order_across_nodes(
    redis_cluster: RedisCluster, key, make_client
):
    """Broadcasts then a request, sent at once from one node, arrive in order on another."""
    a = await Node.start(redis_cluster.url(1), key)
    b = await Node.start(redis_cluster.url(5), key)
    try:
        cb = await make_client(b)
        await asyncio.gather(*(a.sio.emit("n", i) for i in range(200)))
        await a.adapter.disconnect_sockets(to=cb.sid())
        with anyio.fail_after(10):
            await cb.disconnected.wait()
        assert cb.received("n") == [[i] for i in range(200)]
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_standalone_redis_is_not_taken_for_a_cluster(make_node, make_client):
    """On a single Redis the adapter stays on its URL: no node list, no fan-out."""
    a, b = await make_node(), await make_node()
    ca = await make_client(a)
    await b.sio.emit("hi", 1)
    assert await ca.wait_for("hi") == [[1]]
    assert await a.adapter.server_count() == 2
    assert not a.adapter._engine.transport._cluster.enabled


@pytest.mark.interop
async def test_python_and_node_classic_adapters_interoperate_on_the_cluster(
    redis_cluster: RedisCluster, key, make_client
):
    """A Python server and a Node one (node-redis cluster client) broadcast and fetch both ways."""
    py = await Node.start(redis_cluster.url(1), key)  # a master: Node counts masters only
    js = await NodeServer.start(redis_cluster.url(0), key, cluster=True)
    try:
        cp, cj = await make_client(py, name="py"), await make_client(js, name="js")
        await js.cmd("emit", event="from-js", args=[1])
        await py.sio.emit("from-py", 2)
        assert await cp.wait_for("from-js") == [[1]] and await cj.wait_for("from-js") == [[1]]
        assert await cj.wait_for("from-py") == [[2]] and await cp.wait_for("from-py") == [[2]]
        assert await py.adapter.server_count() == 2 and await js.cmd("serverCount") == 2
        assert {s.id for s in await py.adapter.fetch_sockets()} == {cp.sid(), cj.sid()}
        assert {s["id"] for s in await js.cmd("fetchSockets")} == {cp.sid(), cj.sid()}
    finally:
        await py.aclose()
        await js.aclose()
    assert js.errors == [], f"the Node server reported errors: {js.errors}"


async def test_a_redis_cluster_client_is_accepted(redis_cluster: RedisCluster, key, make_client):
    """pub_client/sub_client may be redis.asyncio.RedisCluster; it is used, never closed."""
    clients = [redis.asyncio.RedisCluster.from_url(redis_cluster.url(i)) for i in (2, 3)]
    a = await Node.start(redis_cluster.url(0), key)
    b = await Node.start("redis://127.0.0.1:1/0", key, pub_client=clients[0], sub_client=clients[1])
    try:
        ca, cb = await make_client(a), await make_client(b)
        await a.sio.emit("to-b", 1)
        await b.sio.emit("to-a", 2)
        assert await cb.wait_for("to-b") == [[1]] and await ca.wait_for("to-a") == [[2]]
        assert await b.adapter.server_count() == 2
        assert {s.id for s in await b.adapter.fetch_sockets()} == {ca.sid(), cb.sid()}
    finally:
        await a.aclose()
        await b.aclose()
    for client in clients:
        assert await client.ping()  # still usable: the adapter did not close it
        await client.aclose()


@pytest.mark.unit
def test_cluster_nodes_reply_is_parsed_masters_first_without_failed_nodes():
    """CLUSTER NODES: masters before replicas, failed/handshake nodes left out, ':port' is here."""
    reply = (
        "a1 127.0.0.1:7001@17001 slave m1 0 1 3 connected\n"
        "m1 127.0.0.1:7000@17000,host-a myself,master - 0 1 1 connected 0-5460\n"
        "m2 127.0.0.1:7002@17002 master,fail - 0 1 2 disconnected\n"
        "m3 :7003@17003 master - 0 1 2 connected 5461-16383\n"
        "h1 127.0.0.1:7004@17004 handshake - 0 1 0 connected\n"
    )
    assert parse_nodes(reply, ("10.0.0.9", 7003)) == [
        ("10.0.0.9", 7003),
        ("127.0.0.1", 7000),
        ("127.0.0.1", 7001),
    ]


async def test_documented_acl_rules_suffice_on_a_cluster(
    redis_cluster: RedisCluster, key, make_client
):
    """The README's server rules plus +cluster|nodes: servers count each other, no refusal."""
    user = f"srv{key}"
    for node in redis_cluster.nodes:  # ACL users are per node
        rules = [*server_rules(key), "+cluster|nodes"]
        redis_cluster.command(node, "ACL", "SETUSER", user, "reset", "on", ">pw", *rules)
    urls = [f"redis://{user}:pw@127.0.0.1:{redis_cluster.nodes[i].port}/0" for i in (0, 4)]
    a, b = await Node.start(urls[0], key), await Node.start(urls[1], key)
    try:
        ca, cb = await make_client(a), await make_client(b)
        await a.sio.emit("hi", 1)
        assert await cb.wait_for("hi") == [[1]]
        assert await a.adapter.server_count() == 2 and await b.adapter.server_count() == 2
        assert {s.id for s in await b.adapter.fetch_sockets()} == {ca.sid(), cb.sid()}
    finally:
        await a.aclose()
        await b.aclose()
    for node in redis_cluster.nodes:
        log = redis_cluster.command(node, "ACL", "LOG")
        assert isinstance(log, list)
        entries = acl_log_entries(log)
        refused = [
            e for e in entries if e["username"] == user and not e["object"].startswith("client")
        ]
        assert refused == []
