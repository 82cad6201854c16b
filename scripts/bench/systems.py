"""What ``taskrail bench`` compares: each system in each configuration, how it fetches jobs, and the run's options.

Every peer runs at its default and at its best configuration for the workloads, as columns of their own;
taskrail runs one job at a time (``concurrency 1``), in threads and in ``pool: asyncio``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["IO_CONCURRENCY", "MIN_DRAIN", "QUEUE", "SYSTEMS", "WORKERS", "BenchOptions", "System", "find_systems"]

QUEUE = "bench"
WORKERS = 2  # worker processes per system: one per core of the reference machine
IO_CONCURRENCY = 50  # jobs at a time per process for the threaded configurations
MIN_DRAIN = 20  # jobs: a drain never shrinks below this, however slow the system
RQ_WORKER = str(Path(sys.executable).with_name("rq"))
JSON_SERIALIZER = "rq.serializers.JSONSerializer"
NATIVE = ("rq", "taskrail")  # the families this process enqueues for itself; the others are peers


@dataclass(frozen=True)
class System:
    """One worker setup of one family (``rq``, ``taskrail``, ``celery``, ``dramatiq``, ``bullmq``, ``huey``).

    ``rates`` are the jobs/s (no-op, 20 ms I/O) the setup reached on the reference machine: they size each
    drain to last about ``BenchOptions.drain_s`` seconds, so a slow system is not timed on a handful of
    jobs and a fast one not on its start-up.
    """

    key: str
    label: str
    family: str
    fetch: str  # what one round trip to the server fetches, as stated in the table
    rates: tuple[float, float]
    worker_class: str = ""  # rq and taskrail: the rq worker class
    concurrency: int = 1  # jobs at a time per worker process (threads, or BullMQ's async concurrency)
    pool: str = ""  # celery: prefork | threads; huey: process | thread; taskrail: asyncio (else threads)
    memory: bool = False  # measure resident memory over a long run

    @property
    def peer(self) -> bool:
        return self.family not in NATIVE

    @property
    def producer(self) -> str:
        """Which client enqueues: every configuration of a family shares its producer's figures."""
        return self.family

    def worker_args(self, url: str, name: str) -> list[str]:
        """The ``rq worker`` command line for one worker process (rq and taskrail)."""
        return [RQ_WORKER, "worker", "-u", url, "-w", self.worker_class, "-S", JSON_SERIALIZER, "-n", name, QUEUE]

    def worker_env(self) -> dict[str, str]:
        if self.family != "taskrail":
            return {}
        if self.pool == "asyncio":  # the same jobs as async def tasks (tests/tasks_async_bench.py)
            return {"TASKRAIL_CONCURRENCY": str(self.concurrency), "TASKRAIL_POOL": "asyncio",
                    "TASKRAIL_IMPORTS": "tests.tasks_async_bench"}  # fmt: skip
        return {"TASKRAIL_CONCURRENCY": str(self.concurrency)}

    def jobs(self, kind: str, seconds: float) -> int:
        """How many ``kind`` jobs make a drain of about ``seconds`` on the reference machine."""
        rate = self.rates[1] if kind == "io" else self.rates[0]
        return max(MIN_DRAIN, int(rate * seconds))


_C = IO_CONCURRENCY
SYSTEMS = (
    System("rq", "RQ worker (fork per job)", "rq", "1 job (LMOVE)", (60, 40), "rq.Worker"),
    System("rq_simple", "RQ SimpleWorker", "rq", "1 job (LMOVE)", (270, 75), "rq.SimpleWorker"),
    System(
        "taskrail",
        "taskrail, concurrency 1",
        "taskrail",
        "up to 32 jobs (20 ms of work)",
        (9000, 95),
        "workers.Worker",
        memory=True,
    ),
    System(
        "taskrail_threads",
        f"taskrail, {_C} threads",
        "taskrail",
        "up to 32 jobs (20 ms of work)",
        (8000, 2000),
        "workers.Worker",
        concurrency=_C,
    ),
    System(
        "taskrail_async",
        f"taskrail asyncio, concurrency {_C}",
        "taskrail",
        f"up to {_C} free slots + 32 (one stream per process)",
        (8000, 4000),
        "workers.Worker",
        concurrency=_C,
        pool="asyncio",
    ),
    System(
        "celery",
        "Celery prefork (default)",
        "celery",
        "1 message (BRPOP), 4 per process held",
        (500, 95),
        pool="prefork",
        concurrency=WORKERS,
    ),
    System(
        "celery_threads",
        f"Celery threads {_C}",
        "celery",
        f"1 message (BRPOP), {4 * _C} per process held",
        (500, 800),
        pool="threads",
        concurrency=_C,
    ),
    System(
        "dramatiq",
        "Dramatiq 8 threads (default)",
        "dramatiq",
        "up to 16 messages (prefetch 2 x threads)",
        (500, 700),
        concurrency=8,
    ),
    System(
        "dramatiq_threads",
        f"Dramatiq {_C} threads",
        "dramatiq",
        f"up to {2 * _C} messages (prefetch 2 x threads)",
        (500, 2000),
        concurrency=_C,
    ),
    System("bullmq", "BullMQ concurrency 1 (default)", "bullmq", "1 job (moveToActive)", (3000, 95)),
    System(
        "bullmq_concurrent",
        f"BullMQ concurrency {_C}",
        "bullmq",
        "1 job (moveToActive), up to 50 in flight",
        (3000, 3000),
        concurrency=_C,
    ),
    System("huey", "Huey processes", "huey", "1 task (BRPOP)", (500, 95), pool="process", concurrency=1),
    System("huey_threads", f"Huey {_C} threads", "huey", "1 task (BRPOP)", (500, 1500), pool="thread", concurrency=_C),
)


@dataclass(frozen=True)
class BenchOptions:
    """Sizes and switches of one run; ``quick`` picks small defaults for each size not given."""

    drain_s: float = 5.0  # each drain lasts about this long (its job count: System.rates x drain_s)
    enqueue_jobs: int = 5_000  # jobs enqueued one by one (after 100 untimed); bulk 4 times as many, every producer
    latency_jobs: int = 200
    rate: float = 20.0  # jobs/s for the latency workload: a rate every system here can sustain
    memory_jobs: int = 100_000
    repeat: int = 3
    systems: tuple[str, ...] = tuple(s.key for s in SYSTEMS if not s.peer)
    peers: bool = False
    out_dir: Path = Path("bench-output")
    redis_url: str | None = None
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # options of added workloads (other modules' flags)

    @classmethod
    def build(cls, *, quick: bool = False, **given: Any) -> BenchOptions:
        """Options from the values ``given`` (None = default); ``quick`` makes the default sizes small."""
        small = {"drain_s": 1.5, "enqueue_jobs": 1_000, "latency_jobs": 60, "memory_jobs": 5_000, "repeat": 1}
        chosen = {k: v for k, v in given.items() if v is not None}
        if chosen.get("peers") and "systems" not in chosen:
            chosen["systems"] = tuple(s.key for s in SYSTEMS)
        return cls(**{**small, **chosen}) if quick else cls(**chosen)


def find_systems(keys: tuple[str, ...]) -> tuple[System, ...]:
    """The systems named in ``keys``, in the standard order."""
    return tuple(s for s in SYSTEMS if s.key in keys)
