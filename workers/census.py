"""What Redis says about queues and workers: counts per state, live workers, ages, last-minute rates.

One reader for ``taskrail status``, the dashboard, the metrics endpoint and autoscale.

Every figure comes from the structures the worker scripts keep (RQ's queue lists and registries,
``taskrail:stats:<q>:<minute>`` and ``taskrail:taskstats:<task>`` hashes), a few pipelined round
trips per request, never a SCAN.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from tasks.core import keys
from tasks.core.protocol import RQ_TIME_FORMAT
from tasks.core.registry import all_tasks

__all__ = [
    "QueueStats",
    "WorkerInfo",
    "live_workers",
    "oldest_enqueued",
    "oldest_wait_s",
    "parse_rq_time",
    "queue_names",
    "queue_stats",
]

# Registry sorted sets per queue, RQ 3.0 names; "waiting" is the queue list itself.
REGISTRIES = {
    "scheduled": keys.SCHEDULED,
    "started": keys.STARTED,
    "failed": keys.FAILED,
    "finished": keys.FINISHED,
    "deferred": keys.DEFERRED,
    "canceled": keys.CANCELED,
}
# Registries whose score is an expiry time: entries past it belong to jobs that are gone.
EXPIRING = ("failed", "finished", "canceled")


@dataclass(frozen=True)
class WorkerInfo:
    """One live taskrail worker: its name, queues, and whether it holds claimed jobs."""

    name: str
    queues: tuple[str, ...]
    busy: bool


@dataclass(frozen=True)
class QueueStats:
    """One queue as ``GET /api/queues`` shows it."""

    name: str
    counts: dict[str, int]
    paused: bool
    workers: int
    workers_busy: int
    oldest_age_s: float | None
    completed_last_minute: float
    failed_last_minute: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def live_workers(conn: redis.Redis) -> list[WorkerInfo]:
    """Live taskrail workers (fresh heartbeat), sorted by name."""
    names = sorted(_text(n) for n in conn.smembers(keys.WORKERS))
    if not names:
        return []
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(keys.HEARTBEAT.format(name))
            pipe.hget(keys.RQ_WORKER.format(name), "queues")
            pipe.hlen(keys.CLAIMS.format(name))
        replies = pipe.execute()
    found = []
    for i, name in enumerate(names):
        alive, queues, held = replies[3 * i : 3 * i + 3]
        if alive:
            found.append(WorkerInfo(name, tuple(q for q in _text(queues).split(",") if q), bool(held)))
    return found


def queue_names(conn: redis.Redis, live: Iterable[WorkerInfo] = ()) -> list[str]:
    """Known queues: RQ's queue set, paused queues, workers' queues and registered tasks' queues."""
    names = {keys.queue_name(_text(k)) for k in conn.smembers(keys.QUEUES)}  # a priority's list: its queue
    names |= {_text(q) for q in conn.smembers(keys.PAUSED)}
    names |= {q for w in live for q in w.queues}
    names |= {t.options.queue for t in all_tasks().values()}
    return sorted(names)


def queue_stats(conn: redis.Redis, names: list[str] | None = None, now: float | None = None) -> list[QueueStats]:
    """Counts per state, workers, the oldest waiting job's age and last-minute rates, per queue."""
    now = time.time() if now is None else now
    live = live_workers(conn)
    names = queue_names(conn, live) if names is None else names
    minute = int(now // 60)
    with conn.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.PAUSED)
        for q in names:
            for key in keys.waiting_lists(q):  # every priority's list
                pipe.llen(key)
            for state, key in REGISTRIES.items():
                if state in EXPIRING:
                    pipe.zcount(key.format(q), now, "+inf")
                else:
                    pipe.zcard(key.format(q))
            pipe.hmget(keys.STATS.format(q, minute), "completed", "failed")
            pipe.hmget(keys.STATS.format(q, minute - 1), "completed", "failed")
        replies = pipe.execute()
    paused = {_text(p) for p in replies[0]}
    lists = len(keys.waiting_lists(""))
    width = lists + len(REGISTRIES) + 2
    rows = [(q, replies[1 + i * width : 1 + (i + 1) * width]) for i, q in enumerate(names)]
    rows = [(q, [sum(map(int, row[:lists])), *row[lists:]]) for q, row in rows]
    enqueued = oldest_enqueued(conn, [q for q, row in rows if int(row[0])])
    # Sliding one-minute window: this minute so far, plus the share of the previous one still inside it.
    share = 1.0 - (now % 60) / 60
    result = []
    for q, row in rows:
        counts = {"waiting": int(row[0])}
        counts.update({state: int(n) for state, n in zip(REGISTRIES, row[1 : 1 + len(REGISTRIES)], strict=True)})
        this, last = row[-2], row[-1]
        on_q = [w for w in live if q in w.queues]
        age = now - enqueued[q] if q in enqueued else None
        result.append(
            QueueStats(
                name=q,
                counts=counts,
                paused=q in paused,
                workers=len(on_q),
                workers_busy=sum(w.busy for w in on_q),
                oldest_age_s=round(max(age, 0.0), 3) if age is not None else None,
                completed_last_minute=round(int(this[0] or 0) + share * int(last[0] or 0), 2),
                failed_last_minute=round(int(this[1] or 0) + share * int(last[1] or 0), 2),
            )
        )
    return result


def parse_rq_time(text: str) -> float | None:
    """RQ's ``2026-01-01T00:00:00.000000Z`` as epoch seconds, or None when empty or malformed."""
    if not text:
        return None
    try:
        return datetime.strptime(text, RQ_TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def oldest_wait_s(conn: redis.Redis, queue: str, now: float | None = None) -> float | None:
    """Seconds the longest-waiting job of ``queue`` has waited since it was enqueued; None when empty."""
    enqueued = oldest_enqueued(conn, [queue])
    return max((now or time.time()) - enqueued[queue], 0.0) if queue in enqueued else None


def oldest_enqueued(conn: redis.Redis, queues: list[str]) -> dict[str, float]:
    """Per queue, the earliest ``enqueued_at`` of its waiting jobs (queues without one left out).

    Each priority's list is FIFO (tasks/core/lua/includes/queue_push.lua), so a queue's longest-waiting
    job is the head of one of its (ten) lists: two round trips, whatever the backlog.
    """
    with conn.pipeline(transaction=False) as pipe:
        for q in queues:
            for key in keys.waiting_lists(q):
                pipe.lindex(key, 0)
        heads = pipe.execute()
    width = len(heads) // len(queues) if queues else 0
    found = [(queues[i // width], _text(job_id)) for i, job_id in enumerate(heads) if job_id]
    with conn.pipeline(transaction=False) as pipe:
        for _, job_id in found:
            pipe.hget(keys.JOB.format(job_id), "enqueued_at")
        stamps = pipe.execute()
    oldest: dict[str, float] = {}
    for (q, _), stamp in zip(found, stamps, strict=True):
        at = parse_rq_time(_text(stamp))
        if at is not None:
            oldest[q] = min(at, oldest.get(q, at))
    return oldest
