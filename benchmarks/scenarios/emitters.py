"""Scenario 7: an emitter process (no Socket.IO server) on asyncio and on uvloop.

An ``AsyncEmitter`` process emits as fast as it can to a room whose K = 20 clients are on
one adapter server: awaiting each emit, then from 16 tasks at once. The same runs with the
emitter process on uvloop. CPU per event for the emitter, the receiving server and Redis.
"""

from __future__ import annotations

from ..cluster import Cluster
from ..config import Config
from ..contenders import ADAPTER, EMITTER, EMITTER_UVLOOP
from ..drivers import Receiver, ServerHandle
from ..measure import blast_run, events_for
from ..results import Results
from .cross_node import CONCURRENT

EMITTERS = "emitters"
CONTENDERS = (EMITTER, EMITTER_UVLOOP)


def case_name(k: int, concurrency: int) -> str:
    return f"K={k}" if concurrency == 1 else f"K={k}, {concurrency} concurrent emits"


async def run(config: Config, results: Results) -> None:
    k = max(config.k_values)
    for contender in CONTENDERS:
        print(f"[emitters] {contender}", flush=True)
        async with Cluster(ADAPTER, servers=1) as cluster:
            sender = await cluster.add_sender(contender)
            await cluster.load.connect("k", cluster.a, k, ["k"])
            receiver = cluster.load.group("k")
            for concurrency in (1, CONCURRENT):
                name = case_name(k, concurrency)
                await _case(cluster, sender, receiver, k, concurrency, config, results, name)


async def _case(
    cluster: Cluster,
    sender: ServerHandle,
    receiver: Receiver,
    k: int,
    concurrency: int,
    config: Config,
    results: Results,
    name: str,
) -> None:
    async def once(n: int) -> dict[str, float]:
        return await blast_run(cluster, sender, receiver, "k", n, k, concurrency=concurrency)

    n = await events_for(once, config)
    for rep in range(config.reps):
        results.add(EMITTERS, sender.contender, name, rep, **await once(n))
