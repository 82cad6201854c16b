"""One ``taskrail bench`` run: every workload on every system, repeated, with progress; returns the results."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from tqdm import tqdm

from workers.bench import workloads
from workers.bench.harness import Harness, open_harness
from workers.bench.peers import run_peers
from workers.bench.systems import IO_CONCURRENCY, WORKERS, BenchOptions, System, find_systems

__all__ = ["METRICS", "Metric", "Results", "run_bench"]


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


def run_bench(options: BenchOptions) -> Results:
    """Measure every selected system on every workload; raises BenchError if a run cannot finish."""
    systems = find_systems(options.systems)
    started = time.monotonic()
    with open_harness(options.redis_url, options.out_dir) as harness:
        results = Results(meta=machine_info(harness, options))
        results.systems = {s.key: s.label for s in systems}
        steps = _plan(options, systems)
        with tqdm(total=len(steps), desc="taskrail bench", unit="run", dynamic_ncols=True) as bar:
            for title, step in steps:
                bar.set_postfix_str(title)
                step(harness, results, _job_progress(bar, title))
                bar.update(1)
            if options.peers:
                run_peers(harness, options, results, lambda name: bar.set_postfix_str(f"peer {name}"))
    if not options.peers:
        results.notes.append("Celery, Dramatiq and BullMQ not run: pass --peers (after make bench-peers) to add them")
    results.meta["duration_s"] = round(time.monotonic() - started, 1)
    results.meta["load_average_end"] = os.getloadavg()
    return results


Step = Callable[[Harness, Results, Callable[[int], None]], None]


def _job_progress(bar: tqdm[Any], title: str) -> Callable[[int], None]:
    last = [0.0]

    def show(done: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.5:
            last[0] = now
            bar.set_postfix_str(f"{title}: {done} jobs")

    return show


def _plan(options: BenchOptions, systems: tuple[System, ...]) -> list[tuple[str, Step]]:
    """Every measurement in order; repetitions interleave systems so background noise spreads evenly."""
    runs: dict[tuple[str, str], list[float]] = {}
    steps: list[tuple[str, Step]] = []
    producers = {s.producer: s for s in systems}  # enqueue speed depends on the producer alone

    def record(metric: str, system: System, value: float, jobs: int, results: Results) -> None:
        values = runs.setdefault((metric, system.key), [])
        values.append(value)
        results.add(metric, system.key, list(values), jobs)
        if metric.startswith("enqueue"):  # the same producer serves every system that uses it
            for other in systems:
                if other.producer == system.producer and other is not system:
                    results.add(metric, other.key, list(values), jobs)

    for rep in range(options.repeat):
        for system in producers.values():
            n_one, n_bulk = options.enqueue_jobs, options.jobs

            def one(h: Harness, r: Results, p: Callable[[int], None], s: System = system, n: int = n_one) -> None:
                record("enqueue_one", s, workloads.enqueue_one(h, workloads.make_producer(s, h), n, p), n, r)

            def bulk(h: Harness, r: Results, p: Callable[[int], None], s: System = system, n: int = n_bulk) -> None:
                record("enqueue_bulk", s, workloads.enqueue_bulk(h, workloads.make_producer(s, h), n, p), n, r)

            steps += [(f"enqueue one by one, {system.producer} #{rep + 1}", one),
                      (f"enqueue in bulk, {system.producer} #{rep + 1}", bulk)]  # fmt: skip
    for kind, metric in (("noop", "drain_noop"), ("io", "drain_io")):
        for rep in range(options.repeat):
            for system in systems:

                def drain(h: Harness, r: Results, p: Callable[[int], None], s: System = system, k: str = kind,
                          m: str = metric, i: int = rep) -> None:  # fmt: skip
                    n = s.jobs(options.jobs)
                    record(m, s, workloads.drain(h, s, k, n, f"{m}-{s.key}-{i + 1}", p), n, r)

                steps.append((f"{metric} {system.key} #{rep + 1}", drain))
    for rep in range(options.repeat):
        for system in systems:

            def lat(h: Harness, r: Results, p: Callable[[int], None], s: System = system, i: int = rep) -> None:
                n = options.latency_jobs
                cuts = workloads.latency(h, s, n, options.rate, f"latency-{s.key}-{i + 1}", p)
                for name, value in cuts.items():
                    record(f"latency_{name}", s, value, n, r)

            steps.append((f"latency {system.key} #{rep + 1}", lat))
    for system in (s for s in systems if s.memory):

        def mem(h: Harness, r: Results, p: Callable[[int], None], s: System = system) -> None:
            n = options.memory_jobs
            sampled = workloads.memory(h, s, n, f"memory-{s.key}", p)
            record("memory_start_mb", s, sampled.start_mb, n, r)
            record("memory_end_mb", s, sampled.end_mb, n, r)
            record("memory_drift_pct", s, sampled.drift_pct, n, r)
            r.memory_samples[s.key] = [[done, list(mbs)] for done, mbs in sampled.samples]

        steps.append((f"memory {system.key}", mem))
    return steps


def machine_info(harness: Harness, options: BenchOptions) -> dict[str, Any]:
    """The machine, versions and conditions, so a reader can judge the figures."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": options.command,
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in ("taskrail", "rq", "redis")},
        "server": harness.server_version(),
        "server_source": "REDIS_URL" if options.redis_url else "private server started by the bench (no AOF)",
        "workers_per_system": WORKERS,
        "io_concurrency": IO_CONCURRENCY,
        "options": {k: v for k, v in vars(options).items() if k not in ("out_dir", "redis_url", "command")},
        "load_average_start": os.getloadavg(),
    }


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"
