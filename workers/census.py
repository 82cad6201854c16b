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
from tasks.core.keys import DEFAULT_PRIORITY
from tasks.core.protocol import RQ_TIME_FORMAT
from tasks.core.registry import all_tasks
from tasks.core.validate import PRIORITY_MAX, PRIORITY_MIN

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
    names = {keys.queue_name(_text(k)) for k in conn.smembers(keys.QUEUES)}
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
            pipe.llen(keys.QUEUE.format(q))
            for state, key in REGISTRIES.items():
                if state in EXPIRING:
                    pipe.zcount(key.format(q), now, "+inf")
                else:
                    pipe.zcard(key.format(q))
            pipe.hmget(keys.STATS.format(q, minute), "completed", "failed")
            pipe.hmget(keys.STATS.format(q, minute - 1), "completed", "failed")
        replies = pipe.execute()
    paused = {_text(p) for p in replies[0]}
    width = 1 + len(REGISTRIES) + 2
    rows = [(q, replies[1 + i * width : 1 + (i + 1) * width]) for i, q in enumerate(names)]
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

    A queue list is in priority order, FIFO within a priority (tasks/core/lua/includes/queue_push.lua),
    so its longest-waiting job is the first of one of the (at most ten) priorities or the head (a job
    put back in front): a few commands per queue, whatever the backlog.
    """
    with conn.pipeline(transaction=False) as pipe:
        for q in queues:
            pipe.llen(keys.QUEUE.format(q))
            pipe.zcard(keys.PRIORITY_INDEX.format(q))
            for level in range(PRIORITY_MIN + 1, PRIORITY_MAX + 2):
                pipe.zcount(keys.PRIORITY_INDEX.format(q), "-inf", f"({level}")
        replies = pipe.execute()
    width = 2 + PRIORITY_MAX + 1 - PRIORITY_MIN
    spots = [(q, pos) for i, q in enumerate(queues) for pos in _level_heads(replies[i * width : (i + 1) * width])]
    with conn.pipeline(transaction=False) as pipe:
        for q, pos in spots:
            pipe.lindex(keys.QUEUE.format(q), pos)
        ids = pipe.execute()
    found = [(q, _text(job_id)) for (q, _), job_id in zip(spots, ids, strict=True) if job_id]
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


def _level_heads(reply: list[Any]) -> set[int]:
    """Positions of the first job of each priority present, and 0: from LLEN, ZCARD and the ZCOUNTs below each."""
    length, indexed, below = int(reply[0]), int(reply[1]), [0, *map(int, reply[2:])]
    plain = max(length - indexed, 0)  # default-priority jobs: not in the index
    heads = {0} if length else set()
    for level in range(PRIORITY_MIN, PRIORITY_MAX + 1):
        i = level - PRIORITY_MIN
        count = below[i + 1] - below[i] + (plain if level == DEFAULT_PRIORITY else 0)
        start = below[i] + (plain if level > DEFAULT_PRIORITY else 0)
        if count and start < length:
            heads.add(start)
    return heads
