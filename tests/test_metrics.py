"""Prometheus metrics served over real HTTP from a real cluster, parsed by prometheus_client."""

from __future__ import annotations

import asyncio
import math

import aiohttp
import anyio
import prometheus_client
import pytest
import socketio
import uvicorn
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from socketio_redis_async import (
    AsyncRedisAdapter,
    AsyncStreamsRedisAdapter,
    ConnectionStateRecovery,
    PrometheusCollector,
    metrics_app,
    metrics_handler,
    prometheus_text,
)
from socketio_redis_async._metrics import STATS
from tests.helpers import Node, wait_until

pytestmark = pytest.mark.anyio


def parse(text: str) -> dict[str, dict[str, float]]:
    """{series name: {server uid: value}} from a Prometheus text exposition."""
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if "le" in sample.labels:
                name += f"[le={sample.labels['le']}]"
            found.setdefault(name, {})[sample.labels["server"]] = sample.value
    return found


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await resp.text()


@pytest.mark.unit
def test_every_stat_is_a_metric():
    """Each key of adapter.stats has a metric, so a new counter cannot go unexported: the
    streams adapter with recovery has them all, without it all but recovery's, the others
    all but the stream readers' and recovery's."""
    recovery = AsyncStreamsRedisAdapter(connection_state_recovery=ConnectionStateRecovery())
    assert set(recovery.stats) == set(STATS)
    mine = {k for k in STATS if k.startswith("recover")}
    assert set(AsyncStreamsRedisAdapter().stats) == set(STATS) - mine
    classic = set(AsyncRedisAdapter().stats)
    assert classic == {k for k in STATS if not k.startswith("stream_")} - mine


async def test_aiohttp_route_serves_the_cluster_metrics(make_node, make_client):
    """An aiohttp /metrics route shows publishes, latency, health and subscriptions per server."""
    a, b = await make_node(), await make_node()
    client = await make_client(b)
    for i in range(20):
        await a.sio.emit("tick", i)
    await client.wait_for("tick", count=20)

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(a.adapter, b.adapter))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        port = runner.addresses[0][1]
        found = parse(await scrape(f"http://127.0.0.1:{port}/metrics"))
    finally:
        await runner.cleanup()

    ua, ub = a.adapter.uid, b.adapter.uid
    assert found["socketio_redis_published_total"][ua] >= 20
    assert found["socketio_redis_healthy"] == {ua: 1.0, ub: 1.0}
    assert found["socketio_redis_subscribed_channels"][ub] == b.adapter.stats["subscribed_channels"]
    count = found["socketio_redis_publish_latency_seconds_count"][ua]
    assert count == a.adapter.stats["published"] - a.adapter.stats["publish_failures"]
    buckets = [
        v for k, v in found.items() if k.startswith("socketio_redis_publish_latency_seconds_bucket")
    ]
    assert max(bucket[ua] for bucket in buckets) == count  # the +Inf bucket holds them all
    assert found["socketio_redis_publish_latency_seconds_sum"][ua] > 0


async def test_asgi_app_next_to_socketio_under_uvicorn(redis_server, key):
    """metrics_app() mounted as socketio.ASGIApp's other app answers /metrics under uvicorn."""
    adapter = AsyncRedisAdapter(redis_server.url, key=key)
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=adapter)
    app = socketio.ASGIApp(sio, other_asgi_app=metrics_app(adapter))
    # Port 0: uvicorn binds a free one, so no port picked here can be taken meanwhile.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=10)
        port = server.servers[0].sockets[0].getsockname()[1]
        await adapter.start()
        await adapter.of("/").emit("x")
        found = parse(await scrape(f"http://127.0.0.1:{port}/metrics"))
        assert found["socketio_redis_published_total"][adapter.uid] == 1
        assert found["socketio_redis_connected"][adapter.uid] == 1
    finally:
        server.should_exit = True
        with anyio.fail_after(10):
            await task
        await adapter.aclose()


async def test_health_metrics_follow_a_redis_outage(own_redis, key):
    """With Redis killed the healthy gauge drops to 0 and failures count; back to 1 after."""
    node = await Node.start(own_redis.url, key, health_check_interval=0.3, publish_timeout=1)
    try:
        assert parse(prometheus_text(node.adapter))["socketio_redis_healthy"][node.adapter.uid] == 1
        own_redis.kill()
        with pytest.raises(Exception):  # noqa: B017 - PublishError; the metric is the point
            await node.adapter.of("/").emit("lost")
        await wait_until(lambda: not node.adapter.health().healthy, timeout=10)
        found = parse(prometheus_text(node.adapter))
        assert found["socketio_redis_healthy"][node.adapter.uid] == 0
        assert found["socketio_redis_publish_failures_total"][node.adapter.uid] >= 1
        own_redis.start()
        await wait_until(lambda: node.adapter.health().healthy, timeout=15)
        found = parse(prometheus_text(node.adapter))
        assert found["socketio_redis_healthy"][node.adapter.uid] == 1
        assert found["socketio_redis_reconnects_total"][node.adapter.uid] >= 1
    finally:
        await node.aclose()


async def test_prometheus_client_collector(make_node):
    """The prometheus extra's collector exports the same metrics through a real registry."""
    node = await make_node()
    await node.adapter.of("/").emit("x")
    registry = prometheus_client.CollectorRegistry()
    registry.register(PrometheusCollector(node.adapter))
    found = parse(prometheus_client.generate_latest(registry).decode())
    assert found["socketio_redis_published_total"][node.adapter.uid] == 1
    assert found["socketio_redis_healthy"][node.adapter.uid] == 1
    assert math.isnan(found["socketio_redis_seconds_since_contact"][node.adapter.uid]) is False
