"""Scenario 4: room scaling. R rooms spread over two servers (A holds ceil(R/2), B the
rest), one socket on each server in all of that server's rooms; A emits round-robin to
its own rooms only. What does server B spend on traffic for rooms it does not hold?
With channel multiplexing it should receive nothing at all."""

from __future__ import annotations

from ..cluster import Cluster
from ..config import Config
from ..contenders import ADAPTER, ADAPTER_NOMUX, REDIS_MANAGER
from ..measure import blast_run, events_for
from ..results import Results

ROOMS = "rooms"
CONTENDERS = (ADAPTER, ADAPTER_NOMUX, REDIS_MANAGER)


def case_name(rooms: int) -> str:
    return f"R={rooms}"


async def run(config: Config, results: Results) -> None:
    for contender in CONTENDERS:
        print(f"[rooms] {contender}", flush=True)
        async with Cluster(contender) as cluster:
            await _run_contender(cluster, contender, config, results)


async def _run_contender(
    cluster: Cluster, contender: str, config: Config, results: Results
) -> None:
    await cluster.load.connect("a", cluster.a, 1, [])
    await cluster.load.connect("b", cluster.b, 1, [])
    receiver = cluster.load.group("a")
    held_a = held_b = 0
    for total in config.rooms:
        on_a = (total + 1) // 2
        on_b = total - on_a
        if on_a > held_a:
            await cluster.a.join("ra", held_a, on_a - held_a)
        if on_b > held_b:
            await cluster.b.join("rb", held_b, on_b - held_b)
        held_a, held_b = on_a, on_b
        target = f"ra:{on_a}"

        async def run_once(n: int, target: str = target) -> dict[str, float]:
            return await blast_run(cluster, cluster.a, receiver, target, n, 1)

        n = await events_for(run_once, config)
        for rep in range(config.reps):
            metrics = await run_once(n)
            results.add(ROOMS, contender, case_name(total), rep, **metrics)
