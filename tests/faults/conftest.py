"""Fault-suite fixtures: the figures recorder (``own_redis`` is in tests/conftest.py).

``nox -s faults`` sets ``SOCKETIO_REDIS_RELIABILITY`` to a path; every figure a test
records with ``reliability.record(...)`` is then written there as a Markdown table
(``RELIABILITY.md``). Under ``nox -s tests`` the figures are only checked, not written.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Figure:
    key: str
    value: float
    unit: str
    what: str
    bound: str


@dataclass
class Reliability:
    """Measured figures of the fault suite, by key (the last recording wins)."""

    figures: dict[str, Figure] = field(default_factory=dict)

    def record(self, key: str, value: float, unit: str, what: str, bound: str = "") -> None:
        """Keep one measured figure; ``bound`` is the documented limit it is held to."""
        self.figures[key] = Figure(key, value, unit, what, bound)

    def markdown(self) -> str:
        lines = [
            "# Reliability: measured behaviour under faults",
            "",
            "Written by `nox -s faults` from the fault suite (`tests/faults/`), which kills,",
            "freezes and corrupts real `redis-server` processes and real peers. The suite",
            "asserts the bounds in the last column; the values are what this run measured.",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}.",
            "",
            "| figure | measured | bound the suite asserts |",
            "| --- | --- | --- |",
        ]
        for fig in sorted(self.figures.values(), key=lambda f: f.key):
            value = f"{fig.value:.3g}" if isinstance(fig.value, float) else str(fig.value)
            lines.append(f"| {fig.what} | {value} {fig.unit} | {fig.bound or '–'} |")
        return "\n".join(lines) + "\n"


_RELIABILITY = Reliability()


@pytest.fixture(scope="session")
def reliability() -> Iterator[Reliability]:
    """Where tests record measured figures; written to RELIABILITY.md by ``nox -s faults``."""
    yield _RELIABILITY
    out = os.environ.get("SOCKETIO_REDIS_RELIABILITY")
    if out and _RELIABILITY.figures:
        Path(out).write_text(_RELIABILITY.markdown())
