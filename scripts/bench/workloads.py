"""The workloads: enqueue one by one and in bulk, no-op and 20 ms I/O drains, latency at a fixed rate, memory.

Each function runs one measurement on a clean database and returns plain numbers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rq import Queue
from rq.serializers import JSONSerializer

from config.errors import BenchError
from config.settings import load_settings
from scripts.bench.harness import Harness, load_module
from scripts.bench.systems import QUEUE, System
from tasks.core import keys
from tasks.core.client import Client

__all__ = [
    "KEEP_UP_S",
    "Memory",
    "Producer",
    "drain",
    "enqueue_bulk",
    "enqueue_one",
    "latency",
    "latency_figures",
    "make_producer",
    "memory",
]

Progress = Callable[[int], None]
KEEP_UP_S = 1.0  # jobs started this long after their enqueue at the end of a latency run: a backlog grew


class Producer(Protocol):
    """Enqueues bench jobs of one kind ("noop", "io", "latency") the way a user of the system would."""

    def one(self, kind: str, args: tuple[Any, ...]) -> None: ...
    def many(self, kind: str, arg_list: Sequence[tuple[Any, ...]]) -> None: ...


class RQProducer:
    """Plain RQ: ``Queue.enqueue`` and ``Queue.enqueue_many``, JSON-serialized."""

    def __init__(self, harness: Harness) -> None:
        self.queue = Queue(QUEUE, connection=harness.conn, serializer=JSONSerializer)
        self.funcs = load_module("tests.bench_jobs").PLAIN

    def one(self, kind: str, args: tuple[Any, ...]) -> None:
        self.queue.enqueue(self.funcs[kind], *args)

    def many(self, kind: str, arg_list: Sequence[tuple[Any, ...]]) -> None:
        func = self.funcs[kind]
        self.queue.enqueue_many([Queue.prepare_data(func, args=args) for args in arg_list])


class TaskrailProducer:
    """taskrail: ``Task.apply_async`` (what ``delay`` calls) and ``Task.enqueue_many``."""

    def __init__(self, harness: Harness) -> None:
        self.client = Client(load_settings({"REDIS_URL": harness.url}), harness.conn)
        self.tasks = load_module("tests.bench_tasks").TASKS

    def one(self, kind: str, args: tuple[Any, ...]) -> None:
        self.tasks[kind].apply_async(args, client=self.client)

    def many(self, kind: str, arg_list: Sequence[tuple[Any, ...]]) -> None:
        self.tasks[kind].enqueue_many(arg_list, client=self.client)


# Untimed calls before the timed ones, by every producer (the peers' drivers make as many): the rate of a producer
# that has been running, as a web app's has, not that of its first call (a connection, a script to load).
WARM_UP_CALLS = 100


def make_producer(system: System, harness: Harness) -> Producer:
    return TaskrailProducer(harness) if system.producer == "taskrail" else RQProducer(harness)


def enqueue_one(harness: Harness, producer: Producer, n: int, progress: Progress) -> float:
    """Jobs/s enqueued one call at a time from one producer, after WARM_UP_CALLS untimed ones."""
    harness.flush()
    for _ in range(min(WARM_UP_CALLS, n)):
        producer.one("noop", ())
    start = time.perf_counter()
    for i in range(n):
        producer.one("noop", ())
        if i % 200 == 0:
            progress(i)
    return n / (time.perf_counter() - start)


def enqueue_bulk(harness: Harness, producer: Producer, n: int, progress: Progress) -> float:
    """Jobs/s enqueued with one bulk call."""
    harness.flush()
    start = time.perf_counter()
    producer.many("noop", [()] * n)
    return n / (time.perf_counter() - start)


def drain(harness: Harness, system: System, kind: str, n: int, run: str, progress: Progress) -> float:
    """Jobs/s for two workers to empty a queue of ``n`` pre-enqueued jobs.

    The queue is set aside while the workers start, so their start-up is not timed: the clock
    starts when the full queue reappears and stops when the last job is in RQ's finished registry.
    """
    harness.flush()
    make_producer(system, harness).many(kind, [()] * n)
    conn, hold = harness.conn, harness.queue_key + ":bench-hold"
    conn.rename(harness.queue_key, hold)
    conn.delete(keys.WAKE.format(QUEUE))
    harness.start_workers(system, run)
    start = time.monotonic()
    with conn.pipeline(transaction=False) as pipe:
        pipe.rename(hold, harness.queue_key)
        pipe.lpush(keys.WAKE.format(QUEUE), *[1] * min(n, 1000))  # as a producer leaves them for idle workers
        pipe.execute()
    end = harness.wait_done(n, progress)
    harness.stop_and_recount(n)
    check_exactly_once(harness, system, kind, n)
    return n / (end - start)


def check_exactly_once(harness: Harness, system: System, kind: str, n: int) -> None:
    """taskrail counts every completion: more than ``n`` means a job ran twice."""
    if system.producer != "taskrail":
        return
    task = {"noop": "bench.noop", "io": "bench.sleep_io", "latency": "bench.record_start"}[kind]
    completed = int(harness.conn.hget(keys.TASK_STATS.format(task), "completed") or 0)
    if completed != n:
        raise BenchError(
            f"{system.label}: {n} {kind} jobs enqueued, {completed} completions counted (exactly once broken)"
        )


def latency(harness: Harness, system: System, n: int, rate: float, run: str, progress: Progress) -> dict[str, float]:
    """p50/p95/p99 milliseconds from enqueue to start, with a producer enqueueing ``rate`` jobs/s."""
    harness.flush()
    producer = make_producer(system, harness)
    harness.start_workers(system, run)
    start = time.perf_counter()
    for i in range(n):
        ahead = start + i / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)  # pacing the producer, not waiting for an outcome
        producer.one("latency", (time.time(),))
        if i % 20 == 0:
            progress(i)
    harness.wait_done(n, progress)
    harness.stop_and_recount(n)
    check_exactly_once(harness, system, "latency", n)
    return latency_figures(system.label, harness.conn.lrange("bench:latency", 0, -1), n)


def latency_figures(label: str, recorded: Sequence[bytes | str | float], n: int) -> dict[str, float]:
    """p50/p95/p99 ms over all ``n`` jobs, and ``tail``: the median ms of the last tenth to start.

    A ``tail`` above ``KEEP_UP_S`` means the system could not keep up with the rate: its backlog grew.

    Raises:
        BenchError: not every job recorded its start.
    """
    samples = [float(x) * 1000 for x in recorded]
    if len(samples) != n:
        raise BenchError(f"{label}: {n} latency jobs finished but {len(samples)} recorded their start")
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    tail = statistics.median(samples[-max(1, n // 10) :])
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "tail": tail}


@dataclass(frozen=True)
class Memory:
    """Resident memory of each worker process, sampled as jobs completed."""

    samples: tuple[tuple[int, tuple[float, ...]], ...]  # (jobs done, MB per worker)

    @property
    def start_mb(self) -> float:
        return max(self.samples[0][1])

    @property
    def end_mb(self) -> float:
        return max(self.samples[-1][1])

    @property
    def drift_pct(self) -> float:
        """The largest change of any worker's memory from its first sample, in percent."""
        first = self.samples[0][1]
        return max(abs(mb - base) / base * 100 for _, mbs in self.samples for mb, base in zip(mbs, first, strict=True))


def memory(harness: Harness, system: System, n: int, run: str, progress: Progress) -> Memory:
    """Run ``n`` no-op jobs and sample each worker's VmRSS every ``n / 50`` jobs."""
    harness.flush()
    producer = make_producer(system, harness)
    for i in range(0, n, 10_000):
        producer.many("noop", [()] * min(10_000, n - i))
    pids = harness.start_workers(system, run)
    every = max(1, n // 50)
    samples: list[tuple[int, tuple[float, ...]]] = []

    def sample(done: int) -> None:
        progress(done)
        if done >= (len(samples) + 1) * every or (done >= n and samples and samples[-1][0] < n):
            samples.append((done, tuple(rss_mb(pid) for pid in pids)))

    harness.wait_done(n, sample)
    harness.stop_and_recount(n)
    check_exactly_once(harness, system, "noop", n)
    return Memory(tuple(samples))


def rss_mb(pid: int) -> float:
    """A process's resident set size in MB, from /proc."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise BenchError(f"/proc/{pid}/status has no VmRSS line: is the worker still running?")
