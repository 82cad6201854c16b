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
    fetch: dict[str, str] = field(default_factory=dict)  # key -> what one round trip fetches
    figures: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    memory_samples: dict[str, list[Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, system: str, runs: list[float], jobs: int) -> None:
        self.figures.setdefault(metric, {})[system] = {"median": statistics.median(runs), "runs": runs, "jobs": jobs}

    def median(self, metric: str, system: str) -> float | None:
        figure = self.figures.get(metric, {}).get(system)
        return None if figure is None else float(figure["median"])

    def lagging(self, system: str, keep_up_s: float) -> bool:
        """True when in any latency run the last tenth of jobs started over ``keep_up_s`` after enqueue."""
        runs = self.figures.get("latency_tail", {}).get(system, {}).get("runs", [])
        return any(ms > keep_up_s * 1000 for ms in runs)

    def to_json(self) -> dict[str, Any]:
        metrics = {m.key: {"label": m.label, "unit": m.unit, "higher_is_better": m.higher_is_better} for m in METRICS}
        return {"meta": self.meta, "systems": self.systems, "fetch": self.fetch, "metrics": metrics,
                "figures": self.figures, "memory_samples": self.memory_samples, "notes": self.notes}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        """The results a run wrote with ``to_json`` (e.g. the committed docs/benchmarks.json)."""
        return cls(meta=data["meta"], systems=data["systems"], fetch=data.get("fetch", {}), figures=data["figures"],
                   memory_samples=data.get("memory_samples", {}), notes=data.get("notes", []))  # fmt: skip
