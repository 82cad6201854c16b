"""Queue figures for ``taskrail status`` and autoscale, read from RQ's and taskrail's keys in one round trip."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from tasks import keys
from tasks.protocol import RQ_TIME_FORMAT

__all__ = ["QueueStatus", "count_interrupted", "live_worker_queues", "oldest_wait_s", "queue_status"]


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


def oldest_wait_s(conn: redis.Redis, queue: str, now: float | None = None) -> float | None:
    """Seconds the job at the head of ``queue`` has waited since it was enqueued; None when empty."""
    job_id = conn.lindex(keys.QUEUE.format(queue), 0)
    if job_id is None:
        return None
    raw = conn.hget(keys.JOB.format(job_id.decode()), "enqueued_at")
    return _age(raw, now or time.time())


def _age(raw: bytes | None, now: float) -> float | None:
    if not raw:
        return None
    try:
        stamp = datetime.strptime(raw.decode(), RQ_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, now - stamp.timestamp())


def live_worker_queues(conn: redis.Redis) -> dict[str, tuple[tuple[str, ...], bool]]:
    """Live taskrail workers: name -> (queues it listens to, busy)."""
    names = sorted(n.decode() for n in conn.smembers(keys.WORKERS))
    if not names:
        return {}
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(keys.HEARTBEAT.format(name))
            pipe.hget(f"rq:worker:{name}", "queues")
            pipe.hlen(keys.CLAIMS.format(name))
        replies = pipe.execute()
    workers = {}
    for i, name in enumerate(names):
        alive, queues, claims = replies[3 * i : 3 * i + 3]
        if alive:
            listens = tuple(q for q in (queues or b"").decode().split(",") if q)
            workers[name] = (listens, claims > 0)
    return workers


def queue_status(conn: redis.Redis, queues: Sequence[str]) -> list[QueueStatus]:
    """One row per queue, in the given (priority) order."""
    now = time.time()
    minute = int(now // 60)
    with conn.pipeline(transaction=False) as pipe:
        for q in queues:
            pipe.llen(keys.QUEUE.format(q))
            pipe.zcard(keys.SCHEDULED.format(q))
            pipe.zcount(keys.STARTED.format(q), now, "+inf")
            pipe.zcount(keys.FAILED.format(q), now, "+inf")
            pipe.hget(keys.STATS.format(q, minute), "completed")
            pipe.hget(keys.STATS.format(q, minute - 1), "completed")
            pipe.lindex(keys.QUEUE.format(q), 0)
        replies = pipe.execute()
    workers = live_worker_queues(conn)
    rows = []
    for i, q in enumerate(queues):
        waiting, scheduled, running, failed, this_min, last_min, head = replies[7 * i : 7 * i + 7]
        # The last 60 s: this minute so far plus the part of the previous minute still inside the window.
        completed = int(this_min or 0) + round(int(last_min or 0) * (1 - (now % 60) / 60))
        age = None
        if head is not None:
            age = _age(conn.hget(keys.JOB.format(head.decode()), "enqueued_at"), now)
        serving = [busy for listens, busy in workers.values() if q in listens]
        rows.append(QueueStatus(q, waiting, scheduled, running, failed, sum(serving), len(serving), completed, age))
    return rows


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
