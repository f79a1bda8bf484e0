"""Sizes and durations of a full run and of ``--quick`` (a smoke run of a few minutes)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Config:
    """How big each scenario is. Every scenario repeats ``reps`` (>= 3) times."""

    quick: bool
    reps: int = 3
    # Max-rate runs (scenarios 1 and 4): a calibration run of ``calibrate`` events sets
    # the count so that a run lasts about ``run_seconds``; ``fixed`` skips calibration.
    run_seconds: float = 2.0
    calibrate: int = 1_000
    min_events: int = 300
    max_events: int = 150_000
    fixed: int | None = None
    k_values: tuple[int, ...] = (1, 20)
    latency_rate: float = 500.0
    latency_seconds: float = 3.0
    # Scenario 1's side-by-side contenders (classic, sharded, streams, Node's) are also
    # paced at these rates, each for ``latency_seconds``.
    more_latency_rates: tuple[float, ...] = (250.0, 1_000.0)
    # Redis memory per message (scenario 1): ``reps`` runs of this many events each, on a
    # fresh Redis, before anything else; kept under the streams' MAXLEN (10,000) in total.
    redis_memory_events: int = 2_000
    rooms: tuple[int, ...] = (1, 1_000, 10_000)
    request_servers: tuple[int, ...] = (2, 4, 8)
    requests_per_rep: int = 100
    clients_per_server: int = 5
    fanout_sizes: tuple[int, ...] = (1_000, 10_000)
    fanout_broadcasts: int = 15
    memory_sockets: int = 10_000

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Config:
        """The config a results.json recorded (JSON lists back to tuples)."""
        names = {f.name for f in fields(cls)}
        known: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in names
        }
        return cls(**known)


FULL = Config(quick=False)
QUICK = Config(
    quick=True,
    fixed=150,
    latency_seconds=0.3,
    redis_memory_events=150,
    rooms=(1, 1_000, 10_000),
    requests_per_rep=10,
    clients_per_server=2,
    fanout_sizes=(1_000, 10_000),
    fanout_broadcasts=2,
    memory_sockets=2_000,
)
