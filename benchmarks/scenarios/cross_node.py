"""Scenarios 1 and 2: cross-node broadcast throughput and latency.

Server A emits to a room whose K clients are on server B (K = 1 and 20), as fast as
it can (awaiting each emit), and then paced at 500 events/s for the latency. The
single-node case (K = 20 clients on A itself) is each contender's local-emit baseline.
A supplementary case has 16 tasks on A emitting at once (each awaiting its own emits),
as a busy server's handlers would, for the Python contenders. The raw redis-py contender
has no clients: its subscriber process (B) counts and decodes, so it appears once, as the
Python ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cluster import Cluster
from ..config import Config
from ..contenders import ADAPTER, ADAPTER_UVLOOP, NODE, RAW, REDIS_MANAGER
from ..drivers import RawReceiver, Receiver, ServerHandle, node_available
from ..measure import blast_run, events_for
from ..results import Results

THROUGHPUT = "throughput"
LATENCY = "latency"
CONTENDERS = (ADAPTER, ADAPTER_UVLOOP, REDIS_MANAGER, NODE, RAW)
CONCURRENT = 16  # emitting tasks on A in the supplementary case


def case_name(k: int, cross: bool, concurrency: int = 1) -> str:
    name = f"K={k} {'cross-node' if cross else 'single-node'}"
    return name if concurrency == 1 else f"{name}, {concurrency} concurrent emits"


@dataclass
class Case:
    """One throughput case: who sends to which room, who counts, how many recipients."""

    name: str
    sender: ServerHandle
    receiver: Receiver
    room: str
    k: int
    concurrency: int = 1

    async def run(
        self, cluster: Cluster, n: int, rate: float = 0, latency: bool = False
    ) -> dict[str, float]:
        """One metered run of ``n`` events."""
        return await blast_run(
            cluster,
            self.sender,
            self.receiver,
            self.room,
            n,
            self.k,
            rate=rate,
            concurrency=self.concurrency,
            latency=latency,
        )


async def run(config: Config, results: Results) -> None:
    for contender in CONTENDERS:
        if contender == NODE and (why := node_available()):
            results.skipped[NODE] = why
            continue
        print(f"[cross-node] {contender}", flush=True)
        async with Cluster(contender) as cluster:
            cases = await _cases(cluster, contender, config)
            await _throughput(cluster, contender, cases, config, results)
            await _latency(cluster, contender, cases, config, results)


async def _cases(cluster: Cluster, contender: str, config: Config) -> list[Case]:
    if contender == RAW:
        return [Case(case_name(1, True), cluster.a, RawReceiver(cluster.b), "raw", 1)]
    cases = []
    for k in config.k_values:
        await cluster.load.connect(f"k{k}", cluster.b, k, [f"k{k}"])
        cases.append(Case(case_name(k, True), cluster.a, cluster.load.group(f"k{k}"), f"k{k}", k))
    k = max(config.k_values)
    await cluster.load.connect("local", cluster.a, k, ["local"])
    cases.append(Case(case_name(k, False), cluster.a, cluster.load.group("local"), "local", k))
    if contender != NODE:  # Node's emits never wait: they are always "concurrent"
        group = cluster.load.group(f"k{k}")
        name = case_name(k, True, CONCURRENT)
        cases.append(Case(name, cluster.a, group, f"k{k}", k, CONCURRENT))
    return cases


async def _throughput(
    cluster: Cluster, contender: str, cases: list[Case], config: Config, results: Results
) -> None:
    for case in cases:

        async def run_once(n: int, case: Case = case) -> dict[str, float]:
            return await case.run(cluster, n)

        n = await events_for(run_once, config)
        for rep in range(config.reps):
            metrics = await case.run(cluster, n)
            results.add(THROUGHPUT, contender, case.name, rep, **metrics)


async def _latency(
    cluster: Cluster, contender: str, cases: list[Case], config: Config, results: Results
) -> None:
    k = max(config.k_values) if contender != RAW else 1
    case = next(c for c in cases if c.k == k and c.concurrency == 1)
    n = int(config.latency_rate * config.latency_seconds)
    for rep in range(config.reps):
        metrics = await case.run(cluster, n, rate=config.latency_rate, latency=True)
        results.add(LATENCY, contender, case.name, rep, **metrics)
