"""What ``taskrail bench`` compares: each system's worker command line, producer and job sizes."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["IO_CONCURRENCY", "QUEUE", "SYSTEMS", "WORKERS", "BenchOptions", "System", "find_systems"]

QUEUE = "bench"
WORKERS = 2  # worker processes per system: one per core of the reference machine
IO_CONCURRENCY = 50  # taskrail's TASKRAIL_CONCURRENCY for the 20 ms I/O workload
RQ_WORKER = str(Path(sys.executable).with_name("rq"))
JSON_SERIALIZER = "rq.serializers.JSONSerializer"


@dataclass(frozen=True)
class System:
    """One worker setup: how to start a worker process and how jobs are enqueued for it.

    ``scale`` and ``io_scale`` shrink the drains of slow systems, so a full run stays in minutes while
    every drain still lasts seconds (a throughput is a rate, comparable whatever the job count).
    """

    key: str
    label: str
    worker_class: str
    producer: str  # "rq" or "taskrail": which client enqueues
    scale: float = 1.0
    io_scale: float = 1.0
    io_env: dict[str, str] = field(default_factory=dict)
    memory: bool = False  # measure resident memory over a long run

    def worker_args(self, url: str, name: str) -> list[str]:
        """The ``rq worker`` command line for one worker process."""
        return [RQ_WORKER, "worker", "-u", url, "-w", self.worker_class, "-S", JSON_SERIALIZER, "-n", name, QUEUE]

    def jobs(self, n: int, kind: str = "noop") -> int:
        """How many jobs this system drains when the fastest drain ``n``."""
        return max(10, int(n * (self.io_scale if kind == "io" else self.scale)))


SYSTEMS = (
    System("rq", "RQ default worker (fork per job)", "rq.Worker", "rq", scale=0.012, io_scale=0.008),
    System("rq_simple", "RQ SimpleWorker", "rq.SimpleWorker", "rq", scale=0.04, io_scale=0.016),
    System(
        "taskrail",
        "taskrail",
        "workers.Worker",
        "taskrail",
        io_scale=0.4,
        io_env={"TASKRAIL_CONCURRENCY": str(IO_CONCURRENCY)},
        memory=True,
    ),
)


@dataclass(frozen=True)
class BenchOptions:
    """Sizes and switches of one run; ``quick`` picks small defaults for each size not given."""

    jobs: int = 50_000  # jobs per no-op drain for the fastest systems (slower ones get System.scale of it)
    enqueue_jobs: int = 5_000  # jobs enqueued one by one; bulk enqueues 4 times as many
    latency_jobs: int = 600
    rate: float = 100.0  # jobs/s for the latency workload
    memory_jobs: int = 100_000
    repeat: int = 3
    systems: tuple[str, ...] = tuple(s.key for s in SYSTEMS)
    peers: bool = False
    out_dir: Path = Path("bench-output")
    redis_url: str | None = None
    command: str = ""

    @classmethod
    def build(cls, *, quick: bool = False, **given: Any) -> BenchOptions:
        """Options from the values ``given`` (None = default); ``quick`` makes the default sizes small."""
        small = {"jobs": 2_000, "enqueue_jobs": 500, "latency_jobs": 100, "memory_jobs": 5_000, "repeat": 1}
        chosen = {k: v for k, v in given.items() if v is not None}
        return cls(**{**small, **chosen}) if quick else cls(**chosen)


def find_systems(keys: tuple[str, ...]) -> tuple[System, ...]:
    """The systems named in ``keys``, in the standard order."""
    return tuple(s for s in SYSTEMS if s.key in keys)
