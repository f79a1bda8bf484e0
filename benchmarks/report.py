"""RESULTS.md and results.json from the samples of a run."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import charts
from .config import Config
from .contenders import LABELS, STREAMS_CONTENDERS
from .results import Results
from .scenarios import (
    CONCURRENT,
    EMITTERS,
    FANOUT,
    LATENCY,
    LOOPS,
    MEMORY,
    REDIS_MEMORY,
    REQUESTS,
    ROOMS,
    ROOMS_PER_CLIENT,
    SHARD_LATENCY,
    SHARD_ROOMS,
    SHARDS,
    SIDE_BY_SIDE,
    STREAM_MAX_LEN,
    THROUGHPUT,
    cross_case,
    latency_case,
)
from .targets import Target, evaluate


def cell(results: Results, key: tuple[str, str, str], metric: str, digits: int = 0) -> str:
    """``median (min–max)`` of one metric, or an em dash."""
    s = results.summary(*key).get(metric)
    if s is None:
        return "—"
    fmt = f"{{:,.{digits}f}}"
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _label(contender: str) -> str:
    return LABELS.get(contender, contender)


Key = tuple[str, str, str]  # (scenario, contender, case)
Column = tuple[str, Callable[[Results, Key], str]]  # header, cell of one case
SERVER_ROLES = {"server_A": "A", "server_B": "B", "redis": "redis"}


def _busiest(results: Results, key: Key) -> str:
    """The server-side process that used the most CPU (median cores) in a case."""
    found = [
        (results.median(*key, f"cpu_util_{role}") or 0.0, name)
        for role, name in SERVER_ROLES.items()
    ]
    util, name = max(found)
    return f"{name} {util:.2f}"


def _busiest_redis(results: Results, key: Key) -> str:
    """The Redis node that used the most CPU (median cores), and the nodes' spread."""
    utils = [
        results.median(*key, f"cpu_util_redis_node_{i}") or 0.0
        for i in range(8)
        if results.median(*key, f"cpu_util_redis_node_{i}") is not None
    ]
    if not utils:
        return "—"
    mean = sum(utils) / len(utils)
    return f"{max(utils):.2f} ({max(utils) / mean:.2f}x the mean)" if mean else "0"


def _metric(header: str, metric: str, digits: int = 0) -> Column:
    return header, lambda results, key: cell(results, key, metric, digits)


def _case(header: str) -> Column:
    return header, lambda results, key: key[2]


CONTENDER: Column = ("contender", lambda results, key: _label(key[1]))
SENT_CASE: Column = (
    "case",
    lambda results, key: key[2] if key[1] != "raw" else "no clients (B decodes)",
)
# The table of each scenario: one row per (contender, case), in the order they ran.
TABLES: dict[str, list[Column]] = {
    THROUGHPUT: [
        CONTENDER,
        SENT_CASE,
        _metric("msg/s", "msgs_per_s"),
        _metric("deliveries/s", "deliveries_per_s"),
        _metric("CPU µs/msg A", "cpu_us_server_A", 1),
        _metric("CPU µs/msg B", "cpu_us_server_B", 1),
        _metric("CPU µs/msg redis", "cpu_us_redis", 1),
        _metric("CPU µs/msg clients", "cpu_us_clients", 1),
        _metric("clients' CPU (cores)", "cpu_util_clients", 2),
        ("busiest server process (cores)", _busiest),
    ],
    LATENCY: [
        CONTENDER,
        SENT_CASE,
        _metric("p50 ms", "lat_p50_ms", 2),
        _metric("p99 ms", "lat_p99_ms", 2),
        _metric("max ms", "lat_max_ms", 2),
        _metric("CPU µs/msg B", "cpu_us_server_B"),
        _metric("CPU µs/msg redis", "cpu_us_redis", 1),
    ],
    REDIS_MEMORY: [
        CONTENDER,
        _metric("events per run", "events"),
        _metric("used_memory growth, bytes/msg", "used_memory_b_per_msg", 1),
        _metric("stream bytes/entry (MEMORY USAGE / XLEN)", "stream_b_per_entry", 1),
        _metric("stream entries after the run", "stream_entries"),
        _metric(f"stream MiB at MAXLEN {STREAM_MAX_LEN:,}", "stream_mib_at_max_len", 2),
        _metric("CPU µs/msg redis", "cpu_us_redis", 1),
    ],
    FANOUT: [
        CONTENDER,
        _case("recipients"),
        _metric("ms per broadcast", "ms_per_broadcast", 2),
        _metric("µs per recipient", "us_per_recipient", 2),
        _metric("CPU ms", "cpu_ms_per_broadcast", 2),
    ],
    ROOMS: [
        CONTENDER,
        _case("rooms"),
        _metric("server B CPU µs/msg", "cpu_us_server_B", 2),
        _metric("server A CPU µs/msg", "cpu_us_server_A", 1),
        _metric("redis CPU µs/msg", "cpu_us_redis", 1),
        _metric("msg/s", "msgs_per_s"),
    ],
    REQUESTS: [
        CONTENDER,
        ("request", lambda results, key: key[2].split(" ")[0]),
        ("servers", lambda results, key: key[2].split(" S=")[1]),
        _metric("p50 ms", "p50_ms", 2),
        _metric("p99 ms", "p99_ms", 2),
    ],
    MEMORY: [
        CONTENDER,
        _metric("MiB per 10k sockets", "mb_per_10k_sockets", 1),
        _metric("MiB per 10k rooms", "mb_per_10k_rooms", 1),
    ],
    SHARDS: [
        CONTENDER,
        _case("Redis"),
        _metric("msg/s", "msgs_per_s"),
        _metric("CPU µs/msg A", "cpu_us_server_A", 1),
        _metric("CPU µs/msg B", "cpu_us_server_B", 1),
        _metric("CPU µs/msg redis (all nodes)", "cpu_us_redis", 1),
        ("busiest Redis node (cores)", _busiest_redis),
    ],
    SHARD_LATENCY: [
        CONTENDER,
        _case("Redis"),
        _metric("p50 ms", "lat_p50_ms", 2),
        _metric("p99 ms", "lat_p99_ms", 2),
        _metric("max ms", "lat_max_ms", 2),
        _metric("CPU µs/msg B", "cpu_us_server_B", 1),
        _metric("CPU µs/msg redis (all nodes)", "cpu_us_redis", 1),
    ],
    LOOPS: [
        CONTENDER,
        _case("emitters"),
        _metric("msg/s", "msgs_per_s"),
        _metric("CPU µs/msg A", "cpu_us_server_A", 1),
        _metric("CPU µs/msg B", "cpu_us_server_B", 1),
        _metric("CPU µs/msg redis", "cpu_us_redis", 2),
    ],
    EMITTERS: [
        CONTENDER,
        _case("case"),
        _metric("msg/s", "msgs_per_s"),
        _metric("CPU µs/msg emitter", "cpu_us_emitter", 1),
        _metric("CPU µs/msg server", "cpu_us_server_A", 1),
        _metric("CPU µs/msg redis", "cpu_us_redis", 1),
    ],
}


def _scenario_table(results: Results, scenario: str) -> list[str]:
    columns = TABLES[scenario]
    rows = [
        [value(results, (scenario, contender, case)) for _, value in columns]
        for contender, case in results.cases(scenario)
    ]
    return _table([header for header, _ in columns], rows)


def _median(results: Results, key: Key, metric: str, digits: int = 0) -> str:
    """The median alone (the full tables give min–max), or an em dash."""
    value = results.median(*key, metric)
    return "—" if value is None else f"{value:,.{digits}f}"


def _side_by_side(results: Results, config: Config) -> list[str]:
    """The streams adapter next to the classic, sharded and Node adapters: medians taken
    from sections 1, 2 and 1b (the cases are named in the headers)."""
    ran = {contender for contender, _ in results.cases(THROUGHPUT)}
    contenders = [c for c in SIDE_BY_SIDE if c in ran]
    if not contenders:
        return []
    k1, k20 = cross_case(1, True), cross_case(20, True)
    busy = cross_case(20, True, CONCURRENT)
    rates = [config.latency_rate, *config.more_latency_rates]

    def latency(contender: str, rate: float) -> str:
        key = (LATENCY, contender, latency_case(20, rate, config))
        p50, p99 = _median(results, key, "lat_p50_ms", 2), _median(results, key, "lat_p99_ms", 2)
        return f"{p50} / {p99}"

    def memory(contender: str) -> str:
        key = (REDIS_MEMORY, contender, k1)
        if contender in STREAMS_CONTENDERS:
            return _median(results, key, "stream_b_per_entry") + " (stream)"
        return _median(results, key, "used_memory_b_per_msg") + " (used_memory)"

    speed = _table(
        [
            "contender",
            "max msg/s K=1",
            "max msg/s K=20",
            f"max msg/s K=20, {CONCURRENT} emitters",
            *(f"p50 / p99 ms at {rate:,.0f} msg/s, K=20" for rate in rates),
        ],
        [
            [
                _label(c),
                _median(results, (THROUGHPUT, c, k1), "msgs_per_s"),
                _median(results, (THROUGHPUT, c, k20), "msgs_per_s"),
                _median(results, (THROUGHPUT, c, busy), "msgs_per_s"),
                *(latency(c, rate) for rate in rates),
            ]
            for c in contenders
        ],
    )
    cost = _table(
        [
            "contender",
            "receiver (B) CPU µs/msg K=1",
            "receiver (B) CPU µs/msg K=20",
            "Redis CPU µs/msg K=1",
            "Redis CPU µs/msg K=20",
            f"Redis CPU µs/msg at {config.latency_rate:,.0f} msg/s",
            "Redis bytes/msg",
        ],
        [
            [
                _label(c),
                _median(results, (THROUGHPUT, c, k1), "cpu_us_server_B", 1),
                _median(results, (THROUGHPUT, c, k20), "cpu_us_server_B", 1),
                _median(results, (THROUGHPUT, c, k1), "cpu_us_redis", 1),
                _median(results, (THROUGHPUT, c, k20), "cpu_us_redis", 1),
                _median(results, (LATENCY, c, k20), "cpu_us_redis", 1),
                memory(c),
            ]
            for c in contenders
        ],
    )
    return [*speed, *cost]


def _client_check(results: Results) -> list[str]:
    """Were the load clients ever the bottleneck? Compare them with the busiest server."""
    worst, where, server_util = 0.0, "", 0.0
    busier_client_runs, runs = 0, 0
    for s in results.samples:
        util = s.metrics.get("cpu_util_clients")
        if util is None or s.scenario == LATENCY:
            continue
        busiest = max(s.metrics.get(f"cpu_util_{role}", 0.0) for role in SERVER_ROLES)
        runs += 1
        busier_client_runs += util >= busiest
        if util > worst:
            worst, server_util = util, busiest
            where = f"{s.scenario} / {_label(s.contender)} / {s.case}"
    if not runs:
        return []
    return [
        f"**Load clients.** Highest load-client CPU in any run: {worst:.2f} cores ({where}), "
        f"where the busiest server process used {server_util:.2f} cores. The clients used "
        f"more CPU than the busiest server process in {busier_client_runs} of {runs} "
        "max-rate runs"
        + (", so they were not the bottleneck." if not busier_client_runs else ".")
        + " (Paced latency runs are left out: at a fixed offered rate nothing saturates.)",
        "",
    ]


ANALYSIS = Path(__file__).with_name("ANALYSIS.md")


def _analysis() -> list[str]:
    """The hand-written profile notes on missed targets, kept in ANALYSIS.md."""
    if not ANALYSIS.exists():
        return []
    return [*ANALYSIS.read_text().strip().splitlines(), ""]


def markdown(
    results: Results,
    targets: list[Target],
    machine: dict[str, str],
    config: Config,
    meta: dict[str, Any],
) -> str:
    out = [
        "# Benchmark results",
        "",
        f"Generated by `{str(meta['command']).strip()}` on {meta['date']} "
        f"in {meta['duration_s']:.0f} s"
        + (" (**quick smoke run: tiny sizes, not for comparison**)." if config.quick else "."),
        f"Every number is the **median (min–max) of {config.reps} repetitions** in this one run.",
        "See [README.md](README.md) for what each scenario measures and how.",
        "",
        "## Machine",
        "",
        *_table(["", ""], [[k, v] for k, v in machine.items()]),
        "## Targets",
        "",
        *_table(
            ["target", "goal", "measured (medians)", "status"],
            [[t.name, t.goal, t.measured, f"**{t.status}**"] for t in targets],
        ),
        "Targets are checked on the cases the issue defines (one emitter awaiting each "
        "emit). The rows marked *supplementary* apply the same goal to the case with 16 "
        "concurrent emitters, for context; they are not the targets.",
        "",
        *_analysis(),
        "## 1. Cross-node broadcast throughput",
        "",
        "Server A emits as fast as it can (awaiting each emit) to a room whose K clients are "
        "on server B (single-node: the clients are on A). msg/s = events per second from the "
        "first emit to the last delivery; CPU is per emitted event, for each OS process. "
        "Python contenders await each emit (the adapter returns once Redis confirmed the "
        "PUBLISH); Node's emit returns at once, so its sender pipelines PUBLISHes (see "
        "README.md). The *16 concurrent emits* case runs 16 such loops at once on A.",
        "",
        *_scenario_table(results, THROUGHPUT),
        *_client_check(results),
        "## 1b. Redis memory per message",
        "",
        "First thing on each contender's fresh Redis: K=1 cross-node runs at max rate, "
        "adding fewer stream entries in total than the streams' MAXLEN, so nothing is "
        "trimmed. *used_memory growth*: `INFO memory` `used_memory` after the run minus "
        "before, per message (pub/sub keeps nothing: about 0). *Stream bytes/entry*: "
        "`MEMORY USAGE <stream> SAMPLES 0` / `XLEN` after the run (the streams contenders); "
        f"a stream is trimmed to about MAXLEN ~ {STREAM_MAX_LEN:,} entries, so it holds at "
        "most about the last column.",
        "",
        *_scenario_table(results, REDIS_MEMORY),
        "## 1c. Streams side by side",
        "",
        "`AsyncStreamsRedisAdapter` next to this package's classic and sharded adapters "
        "and Node's classic and streams adapters, all on one Redis: medians from sections "
        "1, 1b and 2 (min–max there). Node's emits never wait, so its max-rate runs "
        "pipeline XADDs/PUBLISHes like the Python servers' 16-emitter case.",
        "",
        *_side_by_side(results, config),
        "## 2. Cross-node latency at paced rates",
        "",
        f"Paced at {config.latency_rate:,.0f} events/s (the side-by-side contenders of "
        "section 1c also at the rates their case names); latency = client receive time - "
        "send timestamp in the payload (`time.time()`, same machine), over every delivery "
        "of every event.",
        "",
        *_scenario_table(results, LATENCY),
        "## 3. Local fan-out",
        "",
        "One broadcast to every socket of the process. In-process fake Engine.IO sockets: "
        "`sio.eio.send_packet` is replaced by a counting coroutine, identically for every "
        "contender, so this times the manager's delivery path, not websocket I/O. The "
        "adapters' time includes their PUBLISH (the streams adapter's XADD).",
        "",
        *_scenario_table(results, FANOUT),
        "## 4. Room scaling",
        "",
        "R rooms spread over two servers (A holds ceil(R/2), B the rest); A emits "
        "round-robin to its own rooms only. Server B's CPU per message is what it spends "
        "on traffic for rooms it does not hold. The streams protocol has no room channels: "
        "every server reads every entry of the stream, whatever its rooms.",
        "",
        *_scenario_table(results, ROOMS),
        "## 5. Cluster-wide requests",
        "",
        f"Sequential requests from server 0, {config.requests_per_rep} per repetition; "
        "each server is its own OS process with "
        f"{config.clients_per_server} connected clients in {ROOMS_PER_CLIENT} "
        "rooms each. AsyncRedisManager has no such requests; the streams protocol (Node's "
        "ClusterAdapter) has no all_rooms request.",
        "",
        *_scenario_table(results, REQUESTS),
        "## 6. Memory",
        "",
        f"RSS growth of one process for {config.memory_sockets:,} connected sockets, "
        "then one room per socket, scaled to 10k; in-process fake Engine.IO sockets "
        "(real `AsyncSocket` objects, no transport), a fresh process per repetition; "
        "Redis-side memory not included.",
        "",
        *_scenario_table(results, MEMORY),
        "## 7. Emitters, and uvloop",
        "",
        "An `AsyncEmitter` process (no Socket.IO server) emits as fast as it can to a room "
        "whose 20 clients are on one adapter server, on asyncio and on uvloop. Rows "
        "*AsyncRedisAdapter on uvloop* in sections 1 and 2 run both servers on uvloop.",
        "",
        *_scenario_table(results, EMITTERS),
        "## 8. Scaling out: classic and sharded pub/sub, one Redis and 3 shards",
        "",
        f"Server A emits round-robin to {SHARD_ROOMS} rooms whose client is on server B, "
        "first on one Redis, then on a Redis Cluster of 3 masters (no replicas) with A and B "
        "connected to different masters. The classic adapter PUBLISHes (the cluster bus "
        "copies every message to every node); the sharded one SPUBLISHes each room's "
        "broadcast on the shard that owns its channel. Redis CPU is summed over the nodes; "
        "the last column is the busiest node's load.",
        "",
        *_scenario_table(results, SHARDS),
        "Paced at the latency rate of section 2:",
        "",
        *_scenario_table(results, SHARD_LATENCY),
        "## 9. One emitting loop or many: awaited emits and `queued_emits`",
        "",
        f"Server A emits round-robin to {SHARD_ROOMS} rooms whose one client is on server "
        "B, on one Redis, at max rate: from one loop awaiting each emit, then from "
        f"{CONCURRENT} such loops at once. Awaited, each emit returns once Redis accepted "
        "it; with `queued_emits=True` once it is queued for the pipelined publisher, as "
        "Node's emits return at once (Node runs its one loop only). Redis CPU per broadcast "
        "is the figure of issue 20.",
        "",
        *_scenario_table(results, LOOPS),
    ]
    if results.skipped or results.notes:
        out += ["## Notes", ""]
        out += [f"* {name} skipped: {why}" for name, why in results.skipped.items()]
        out += [f"* {note}" for note in results.notes]
        out.append("")
    out += ["## Charts", ""]
    out += [f"![{name}](charts/{name}.png)" for name in meta.get("charts", [])]
    out.append("")
    return "\n".join(out)


def write(
    out_dir: Path,
    results: Results,
    machine: dict[str, str],
    config: Config,
    meta: dict[str, Any],
) -> list[Target]:
    """Draw the charts, check the targets, write results.json and RESULTS.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "charts": charts.draw(results, out_dir / "charts")}
    targets = evaluate(results)
    document = {
        "meta": meta,
        "machine": machine,
        "config": config.__dict__,
        "targets": [t.__dict__ for t in targets],
        **results.to_json(),
    }
    (out_dir / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    (out_dir / "RESULTS.md").write_text(markdown(results, targets, machine, config, meta))
    return targets
