"""The rows of ``taskrail status`` (figures from workers/census.py) and the count of interrupted jobs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis

from tasks.core import keys
from workers.census import queue_stats

__all__ = ["QueueStatus", "count_interrupted", "queue_status"]


@dataclass(frozen=True)
class QueueStatus:
    """One row of the status table."""

    name: str
    waiting: int
    scheduled: int
    running: int
    failed: int
    workers_busy: int
    workers_total: int
    completed_1m: int
    oldest_wait_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_status(conn: redis.Redis, queues: Sequence[str]) -> list[QueueStatus]:
    """One row per queue, in the given (priority) order."""
    return [
        QueueStatus(
            q.name,
            q.counts["waiting"],
            q.counts["scheduled"],
            q.counts["started"],
            q.counts["failed"],
            q.workers_busy,
            q.workers,
            round(q.completed_last_minute),
            q.oldest_age_s,
        )
        for q in queue_stats(conn, list(queues))
    ]


def count_interrupted(conn: redis.Redis, queues: Iterable[str], since_ms: int, workers: set[str]) -> int:
    """Jobs that ``workers`` had to stop at their shutdown deadline since ``since_ms`` (their 'interrupted' events)."""
    count = 0
    for queue in queues:
        start = f"{since_ms}-0"
        while entries := conn.xrange(keys.EVENTS.format(queue), min=start, count=1000):
            for _, fields in entries:
                if fields.get(b"event") == b"interrupted" and fields.get(b"worker", b"").decode() in workers:
                    count += 1
            start = "(" + entries[-1][0].decode()
    return count
