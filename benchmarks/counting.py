"""Counting received events against a target, with optional latency samples.

Shared by the load clients (``loadclient.py``) and the raw redis-py subscriber
(``server.py --contender raw``): ``arm(total)`` before a run, ``hit()`` per event,
``wait(timeout)`` for the last one, then ``stats()`` for the latency percentiles (asked
for after the CPU snapshot, so that computing them is not billed to the run).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from .stats import percentile


class Counter:
    """Events received since the last ``arm``."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.latency = False
        self.t_last = 0.0
        self.latencies: list[float] = []
        self._done: asyncio.Event = asyncio.Event()

    def arm(self, total: int, latency: bool = False) -> None:
        """Start counting from zero towards ``total`` events."""
        self.count = 0
        self.target = total
        self.latency = latency
        self.t_last = 0.0
        self.latencies = []
        self._done = asyncio.Event()

    def hit(self) -> None:
        """One event arrived."""
        self.count += 1
        if self.count == self.target:
            self.t_last = time.time()
            self._done.set()

    def hit_at(self, sent_at: float) -> None:
        """One event sent at ``sent_at`` (``time.time()`` of the sender) arrived."""
        self.latencies.append(time.time() - sent_at)
        self.hit()

    async def wait(self, timeout: float) -> dict[str, Any]:
        """Wait for the target; report what arrived and when the last one did."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout)
        complete = self._done.is_set()
        return {
            "received": self.count,
            "expected": self.target,
            "complete": complete,
            "t_last": self.t_last if complete else time.time(),
        }

    def stats(self) -> dict[str, Any]:
        """Latency percentiles in seconds (empty without latency samples)."""
        values = sorted(self.latencies)
        if not values:
            return {"samples": 0}
        return {
            "samples": len(values),
            "p50": percentile(values, 50),
            "p90": percentile(values, 90),
            "p99": percentile(values, 99),
            "max": values[-1],
        }
