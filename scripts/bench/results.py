"""What a bench run measured: the metrics it reports and the figures by metric and system."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["METRICS", "Metric", "Results"]


@dataclass(frozen=True)
class Metric:
    """One row of the table."""

    key: str
    label: str
    unit: str
    higher_is_better: bool = True


METRICS = (
    Metric("enqueue_one", "enqueue one by one", "jobs/s"),
    Metric("enqueue_bulk", "enqueue in bulk", "jobs/s"),
    Metric("drain_noop", "no-op drain", "jobs/s"),
    Metric("drain_io", "20 ms I/O drain", "jobs/s"),
    Metric("latency_p50", "latency p50", "ms", False),
    Metric("latency_p95", "latency p95", "ms", False),
    Metric("latency_p99", "latency p99", "ms", False),
    Metric("memory_start_mb", "worker memory at start", "MB", False),
    Metric("memory_end_mb", "worker memory at end", "MB", False),
    Metric("memory_drift_pct", "worker memory drift", "%", False),
)


@dataclass
class Results:
    """Figures by metric and system: each a median over repetitions, with the runs and job counts."""

    meta: dict[str, Any]
    systems: dict[str, str] = field(default_factory=dict)  # key -> label
    figures: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    memory_samples: dict[str, list[Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, system: str, runs: list[float], jobs: int) -> None:
        self.figures.setdefault(metric, {})[system] = {"median": statistics.median(runs), "runs": runs, "jobs": jobs}

    def to_json(self) -> dict[str, Any]:
        metrics = {m.key: {"label": m.label, "unit": m.unit, "higher_is_better": m.higher_is_better} for m in METRICS}
        return {"meta": self.meta, "systems": self.systems, "metrics": metrics, "figures": self.figures,
                "memory_samples": self.memory_samples, "notes": self.notes}  # fmt: skip
