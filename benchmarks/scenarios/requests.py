"""Scenario 5: cluster-wide requests. ``all_rooms()`` and ``fetch_sockets()`` latency
(p50/p99) from server 0 with 2, 4 and 8 servers, each its own OS process, each with a
few connected clients in a few rooms. Node's ``allRooms()``/``fetchSockets()`` for
comparison. python-socketio's AsyncRedisManager has no such requests."""

from __future__ import annotations

from ..cluster import Cluster
from ..config import Config
from ..contenders import ADAPTER, NODE
from ..drivers import ServerHandle, node_available
from ..results import Results
from ..stats import percentile

REQUESTS = "requests"
CONTENDERS = (ADAPTER, NODE)
KINDS = ("all_rooms", "fetch_sockets")
ROOMS_PER_CLIENT = 3
WARMUP = 5


def case_name(kind: str, servers: int) -> str:
    return f"{kind} S={servers}"


async def run(config: Config, results: Results) -> None:
    for contender in CONTENDERS:
        if contender == NODE and (why := node_available()):
            results.skipped[NODE] = why
            continue
        print(f"[requests] {contender}", flush=True)
        async with Cluster(contender, servers=0) as cluster:
            for servers in config.request_servers:
                added = await cluster.add_servers(servers - len(cluster.servers))
                for server in added:
                    await _populate(cluster, server, config.clients_per_server)
                first = cluster.servers[0]
                for kind in KINDS:
                    await first.requests(kind, WARMUP)
                    for rep in range(config.reps):
                        durations = sorted(await first.requests(kind, config.requests_per_rep))
                        results.add(
                            REQUESTS,
                            contender,
                            case_name(kind, servers),
                            rep,
                            p50_ms=percentile(durations, 50) * 1000,
                            p99_ms=percentile(durations, 99) * 1000,
                            max_ms=durations[-1] * 1000,
                        )


async def _populate(cluster: Cluster, server: ServerHandle, clients: int) -> None:
    index = cluster.servers.index(server)
    for i in range(clients):
        rooms = [f"s{index}-c{i}-r{j}" for j in range(ROOMS_PER_CLIENT)]
        await cluster.load.connect(f"s{index}", server, 1, rooms)
