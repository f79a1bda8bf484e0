"""The issue's targets, checked as ratios of medians measured in the same run."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

from .contenders import ADAPTER, ASYNC_MANAGER, REDIS_MANAGER
from .results import Results
from .scenarios import CONCURRENT, FANOUT, LATENCY, ROOMS, THROUGHPUT, cross_case, fanout_case

K1 = cross_case(1, True)
K20 = cross_case(20, True)
K20_LOCAL = cross_case(20, False)
ZERO_CPU_US = 1.0  # "~0": at most 1 µs of server B CPU per message it should never see


@dataclass
class Target:
    """One target: what was measured against what, and whether it holds."""

    name: str
    goal: str
    measured: str
    status: str  # PASS, MISS or N/A


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _ratio_target(
    name: str,
    goal: str,
    mine: float | None,
    theirs: float | None,
    unit: str,
    holds: Callable[[float], bool],
) -> Target:
    if mine is None or theirs is None or theirs == 0:
        return Target(name, goal, "not measured", "N/A")
    ratio = mine / theirs
    measured = f"{_fmt(mine)} vs {_fmt(theirs)} {unit} = {ratio:.2f}x"
    return Target(name, goal, measured, "PASS" if holds(ratio) else "MISS")


def evaluate(results: Results) -> list[Target]:
    """Every target of the issue, from the medians in ``results``."""
    tp, lat = THROUGHPUT, LATENCY

    def med(scenario: str, contender: str, case: str, metric: str) -> float | None:
        return results.median(scenario, contender, case, metric)

    targets = [
        _ratio_target(
            "Receiving-server CPU per message, K=1",
            "adapter <= 1/3 of AsyncRedisManager",
            med(tp, ADAPTER, K1, "cpu_us_server_B"),
            med(tp, REDIS_MANAGER, K1, "cpu_us_server_B"),
            "µs",
            lambda r: r <= 1 / 3,
        ),
        _ratio_target(
            "Sending-server CPU per message, K=1",
            "adapter <= 1/3 of AsyncRedisManager",
            med(tp, ADAPTER, K1, "cpu_us_server_A"),
            med(tp, REDIS_MANAGER, K1, "cpu_us_server_A"),
            "µs",
            lambda r: r <= 1 / 3,
        ),
        _ratio_target(
            "Cross-node vs single-node throughput, K=20",
            "adapter cross-node >= 0.9x its own single-node",
            med(tp, ADAPTER, K20, "msgs_per_s"),
            med(tp, ADAPTER, K20_LOCAL, "msgs_per_s"),
            "msg/s",
            lambda r: r >= 0.9,
        ),
        _ratio_target(
            "Cross-node throughput vs AsyncRedisManager, K=20",
            "adapter >= 1.5x AsyncRedisManager",
            med(tp, ADAPTER, K20, "msgs_per_s"),
            med(tp, REDIS_MANAGER, K20, "msgs_per_s"),
            "msg/s",
            lambda r: r >= 1.5,
        ),
    ]
    p99 = med(lat, ADAPTER, K20, "lat_p99_ms")
    targets.append(
        Target(
            "Latency p99 at 500 msg/s, K=20",
            "adapter p99 <= 5 ms",
            "not measured" if p99 is None else f"{p99:.2f} ms",
            "N/A" if p99 is None else ("PASS" if p99 <= 5.0 else "MISS"),
        )
    )
    targets.append(
        _ratio_target(
            "Redis CPU per message, K=20 at max rate",
            "adapter <= 1/5 of AsyncRedisManager",
            med(tp, ADAPTER, K20, "cpu_us_redis"),
            med(tp, REDIS_MANAGER, K20, "cpu_us_redis"),
            "µs",
            lambda r: r <= 1 / 5,
        )
    )
    big = fanout_case(10_000)
    slow = results.median(FANOUT, ASYNC_MANAGER, big, "ms_per_broadcast")
    fast = results.median(FANOUT, ADAPTER, big, "ms_per_broadcast")
    targets.append(
        _ratio_target(
            "Local fan-out to 10k sockets (speed-up)",
            ">= 10x faster than AsyncManager's per-recipient path",
            slow,
            fast,
            "ms",
            lambda r: r >= 10,
        )
    )
    targets.append(_zero_cpu_target(results))
    busy = cross_case(20, True, CONCURRENT)
    for name, metric, limit in (
        ("Sending-server CPU per message", "cpu_us_server_A", 1 / 3),
        ("Redis CPU per message", "cpu_us_redis", 1 / 5),
    ):
        targets.append(
            _ratio_target(
                f"*supplementary:* {name}, K=20, {CONCURRENT} concurrent emits",
                f"adapter <= 1/{round(1 / limit)} of AsyncRedisManager",
                med(tp, ADAPTER, busy, metric),
                med(tp, REDIS_MANAGER, busy, metric),
                "µs",
                functools.partial(operator.ge, limit),  # limit >= ratio
            )
        )
    return targets


def _zero_cpu_target(results: Results) -> Target:
    per_room = [
        (case, results.median(ROOMS, ADAPTER, case, "cpu_us_server_B"))
        for contender, case in results.cases(ROOMS)
        if contender == ADAPTER
    ]
    measured = [(case, v) for case, v in per_room if v is not None]
    if not measured:
        return Target("Room scaling: server B CPU", "~0", "not measured", "N/A")
    worst_case, worst = max(measured, key=lambda cv: cv[1])
    others = results.median(ROOMS, REDIS_MANAGER, worst_case, "cpu_us_server_B")
    versus = "" if others is None else f" (AsyncRedisManager: {_fmt(others)} µs)"
    return Target(
        "Room scaling: server B CPU on traffic to rooms it does not hold",
        f"~0 (adapter <= {ZERO_CPU_US:g} µs per message at every R)",
        f"max {worst:.3f} µs/msg at {worst_case}{versus}",
        "PASS" if worst <= ZERO_CPU_US else "MISS",
    )
