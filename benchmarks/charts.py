"""PNG charts of a run (matplotlib, Agg backend): medians with min–max error bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .contenders import LABELS
from .results import Results
from .scenarios import (
    FANOUT,
    LATENCY,
    MEMORY,
    REQUEST_KINDS,
    REQUESTS,
    ROOMS,
    SIDE_BY_SIDE,
    THROUGHPUT,
    cross_case,
)

COLORS = {
    "adapter": "#1f77b4",
    "adapter-nomux": "#17becf",
    "adapter-plain": "#aec7e8",
    "node-sharded": "#98df8a",
    "redismanager": "#d62728",
    "asyncmanager": "#ff7f0e",
    "raw": "#7f7f7f",
    "node": "#2ca02c",
    "sharded": "#9467bd",
    "streams": "#8c564b",
    "node-streams": "#bcbd22",
}
# One bar group per x label: (label, {contender: (scenario case, metric)}).
Groups = Sequence[tuple[str, dict[str, tuple[str, str]]]]


def _short(case: str) -> str:
    """A tick label that fits: 'K=20 cross-node, 16 concurrent emits' -> two short lines."""
    case = case.replace("cross-node", "cross").replace("single-node", "single")
    return case.replace(", ", "\n").replace(" concurrent emits", " emitters")


def _bars(ax: Axes, results: Results, scenario: str, groups: Groups) -> None:
    """Grouped bars, one group per x label and one bar (median, min–max) per contender."""
    contenders = list(dict.fromkeys(c for _, picks in groups for c in picks))
    width = 0.8 / max(len(contenders), 1)
    for i, contender in enumerate(contenders):
        xs, ys, low, high = [], [], [], []
        for j, (_, picks) in enumerate(groups):
            if contender not in picks:
                continue
            case, metric = picks[contender]
            s = results.summary(scenario, contender, case).get(metric)
            if s is None:
                continue
            xs.append(j + (i - (len(contenders) - 1) / 2) * width)
            ys.append(s["median"])
            low.append(s["median"] - s["min"])
            high.append(s["max"] - s["median"])
        label = LABELS.get(contender, contender)
        ax.bar(xs, ys, width, yerr=[low, high], capsize=3, label=label, color=COLORS.get(contender))
    ax.set_xticks(range(len(groups)), [_short(label) for label, _ in groups], fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)


def _by_case(results: Results, scenario: str, metric: str) -> Groups:
    """One group per case of ``scenario``, each contender's ``metric``."""
    groups: dict[str, dict[str, tuple[str, str]]] = {}
    for contender, case in results.cases(scenario):
        groups.setdefault(case, {})[contender] = (case, metric)
    return list(groups.items())


def _by_metric(results: Results, scenario: str, metrics: dict[str, str]) -> Groups:
    """One group per metric (label -> metric name), each contender's first case."""
    first: dict[str, str] = {}
    for contender, case in results.cases(scenario):
        first.setdefault(contender, case)
    return [
        (label, {c: (case, metric) for c, case in first.items()})
        for label, metric in metrics.items()
    ]


def _figure(width: float = 9) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=(width, 4.5))
    return fig, ax


def _cpu_stack(ax: Axes, results: Results) -> None:
    tp = THROUGHPUT
    cases = results.cases(tp)
    bottoms = [0.0] * len(cases)
    for role in ("server_A", "server_B", "redis", "clients"):
        values = [results.median(tp, c, case, f"cpu_us_{role}") or 0.0 for c, case in cases]
        ax.bar(range(len(cases)), values, bottom=bottoms, label=role.replace("_", " "))
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.set_xticks(range(len(cases)), [f"{c}\n{_short(case)}" for c, case in cases], fontsize=7)
    ax.set_ylabel("CPU µs per event")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def _request_lines(axes: Sequence[Axes], results: Results) -> None:
    scenario = REQUESTS
    for ax, kind in zip(axes, REQUEST_KINDS, strict=True):
        for contender in dict.fromkeys(c for c, _ in results.cases(scenario)):
            cases = [
                case
                for c, case in results.cases(scenario)
                if c == contender and case.startswith(kind)
            ]
            if not cases:  # the streams contenders have no all_rooms
                continue
            servers = [int(case.split("S=")[1]) for case in cases]
            for metric, style in (("p50_ms", "-o"), ("p99_ms", "--^")):
                ys = [results.median(scenario, contender, case, metric) or 0.0 for case in cases]
                label = f"{LABELS.get(contender, contender)} {metric[:3]}"
                ax.plot(servers, ys, style, color=COLORS.get(contender), label=label)
        ax.set_xticks(sorted({int(case.split("S=")[1]) for _, case in results.cases(scenario)}))
        ax.set_xlabel("servers (one process each)")
        ax.set_ylabel("ms")
        ax.set_title(f"5. {kind}() latency")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)


def draw(results: Results, out: Path) -> list[str]:
    """Write every chart that has data into ``out``; return their names."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def save(fig: Figure, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        written.append(name)

    tp, lat = THROUGHPUT, LATENCY
    if results.cases(tp):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.8))
        _bars(ax1, results, tp, _by_case(results, tp, "msgs_per_s"))
        ax1.set_yscale("log")
        ax1.set_title("1. Broadcast throughput (events/s at max rate, log)")
        _bars(ax2, results, tp, _by_case(results, tp, "cpu_us_server_B"))
        ax2.set_title("1. Receiving server (B) CPU µs per event")
        save(fig, "throughput")
        fig, ax = _figure(14)
        _cpu_stack(ax, results)
        ax.set_title("1. CPU per event by process (medians, stacked)")
        save(fig, "cpu_per_message")
    ran = {contender for contender, _ in results.cases(tp)}
    if any(c in ran for c in SIDE_BY_SIDE):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.8))
        for ax, role, title in (
            (ax1, "server_B", "receiving server (B)"),
            (ax2, "redis", "redis-server"),
        ):
            picks = [c for c in SIDE_BY_SIDE if c in ran]
            groups = [
                (case, dict.fromkeys(picks, (case, f"cpu_us_{role}")))
                for case in (cross_case(1, True), cross_case(20, True))
            ]
            _bars(ax, results, tp, groups)
            ax.set_ylabel("CPU µs per event")
            ax.set_title(f"1c. Streams side by side: {title} CPU per event, max rate")
        save(fig, "streams")
    if results.cases(lat):
        fig, ax = _figure()
        _bars(
            ax, results, lat, _by_metric(results, lat, {"p50": "lat_p50_ms", "p99": "lat_p99_ms"})
        )
        ax.axhline(5.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_ylabel("ms")
        ax.set_title("2. Publish-to-client latency at 500 events/s, K=20 (dashed: 5 ms target)")
        save(fig, "latency")
    if results.cases(FANOUT):
        fig, ax = _figure()
        _bars(ax, results, FANOUT, _by_case(results, FANOUT, "ms_per_broadcast"))
        ax.set_yscale("log")
        ax.set_ylabel("ms per broadcast (log)")
        ax.set_title("3. Local fan-out: one broadcast to N in-process sockets")
        save(fig, "fanout")
    if results.cases(ROOMS):
        fig, ax = _figure()
        _bars(ax, results, ROOMS, _by_case(results, ROOMS, "cpu_us_server_B"))
        ax.set_ylabel("server B CPU µs per event")
        ax.set_title("4. Room scaling: B's CPU on traffic for rooms only A holds")
        save(fig, "rooms")
    if results.cases(REQUESTS):
        fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
        _request_lines(axes, results)
        save(fig, "requests")
    if results.cases(MEMORY):
        fig, ax = _figure()
        metrics = {"per 10k sockets": "mb_per_10k_sockets", "per 10k rooms": "mb_per_10k_rooms"}
        _bars(ax, results, MEMORY, _by_metric(results, MEMORY, metrics))
        ax.set_ylabel("MiB of RSS")
        ax.set_title("6. Memory")
        save(fig, "memory")
    return written
