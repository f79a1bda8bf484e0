"""A benchmark cluster and one measured run in it.

``Cluster``: a fresh redis-server, N servers of one contender, a load-client process, and
a CPU meter over all of their pids; ``async with`` always cleans up. ``blast_run``: the
sender emits, a receiver counts, every process's CPU is metered. ``max_rate``: calibrate,
then repeat ``blast_run`` and record each repetition. ``Cluster.redis_memory``: what
Redis holds (``used_memory``, and the streams contenders' stream).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from redis.asyncio import Redis

from .children import Child, CpuMeter, Processes
from .config import Config
from .contenders import RAW, REDIS_MANAGER, STREAMS_CONTENDERS
from .results import Results

KEY = "bench"


@dataclass
class Receiver:
    """Whoever counts the events of a run: a group of load-client connections, or the
    raw contender's subscriber (``arm``/``wait``/``stats``, see ``loadclients.Counters``)."""

    child: Child
    group: str = ""

    async def arm(self, total: int, latency: bool) -> None:
        await self.child.call("arm", group=self.group, total=total, latency=latency)

    async def wait(self, timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.child.call(
            "wait", bound=timeout + 30, group=self.group, timeout=timeout
        )
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.child.call("stats", group=self.group)
        return result


class Cluster:
    """Redis + ``servers`` servers of ``contender`` + a load client, all on 127.0.0.1."""

    def __init__(self, contender: str, servers: int = 2, shards: int = 0) -> None:
        """``shards``: a Redis Cluster of that many masters instead of one Redis; server
        ``i`` then connects to master ``i`` (A and B to different nodes)."""
        self.contender = contender
        self._initial = servers
        self._shards = shards
        self.redis_urls: list[str] = []
        self.procs = Processes()
        self.meter = CpuMeter()
        self.servers: list[Child] = []
        self.redis_url = ""
        self.stream = f"{KEY}-stream-{secrets.token_hex(4)}"
        """The Redis stream of the streams contenders: a new one for every cluster."""
        self._load: Child | None = None

    @property
    def a(self) -> Child:
        return self.servers[0]

    @property
    def b(self) -> Child:
        return self.servers[1]

    async def __aenter__(self) -> Cluster:
        try:
            nodes = (
                self.procs.start_redis_cluster(self._shards)
                if self._shards
                else [self.procs.start_redis()]
            )
            self.redis_urls = [node.url for node in nodes]
            self.redis_url = self.redis_urls[0]
            for index, node in enumerate(nodes):
                assert node._proc is not None
                self.meter.add("redis", node._proc.pid)
                self.meter.add(f"redis node {index}", node._proc.pid)
            await self.add_servers(self._initial)
            self._load = await self.procs.worker("loadclient", "clients")
            self.meter.add("clients", self._load.pid)
        except BaseException:
            await self.procs.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.procs.aclose()

    async def add_servers(self, count: int) -> list[Child]:
        """Start ``count`` more servers; the first two are metered as server A and B."""
        first = len(self.servers)
        added = await asyncio.gather(
            *(
                self.procs.server(
                    f"{self.contender}-{first + i}",
                    self.contender,
                    self.redis_urls[(first + i) % len(self.redis_urls)],
                    KEY,
                    cluster=self._shards > 0,
                    stream=self.stream,
                )
                for i in range(count)
            )
        )
        for server in added:
            role = {0: "server A", 1: "server B"}.get(len(self.servers), "other servers")
            self.meter.add(role, server.pid)
            self.servers.append(server)
        await self._wait_subscribers()
        return list(added)

    async def add_sender(self, contender: str) -> Child:
        """Start one emitter process (no Socket.IO server), metered as "emitter"."""
        sender = await self.procs.server(
            contender, contender, self.redis_url, KEY, stream=self.stream
        )
        self.meter.add("emitter", sender.pid)
        return sender

    async def connect(self, group: str, server: Child, n: int, rooms: list[str]) -> Receiver:
        """Open ``n`` load-client connections to ``server`` that join ``rooms``; their
        events count towards ``group``."""
        assert self._load is not None
        args = {"group": group, "port": server.port, "n": n, "rooms": rooms}
        await self._load.call("connect", bound=120, **args)
        return Receiver(self._load, group)

    async def wait_shard_channels(self, channels: list[str]) -> None:
        """Node subscribes a room's sharded channel without waiting: before a run, wait
        until every node together counts a subscriber on each of ``channels``."""
        clients = [Redis.from_url(url) for url in self.redis_urls]
        try:
            for _ in range(1000):
                counts = [0] * len(channels)
                for client in clients:
                    command = client.execute_command("PUBSUB", "SHARDNUMSUB", *channels)  # type: ignore[no-untyped-call]
                    reply = await command
                    for i in range(len(channels)):
                        counts[i] += int(reply[2 * i + 1])
                if all(counts):
                    return
                await asyncio.sleep(0.01)
            raise RuntimeError(f"{self.contender}: sharded channels were not subscribed")
        finally:
            for client in clients:
                await client.aclose()

    async def redis_memory(self) -> dict[str, float]:
        """``used_memory`` of the (first) Redis in bytes; for the streams contenders also
        the stream's ``XLEN`` and ``MEMORY USAGE <stream> SAMPLES 0`` (every listpack
        counted, not an estimate from a sample)."""
        redis = Redis.from_url(self.redis_url)
        try:
            info = await redis.info("memory")
            found = {"used_memory": float(info["used_memory"])}
            if self.contender in STREAMS_CONTENDERS:
                found["stream_entries"] = float(await redis.xlen(self.stream))
                usage = await redis.memory_usage(self.stream, samples=0)
                found["stream_bytes"] = float(usage or 0)
            return found
        finally:
            await redis.aclose()

    async def _wait_subscribers(self) -> None:
        """python-socketio's AsyncRedisManager and raw redis-py subscribe in the
        background: wait until Redis counts every server on their channel."""
        if self.contender not in (REDIS_MANAGER, RAW):
            return
        channel = KEY if self.contender == REDIS_MANAGER else f"{KEY}#raw"
        redis = Redis.from_url(self.redis_url)
        try:
            for _ in range(1000):
                counts = await redis.pubsub_numsub(channel)
                if counts and int(counts[0][1]) >= len(self.servers):
                    return
                await asyncio.sleep(0.01)
            raise RuntimeError(f"{self.contender}: servers did not subscribe to {channel}")
        finally:
            await redis.aclose()


@dataclass(frozen=True)
class Blast:
    """One kind of run: ``sender`` emits to ``room`` from ``concurrency`` tasks (each
    awaiting its own emits), ``recipients`` sockets get each event, ``receiver`` counts."""

    sender: Child
    receiver: Receiver
    room: str
    recipients: int
    concurrency: int = 1


async def blast_run(
    cluster: Cluster,
    blast: Blast,
    n: int,
    *,
    rate: float = 0,
    latency: bool = False,
    timeout: float = 120,
) -> dict[str, float]:
    """Emit ``n`` events as ``blast`` says, at most ``rate`` per second (0: max rate).

    Returns rates over the wall time from the first emit to the last delivery, CPU
    microseconds per emitted event for every metered process, the load clients' CPU
    utilisation, and (with ``latency``) publish-to-client percentiles in milliseconds.
    """
    receiver = blast.receiver
    await receiver.arm(n * blast.recipients, latency)
    before = cluster.meter.snapshot()
    t0 = time.time()
    args = {"n": n, "room": blast.room, "rate": rate, "concurrency": blast.concurrency}
    sent = await blast.sender.call("blast", bound=timeout, **args)
    got = await receiver.wait(timeout)
    after = cluster.meter.snapshot()
    wall = max(float(got["t_last"]) - t0, 1e-9)
    metrics = {
        "events": float(n),
        "msgs_per_s": n / wall,
        "deliveries_per_s": float(got["received"]) / wall,
        "wall_s": wall,
        "send_s": float(sent["elapsed"]),
        "complete": 1.0 if got["complete"] else 0.0,
    }
    for role, seconds in cluster.meter.delta(before, after).items():
        key = role.replace(" ", "_")
        metrics[f"cpu_us_{key}"] = seconds / n * 1e6
        metrics[f"cpu_util_{key}"] = seconds / wall
    if latency:
        stats = await receiver.stats()
        for name in ("p50", "p90", "p99", "max"):
            if name in stats:
                metrics[f"lat_{name}_ms"] = float(stats[name]) * 1000
    if not got["complete"]:
        print(f"  !! incomplete: {got['received']} of {got['expected']} deliveries", flush=True)
    return metrics


async def events_for(probe: Callable[[int], Awaitable[dict[str, float]]], config: Config) -> int:
    """How many events make a run last ``config.run_seconds``: ``probe(n)`` runs ``n``
    events as calibration (and warm-up) and its rate decides."""
    if config.fixed is not None:
        return config.fixed
    measured = await probe(config.calibrate)
    wanted = int(measured["msgs_per_s"] * config.run_seconds)
    return max(config.min_events, min(config.max_events, wanted))


async def max_rate(
    cluster: Cluster, config: Config, results: Results, key: tuple[str, str, str], blast: Blast
) -> None:
    """Calibrate, then record ``config.reps`` max-rate runs as (scenario, contender, case)."""

    async def once(n: int) -> dict[str, float]:
        return await blast_run(cluster, blast, n)

    scenario, contender, case = key
    n = await events_for(once, config)
    for rep in range(config.reps):
        results.add(scenario, contender, case, rep, **await once(n))
