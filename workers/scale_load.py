"""What KEDA scales a queue's workers on: ``GET /scale/<queue>`` of ``taskrail metrics``.

KEDA's ``redis`` trigger sees only the waiting list: busy pods count for nothing, so a scale-down
removes workers in the middle of long jobs, and a paused queue with a backlog still grows to its
maximum. The rendered ScaledObjects use KEDA's ``metrics-api`` trigger on this instead, with
``valueLocation: load`` and ``targetValue`` the queue's ``backlog_per_worker``:

- ``load`` = waiting + claimed (jobs held by workers), so running jobs keep their pods;
- a paused queue reports 0: it shrinks to its ``min`` and stays there until resumed;
- a queue whose rate limit (``TASKRAIL_QUEUE_RATE_LIMITS``) used its whole window reports only its
  claimed jobs: more workers would only wait on the limiter, so it does not grow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import redis

from config.settings import Settings
from tasks.core import keys
from workers.ratelimit import policy_for

__all__ = ["QueueLoad", "queue_load"]


@dataclass(frozen=True)
class QueueLoad:
    """One queue's figures and the load KEDA divides by ``backlog_per_worker``."""

    queue: str
    waiting: int
    claimed: int
    paused: bool
    rate_limited: bool

    @property
    def load(self) -> int:
        if self.paused:
            return 0
        return self.claimed if self.rate_limited else self.waiting + self.claimed

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "load": self.load}


def queue_load(conn: redis.Redis, settings: Settings, queue: str) -> QueueLoad:
    """Two round trips, whatever the backlog; the rate window is read on the server's clock, as the claim does."""
    count, period = policy_for(settings).queue_limits.get(queue, (0, 0.0))
    seconds, micros = conn.time()
    with conn.pipeline(transaction=False) as pipe:
        for key in keys.waiting_lists(queue):  # every priority's list
            pipe.llen(key)
        pipe.zcard(keys.STARTED.format(queue))
        pipe.sismember(keys.PAUSED, queue)
        pipe.zcount(keys.RATE_QUEUE.format(queue), seconds + micros / 1e6 - period, "+inf")
        *lists, claimed, paused, starts = pipe.execute()
    return QueueLoad(queue, sum(lists), int(claimed), bool(paused), bool(count) and int(starts) >= count)
