"""One measured run: server A emits, a receiver counts, every process's CPU is metered."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from .cluster import Cluster
from .config import Config
from .drivers import Receiver, ServerHandle


async def blast_run(
    cluster: Cluster,
    sender: ServerHandle,
    receiver: Receiver,
    room: str,
    n: int,
    recipients: int,
    *,
    rate: float = 0,
    concurrency: int = 1,
    latency: bool = False,
    timeout: float = 120,
) -> dict[str, float]:
    """Emit ``n`` events to ``room`` from ``sender``; ``recipients`` sockets get each one.

    ``concurrency`` tasks emit at once on the sender (each awaiting its own emits).
    Returns rates over the wall time from the first emit to the last delivery, CPU
    microseconds per emitted event for every metered process, the load clients' CPU
    utilisation, and (with ``latency``) publish-to-client percentiles in milliseconds.
    """
    total = n * recipients
    await receiver.arm(total, latency)
    before = cluster.meter.snapshot()
    t0 = time.time()
    send_elapsed = await sender.blast(n, room, rate, concurrency, timeout=timeout)
    got = await receiver.wait(timeout)
    after = cluster.meter.snapshot()
    wall = max(float(got["t_last"]) - t0, 1e-9)
    cpu = cluster.meter.delta(before, after)
    metrics = {
        "events": float(n),
        "msgs_per_s": n / wall,
        "deliveries_per_s": float(got["received"]) / wall,
        "wall_s": wall,
        "send_s": send_elapsed,
        "complete": 1.0 if got["complete"] else 0.0,
    }
    for role, seconds in cpu.items():
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
