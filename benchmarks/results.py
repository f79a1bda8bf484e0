"""Samples of a run (one per repetition), their robust summaries, and percentiles."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    frac = pos - low
    return sorted_values[low] * (1 - frac) + sorted_values[high] * frac


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max, spread (max - min) and IQR of one metric over repetitions."""
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "spread": ordered[-1] - ordered[0],
        "iqr": percentile(ordered, 75) - percentile(ordered, 25),
        "n": float(len(ordered)),
    }


@dataclass
class Sample:
    """The metrics of one repetition of one scenario case for one contender."""

    scenario: str
    contender: str
    case: str
    rep: int
    metrics: dict[str, float]


@dataclass
class Results:
    """Everything a run measured, plus notes and skipped contenders."""

    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, scenario: str, contender: str, case: str, rep: int, **metrics: float) -> None:
        self.samples.append(Sample(scenario, contender, case, rep, dict(metrics)))
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:6])
        print(f"  {scenario} {contender} {case} rep {rep}: {shown}", flush=True)

    def cases(self, scenario: str) -> list[tuple[str, str]]:
        """(contender, case) pairs of a scenario, in the order they ran."""
        seen: dict[tuple[str, str], None] = {}
        for s in self.samples:
            if s.scenario == scenario:
                seen[(s.contender, s.case)] = None
        return list(seen)

    def summary(self, scenario: str, contender: str, case: str) -> dict[str, dict[str, float]]:
        """Median/min/max/spread of every metric over the repetitions (empty if none)."""
        reps = [
            s.metrics
            for s in self.samples
            if (s.scenario, s.contender, s.case) == (scenario, contender, case)
        ]
        if not reps:
            return {}
        names = [name for name in reps[0] if all(name in r for r in reps)]
        return {name: summarize([r[name] for r in reps]) for name in names}

    def median(self, scenario: str, contender: str, case: str, metric: str) -> float | None:
        summary = self.summary(scenario, contender, case).get(metric)
        return None if summary is None else summary["median"]

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Results:
        """The inverse of ``to_json`` (summaries are recomputed)."""
        return cls(
            samples=[Sample(**sample) for sample in document["samples"]],
            notes=list(document.get("notes", [])),
            skipped=dict(document.get("skipped", {})),
        )

    def to_json(self) -> dict[str, Any]:
        summaries = {
            f"{scenario}/{contender}/{case}": self.summary(scenario, contender, case)
            for scenario in dict.fromkeys(s.scenario for s in self.samples)
            for contender, case in self.cases(scenario)
        }
        return {
            "samples": [asdict(s) for s in self.samples],
            "summaries": summaries,
            "notes": self.notes,
            "skipped": self.skipped,
        }
