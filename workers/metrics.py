"""Prometheus metrics read from Redis at scrape time: one collector serves every worker's numbers.

Workers keep their counts in Redis (``taskrail:taskstats:<task>``: completed, failed, retried,
stalled, per-bucket duration counts ``b:<le>`` and ``sum_us``), so any process can expose them:
``taskrail metrics --port N`` or the dashboard's ``/metrics`` through :func:`build_registry`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tasks.core import keys
from workers.census import live_workers, queue_stats
from workers.runner import BUCKET_LABELS, BUCKETS_S

__all__ = ["TaskrailCollector", "build_registry", "duration_percentiles", "percentiles_from_buckets"]

COUNTERS = ("completed", "failed", "retried", "stalled")
_BOUNDS = (*BUCKETS_S, float("inf"))
QUEUE_GAUGES = {  # taskrail_queue_<name>, per queue
    "depth": "Jobs waiting in the queue",
    "oldest_job_age_seconds": "How long the longest-waiting job has waited (whatever its priority)",
    "failed_jobs": "Dead letters kept for the queue",
    "delayed_jobs": "Jobs scheduled for later: countdowns, ETAs and retries in their backoff",
    "running_jobs": "Jobs claimed by a worker and not yet finished",
    "paused": "1 while the queue is paused, else 0",
    "workers": "Live workers taking from the queue",
}


class TaskrailCollector(Collector):
    """Reads counters, duration buckets, queue depths and worker liveness from Redis on each scrape."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("taskrail_redis_up", "1 if the last scrape could read Redis, else 0")
        try:
            metrics = [*self._task_metrics(), *self._queue_metrics(), *self._worker_metrics()]
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _task_metrics(self) -> list[Metric]:
        counters = {
            name: CounterMetricFamily(f"taskrail_jobs_{name}", f"Jobs {name}, per task", labels=["task"])
            for name in COUNTERS
        }
        durations = HistogramMetricFamily(
            "taskrail_job_duration_seconds", "Run time of completed and failed jobs, per task", labels=["task"]
        )
        for task, stats in _task_stats(self.conn).items():
            for name in COUNTERS:
                counters[name].add_metric([task], stats.get(name, 0))
            counts = [stats.get(label, 0) for label in BUCKET_LABELS]
            cumulative, running = [], 0
            for bound, count in zip(_BOUNDS, counts, strict=True):
                running += count
                cumulative.append(("+Inf" if bound == float("inf") else f"{bound:g}", running))
            durations.add_metric([task], cumulative, sum_value=stats.get("sum_us", 0) / 1e6)
        return [*counters.values(), durations]

    def _queue_metrics(self) -> list[Metric]:
        gauges = {
            name: GaugeMetricFamily(f"taskrail_queue_{name}", help_text, labels=["queue"])
            for name, help_text in QUEUE_GAUGES.items()
        }
        for q in queue_stats(self.conn):
            values = {
                "depth": q.counts["waiting"],
                "oldest_job_age_seconds": q.oldest_age_s or 0.0,
                "failed_jobs": q.counts["failed"],
                "delayed_jobs": q.counts["scheduled"],
                "running_jobs": q.counts["started"],
                "paused": int(q.paused),
                "workers": q.workers,
            }
            for name, value in values.items():
                gauges[name].add_metric([q.name], value)
        return list(gauges.values())

    def _worker_metrics(self) -> list[Metric]:
        live = live_workers(self.conn)
        total = GaugeMetricFamily("taskrail_workers", "Live taskrail workers (fresh heartbeat)")
        total.add_metric([], len(live))
        working = GaugeMetricFamily("taskrail_workers_busy", "Live workers holding at least one job")
        working.add_metric([], sum(w.busy for w in live))
        leader = GaugeMetricFamily(
            "taskrail_leader_up", "1 while a worker holds the scheduler and recovery leader lease, else 0"
        )
        leader.add_metric([], int(bool(self.conn.exists(keys.LEADER))))
        fired = GaugeMetricFamily(
            "taskrail_periodic_last_fire_timestamp_seconds",
            "Unix time of the last occurrence each periodic entry fired (or, when new, was first seen)",
            labels=["entry"],
        )
        for entry, at in sorted(self.conn.hgetall(keys.PERIODIC).items()):
            with contextlib.suppress(ValueError):
                fired.add_metric([entry.decode()], float(at))
        return [total, working, leader, fired]


def build_registry(conn: redis.Redis) -> CollectorRegistry:
    """A registry holding only taskrail's collector, for ``make_wsgi_app`` or ``generate_latest``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskrailCollector(conn))
    return registry


def duration_percentiles(conn: redis.Redis, quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
                         ) -> dict[str, tuple[float, ...]]:  # fmt: skip
    """Per task, the run-time percentiles in seconds (p50, p95, p99 by default) estimated from the buckets.

    Tasks that never completed or failed are left out.
    """
    out = {}
    for task, stats in _task_stats(conn).items():
        counts = [stats.get(label, 0) for label in BUCKET_LABELS]
        if sum(counts):
            out[task] = tuple(percentiles_from_buckets(counts, q) for q in quantiles)
    return out


def percentiles_from_buckets(counts: list[int], quantile: float) -> float:
    """Prometheus' ``histogram_quantile`` on per-bucket (not cumulative) counts over ``BUCKETS_S`` and +Inf.

    Linear inside the bucket that holds the rank; a rank in the +Inf bucket gives the highest finite bound.
    """
    total = sum(counts)
    if not total:
        return 0.0
    rank = quantile * total
    below = 0
    for i, count in enumerate(counts):
        if count and below + count >= rank:
            if i >= len(BUCKETS_S):
                return BUCKETS_S[-1]
            lower = BUCKETS_S[i - 1] if i else 0.0
            return lower + (BUCKETS_S[i] - lower) * (rank - below) / count
        below += count
    return BUCKETS_S[-1]


INDEXED = ""  # a member of keys.TASKS saying the index is complete (statistics written before it existed are in)


def _task_stats(conn: Any) -> dict[str, dict[str, int]]:
    # The index the worker scripts keep (tasks/core/lua/includes/task_stats.lua): never a SCAN of the keyspace,
    # but for one, once, on a server whose statistics predate the index.
    members = conn.smembers(keys.TASKS)
    if INDEXED.encode() not in members:
        prefix = keys.TASK_STATS.format("")
        found = [key.decode()[len(prefix) :] for key in conn.scan_iter(prefix + "*", count=1000)]
        conn.sadd(keys.TASKS, INDEXED, *found)
        members = {*members, *(name.encode() for name in found)}
    names = sorted(filter(None, (name.decode() for name in members)))
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(keys.TASK_STATS.format(name))
        replies = pipe.execute()
    out = {}
    for name, raw in zip(names, replies, strict=True):
        if raw:
            out[name] = {k.decode(): int(v) for k, v in raw.items() if v.lstrip(b"-").isdigit()}
    return out
