"""The scenarios: each ``async def scenario(config, results)`` runs every contender.

See README.md for what each one measures. The case names are part of results.json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from .children import Processes, cluster_unavailable, node_available
from .cluster import KEY, Blast, Cluster, Receiver, blast_run, max_rate
from .config import Config
from .contenders import (
    ADAPTER,
    ADAPTER_NOMUX,
    ADAPTER_PLAIN,
    ADAPTER_QUEUED,
    ADAPTER_UVLOOP,
    ASYNC_MANAGER,
    EMITTER,
    EMITTER_UVLOOP,
    NODE,
    NODE_CONTENDERS,
    NODE_SHARDED,
    NODE_STREAMS,
    NODE_STREAMS_CSR,
    RAW,
    REDIS_MANAGER,
    SHARDED,
    SHARDED_QUEUED,
    STREAMS,
    STREAMS_CSR,
    STREAMS_QUEUED,
)
from .results import Results, percentile

# Scenario names in results.json.
THROUGHPUT, LATENCY, FANOUT, ROOMS = "throughput", "latency", "fanout", "rooms"
REQUESTS, MEMORY, EMITTERS = "requests", "memory", "emitters"
SHARDS, SHARD_LATENCY = "shards", "shard_latency"
REDIS_MEMORY = "redis_memory"
LOOPS = "loops"
SHARD_ROOMS = 64  # rooms A emits to in turn; their clients are on B
SHARD_COUNTS = (0, 3)  # a standalone Redis, then a cluster of 3 masters
CONCURRENT = 16  # emitting tasks on the sender in the "concurrent emits" cases
REQUEST_KINDS = ("all_rooms", "fetch_sockets")
# The streams protocol (Node's ClusterAdapter) has no all_rooms request.
CONTENDER_REQUEST_KINDS = {STREAMS: ("fetch_sockets",), NODE_STREAMS: ("fetch_sockets",)}
STREAM_MAX_LEN = 10_000  # MAXLEN ~ of both streams contenders (Node's default)
ROOMS_PER_CLIENT = 3
REQUEST_WARMUP = 5
MEMORY_CASE = "per 10k"
# Who runs in each scenario (the Node ones are skipped, and listed as such, without Node.js).
CONTENDERS = {
    "cross_node": (
        ADAPTER,
        ADAPTER_PLAIN,
        ADAPTER_UVLOOP,
        SHARDED,
        STREAMS,
        STREAMS_QUEUED,
        STREAMS_CSR,
        REDIS_MANAGER,
        NODE,
        NODE_SHARDED,
        NODE_STREAMS,
        NODE_STREAMS_CSR,
        RAW,
    ),
    "fanout": (ADAPTER, STREAMS, ASYNC_MANAGER),
    "rooms": (ADAPTER, ADAPTER_NOMUX, STREAMS, REDIS_MANAGER),
    "requests": (ADAPTER, STREAMS, NODE, NODE_STREAMS),
    "memory": (ADAPTER, STREAMS, ASYNC_MANAGER, REDIS_MANAGER),
    "emitters": (EMITTER, EMITTER_UVLOOP),
    "shards": (ADAPTER, SHARDED, NODE_SHARDED),
    "loops": (
        ADAPTER,
        ADAPTER_QUEUED,
        NODE,
        SHARDED,
        SHARDED_QUEUED,
        NODE_SHARDED,
        STREAMS,
        STREAMS_QUEUED,
        NODE_STREAMS,
    ),
}
# Scenario 1's side-by-side of the streams adapter: also paced at config.more_latency_rates.
SIDE_BY_SIDE = (ADAPTER, ADAPTER_PLAIN, SHARDED, STREAMS, NODE, NODE_SHARDED, NODE_STREAMS)


def cross_case(k: int, cross: bool, concurrency: int = 1) -> str:
    name = f"K={k} {'cross-node' if cross else 'single-node'}"
    return name if concurrency == 1 else f"{name}, {concurrency} concurrent emits"


def latency_case(k: int, rate: float, config: Config) -> str:
    """The latency case at ``rate``: the base rate keeps the plain cross-node case name."""
    name = cross_case(k, True)
    return name if rate == config.latency_rate else f"{name}, {rate:,.0f} msg/s"


def fanout_case(size: int) -> str:
    return f"{size} sockets"


def rooms_case(rooms: int) -> str:
    return f"R={rooms}"


def request_case(kind: str, servers: int) -> str:
    return f"{kind} S={servers}"


def shard_case(shards: int) -> str:
    return f"{shards} shards" if shards else "standalone"


def emitter_case(k: int, concurrency: int) -> str:
    return f"K={k}" if concurrency == 1 else f"K={k}, {concurrency} concurrent emits"


def loop_case(concurrency: int) -> str:
    return "one loop" if concurrency == 1 else f"{concurrency} concurrent emitters"


async def cross_node(config: Config, results: Results) -> None:
    """1, 2: A emits to K clients on B (and on A) at max rate, then paced for latency.

    First, on the fresh Redis, Redis memory per message (K=1). The raw contender has no
    clients: its subscriber process (B) counts for itself."""
    for contender in CONTENDERS["cross_node"]:
        if contender in NODE_CONTENDERS and (why := node_available(contender)):
            results.skipped[contender] = why
            continue
        print(f"[cross-node] {contender}", flush=True)
        async with Cluster(contender) as cluster:
            cases = await _cross_cases(cluster, contender, config)
            await _redis_memory(cluster, config, results, next(iter(cases.values())))
            for name, blast in cases.items():
                await max_rate(cluster, config, results, (THROUGHPUT, contender, name), blast)
            # Latency: the first case (a cross-node one) with the most clients.
            most = max(blast.recipients for blast in cases.values())
            blast = next(b for b in cases.values() if b.recipients == most)
            rates = [config.latency_rate]
            if contender in SIDE_BY_SIDE:
                rates += [r for r in config.more_latency_rates if r not in rates]
            for rate in rates:
                events = int(rate * config.latency_seconds)
                name = latency_case(most, rate, config)
                for rep in range(config.reps):
                    metrics = await blast_run(cluster, blast, events, rate=rate, latency=True)
                    results.add(LATENCY, contender, name, rep, paced_rate=rate, **metrics)


async def _redis_memory(cluster: Cluster, config: Config, results: Results, blast: Blast) -> None:
    """What Redis keeps per message: ``used_memory`` growth over a run of max-rate
    emits, and for the streams contenders the stream's bytes per entry (``MEMORY USAGE``
    / ``XLEN``). Runs first, on a fresh Redis, and adds fewer entries in total than the
    streams' MAXLEN, so nothing is trimmed: the growth is every message's cost."""
    events = min(config.redis_memory_events, STREAM_MAX_LEN // (config.reps + 1))
    for rep in range(config.reps):
        before = await cluster.redis_memory()
        metrics = await blast_run(cluster, blast, events)
        after = await cluster.redis_memory()
        row = {
            "events": float(events),
            "used_memory_b_per_msg": (after["used_memory"] - before["used_memory"]) / events,
            "msgs_per_s": metrics["msgs_per_s"],
            "cpu_us_redis": metrics["cpu_us_redis"],
        }
        if "stream_entries" in after:
            entries = after["stream_entries"]
            per_entry = after["stream_bytes"] / entries if entries else 0.0
            row["stream_entries"] = entries
            row["stream_b_per_entry"] = per_entry
            row["stream_mib_at_max_len"] = per_entry * STREAM_MAX_LEN / 2**20
        results.add(REDIS_MEMORY, cluster.contender, cross_case(blast.recipients, True), rep, **row)


async def _cross_cases(cluster: Cluster, contender: str, config: Config) -> dict[str, Blast]:
    a, b = cluster.a, cluster.b
    if contender == RAW:
        return {cross_case(1, True): Blast(a, Receiver(b), "raw", 1)}
    cases = {}
    for k in config.k_values:
        receiver = await cluster.connect(f"k{k}", b, k, [f"k{k}"])
        cases[cross_case(k, True)] = Blast(a, receiver, f"k{k}", k)
    k = max(config.k_values)
    local = await cluster.connect("local", a, k, ["local"])
    cases[cross_case(k, False)] = Blast(a, local, "local", k)
    if contender == NODE_SHARDED:  # dynamic mode: room channels subscribed in the background
        rooms = ["local", *(f"k{k}" for k in config.k_values)]
        await cluster.wait_shard_channels([f"{KEY}#/#{room}#" for room in rooms])
    if contender not in NODE_CONTENDERS:  # Node's emits never wait: always "concurrent"
        busy = cases[cross_case(k, True)]
        cases[cross_case(k, True, CONCURRENT)] = replace(busy, concurrency=CONCURRENT)
    return cases


async def fanout(config: Config, results: Results) -> None:
    """3: one broadcast to 1k and 10k in-process sockets (fake Engine.IO sockets)."""
    async with Processes() as procs:
        redis = procs.start_redis()
        for contender in CONTENDERS["fanout"]:
            print(f"[fanout] {contender}", flush=True)
            child = await procs.worker(
                f"fanout-{contender}", "inproc", "--contender", contender, "--redis", redis.url
            )
            rows = await child.call(
                "fanout",
                bound=600,
                sizes=list(config.fanout_sizes),
                broadcasts=config.fanout_broadcasts,
                reps=config.reps,
            )
            await procs.close(child)
            for row in rows:
                size, rep = int(row.pop("size")), int(row.pop("rep"))
                results.add(FANOUT, contender, fanout_case(size), rep, **row)


async def rooms(config: Config, results: Results) -> None:
    """4: R rooms over two servers, A emits to its own rooms only: what does B spend?"""
    for contender in CONTENDERS["rooms"]:
        print(f"[rooms] {contender}", flush=True)
        async with Cluster(contender) as cluster:
            receiver = await cluster.connect("a", cluster.a, 1, [])
            await cluster.connect("b", cluster.b, 1, [])
            held_a = held_b = 0
            for total in config.rooms:
                on_a = (total + 1) // 2
                on_b = total - on_a
                if on_a > held_a:
                    await cluster.a.call(
                        "join", bound=300, prefix="ra", start=held_a, count=on_a - held_a
                    )
                if on_b > held_b:
                    await cluster.b.call(
                        "join", bound=300, prefix="rb", start=held_b, count=on_b - held_b
                    )
                held_a, held_b = on_a, on_b
                blast = Blast(cluster.a, receiver, f"ra:{on_a}", 1)
                await max_rate(
                    cluster, config, results, (ROOMS, contender, rooms_case(total)), blast
                )


async def requests(config: Config, results: Results) -> None:
    """5: all_rooms()/fetch_sockets() latency from the first of 2, 4 and 8 servers."""
    for contender in CONTENDERS["requests"]:
        if contender in NODE_CONTENDERS and (why := node_available(contender)):
            results.skipped[contender] = why
            continue
        print(f"[requests] {contender}", flush=True)
        async with Cluster(contender, servers=0) as cluster:
            for servers in config.request_servers:
                for server in await cluster.add_servers(servers - len(cluster.servers)):
                    index = cluster.servers.index(server)
                    for i in range(config.clients_per_server):
                        rooms = [f"s{index}-c{i}-r{j}" for j in range(ROOMS_PER_CLIENT)]
                        await cluster.connect(f"s{index}", server, 1, rooms)
                first = cluster.servers[0]
                for kind in CONTENDER_REQUEST_KINDS.get(contender, REQUEST_KINDS):
                    await first.call("requests", bound=300, kind=kind, n=REQUEST_WARMUP)
                    for rep in range(config.reps):
                        answer = await first.call(
                            "requests", bound=300, kind=kind, n=config.requests_per_rep
                        )
                        durations = sorted(float(d) for d in answer["durations"])
                        results.add(
                            REQUESTS,
                            contender,
                            request_case(kind, servers),
                            rep,
                            p50_ms=percentile(durations, 50) * 1000,
                            p99_ms=percentile(durations, 99) * 1000,
                            max_ms=durations[-1] * 1000,
                        )


async def memory(config: Config, results: Results) -> None:
    """6: RSS growth per 10k sockets and per 10k rooms, a fresh process per repetition."""
    async with Processes() as procs:
        redis = procs.start_redis()
        for contender in CONTENDERS["memory"]:
            print(f"[memory] {contender}", flush=True)
            for rep in range(config.reps):
                child = await procs.worker(
                    f"memory-{contender}", "inproc", "--contender", contender, "--redis", redis.url
                )
                row = await child.call("memory", bound=600, sockets=config.memory_sockets)
                results.add(MEMORY, contender, MEMORY_CASE, rep, **row)
                await procs.close(child)


async def emitters(config: Config, results: Results) -> None:
    """7: an AsyncEmitter process (no Socket.IO server) on asyncio and on uvloop."""
    k = max(config.k_values)
    for contender in CONTENDERS["emitters"]:
        print(f"[emitters] {contender}", flush=True)
        async with Cluster(ADAPTER, servers=1) as cluster:
            sender = await cluster.add_sender(contender)
            receiver = await cluster.connect("k", cluster.a, k, ["k"])
            for concurrency in (1, CONCURRENT):
                key = (EMITTERS, contender, emitter_case(k, concurrency))
                blast = Blast(sender, receiver, "k", k, concurrency)
                await max_rate(cluster, config, results, key, blast)


async def shards(config: Config, results: Results) -> None:
    """8: classic vs sharded pub/sub, on one Redis and on a 3-master Redis Cluster.

    A emits round-robin to 64 rooms whose client is on B; on the cluster A and B are
    connected to different masters. Redis CPU is metered per node."""
    if why := cluster_unavailable():
        results.skipped["scaling out (8)"] = why
        return
    events = int(config.latency_rate * config.latency_seconds)
    for count in SHARD_COUNTS:
        for contender in CONTENDERS["shards"]:
            if contender == NODE_SHARDED and (why := node_available(contender)):
                results.skipped[NODE_SHARDED] = why
                continue
            print(f"[shards] {contender} {shard_case(count)}", flush=True)
            async with Cluster(contender, shards=count) as cluster:
                rooms = [f"s-{i}" for i in range(SHARD_ROOMS)]
                receiver = await cluster.connect("s", cluster.b, 1, rooms)
                if contender == NODE_SHARDED:
                    await cluster.wait_shard_channels([f"{KEY}#/#{room}#" for room in rooms])
                blast = Blast(cluster.a, receiver, f"s:{SHARD_ROOMS}", 1)
                case = shard_case(count)
                await max_rate(cluster, config, results, (SHARDS, contender, case), blast)
                for rep in range(config.reps):
                    metrics = await blast_run(
                        cluster, blast, events, rate=config.latency_rate, latency=True
                    )
                    results.add(SHARD_LATENCY, contender, case, rep, **metrics)


async def loops(config: Config, results: Results) -> None:
    """9: one loop awaiting each emit vs 16 concurrent emitters, awaited vs queued_emits.

    A emits round-robin to 64 rooms whose one client is on B, on one Redis, at max rate;
    Redis CPU per broadcast is the figure. Node's emits never wait: its one loop is its
    only shape."""
    for contender in CONTENDERS["loops"]:
        if contender in NODE_CONTENDERS and (why := node_available(contender)):
            results.skipped[contender] = why
            continue
        print(f"[loops] {contender}", flush=True)
        async with Cluster(contender) as cluster:
            rooms = [f"s-{i}" for i in range(SHARD_ROOMS)]
            receiver = await cluster.connect("s", cluster.b, 1, rooms)
            if contender == NODE_SHARDED:
                await cluster.wait_shard_channels([f"{KEY}#/#{room}#" for room in rooms])
            shapes = (1,) if contender in NODE_CONTENDERS else (1, CONCURRENT)
            for concurrency in shapes:
                blast = Blast(cluster.a, receiver, f"s:{SHARD_ROOMS}", 1, concurrency)
                key = (LOOPS, contender, loop_case(concurrency))
                await max_rate(cluster, config, results, key, blast)


Scenario = Callable[[Config, Results], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    "cross_node": cross_node,
    "fanout": fanout,
    "rooms": rooms,
    "requests": requests,
    "memory": memory,
    "emitters": emitters,
    "shards": shards,
    "loops": loops,
}
