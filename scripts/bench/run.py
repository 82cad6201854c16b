"""One ``taskrail bench`` run: every workload on every system, repeated, with progress; returns the results."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from tqdm import tqdm

from scripts.bench import peers, workloads
from scripts.bench.harness import Harness, open_harness
from scripts.bench.results import Results
from scripts.bench.systems import IO_CONCURRENCY, WORKERS, BenchOptions, System, find_systems

__all__ = ["run_bench"]


def run_bench(options: BenchOptions) -> Results:
    """Measure every selected system on every workload; raises BenchError if a run cannot finish."""
    chosen = find_systems(options.systems)
    systems = tuple(s for s in chosen if not s.peer or peers.installed(s.family))
    started = time.monotonic()
    with open_harness(options.redis_url, options.out_dir) as harness:
        results = Results(meta=machine_info(harness, options))
        results.systems = {s.key: s.label for s in systems}
        results.fetch = {s.key: s.fetch for s in systems}
        steps = _plan(options, systems, results)
        runs: dict[tuple[str, str], list[float]] = {}
        with tqdm(total=len(steps), desc="taskrail bench", unit="run", dynamic_ncols=True) as bar:
            for step in steps:
                bar.set_postfix_str(step.title)
                for metric, value in step.measure(harness, _job_progress(bar, step.title)).items():
                    values = runs.setdefault((metric, step.system.key), [])
                    values.append(value)
                    # Enqueue speed depends on the producer alone: it stands for every system that uses it.
                    shared = metric.startswith("enqueue")
                    for system in systems if shared else (step.system,):
                        if system.producer == step.system.producer:
                            results.add(metric, system.key, list(values), step.jobs)
                bar.update(1)
    missing = sorted({s.family for s in chosen if s not in systems})
    if missing:
        results.notes.append(f"not installed, skipped: {', '.join(missing)} (make bench-peers installs them)")
    if not any(s.peer for s in chosen):
        results.notes.append("Celery, Dramatiq, BullMQ and Huey not run: pass --peers (after make bench-peers)")
    results.meta["duration_s"] = round(time.monotonic() - started, 1)
    results.meta["load_average_end"] = os.getloadavg()
    return results


Progress = Callable[[int], None]


@dataclass(frozen=True)
class Step:
    """One measurement: it returns figures by metric for ``system``."""

    title: str
    system: System
    jobs: int
    measure: Callable[[Harness, Progress], dict[str, float]]


def _job_progress(bar: tqdm[Any], title: str) -> Progress:
    last = [0.0]

    def show(done: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.5:
            last[0] = now
            bar.set_postfix_str(f"{title}: {done} jobs")

    return show


def _plan(options: BenchOptions, systems: tuple[System, ...], results: Results) -> list[Step]:
    """Every measurement in order; each repetition runs every system (peers too) before the next one starts,
    so background noise spreads evenly over them."""
    steps: list[Step] = []
    producers = {s.producer: s for s in systems}
    one, bulk = options.enqueue_jobs, 4 * options.enqueue_jobs  # the same sizes for every producer
    for rep in range(1, options.repeat + 1):
        for s in producers.values():
            steps.append(Step(f"enqueue one by one, {s.producer} #{rep}", s, one, partial(_enqueue, s, False, one)))
            steps.append(Step(f"enqueue in bulk, {s.producer} #{rep}", s, bulk, partial(_enqueue, s, True, bulk)))
    for kind in ("noop", "io"):
        for rep in range(1, options.repeat + 1):
            for s in systems:
                n, run = s.jobs(kind, options.drain_s), f"drain_{kind}-{s.key}-{rep}"
                steps.append(Step(f"{kind} drain, {s.key} #{rep}", s, n, partial(_drain, s, kind, n, run)))
    for rep in range(1, options.repeat + 1):
        for s in systems:
            n, run = options.latency_jobs, f"latency-{s.key}-{rep}"
            steps.append(Step(f"latency, {s.key} #{rep}", s, n, partial(_latency, s, n, options.rate, run)))
    for s in systems:
        if s.memory:
            n = options.memory_jobs
            steps.append(Step(f"memory, {s.key}", s, n, partial(_memory, s, n, results)))
    return steps


def _enqueue(system: System, bulk: bool, n: int, h: Harness, progress: Progress) -> dict[str, float]:
    metric = "enqueue_bulk" if bulk else "enqueue_one"
    if system.peer:
        rate = peers.peer_enqueue(h, system, bulk, n)
        return {metric: rate} if rate else {}
    producer = workloads.make_producer(system, h)
    if bulk:
        return {metric: workloads.enqueue_bulk(h, producer, n, progress)}
    return {metric: workloads.enqueue_one(h, producer, n, progress)}


def _drain(system: System, kind: str, n: int, run: str, h: Harness, progress: Progress) -> dict[str, float]:
    measure = peers.peer_drain if system.peer else workloads.drain
    return {f"drain_{kind}": measure(h, system, kind, n, run, progress)}


def _latency(system: System, n: int, rate: float, run: str, h: Harness, progress: Progress) -> dict[str, float]:
    if system.peer:
        cuts = peers.peer_latency(h, system, n, rate, run)
    else:
        cuts = workloads.latency(h, system, n, rate, run, progress)
    return {f"latency_{name}": value for name, value in cuts.items()}


def _memory(system: System, n: int, results: Results, h: Harness, progress: Progress) -> dict[str, float]:
    sampled = workloads.memory(h, system, n, f"memory-{system.key}", progress)
    results.memory_samples[system.key] = [[done, list(mbs)] for done, mbs in sampled.samples]
    return {"memory_start_mb": sampled.start_mb, "memory_end_mb": sampled.end_mb, "memory_drift_pct": sampled.drift_pct}


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
        "versions": {**{name: _version(name) for name in ("taskrail", "rq", "redis")}, **peers.peer_versions()},
        "server": harness.server_version(),
        "server_source": "REDIS_URL" if options.redis_url else "a private server the bench started, without AOF",
        "workers_per_system": WORKERS,
        "io_concurrency": IO_CONCURRENCY,
        "options": {k: v for k, v in vars(options).items() if k not in ("out_dir", "redis_url", "command")},
        "keep_up_s": workloads.KEEP_UP_S,
        "load_average_start": os.getloadavg(),
    }


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"
