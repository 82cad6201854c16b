"""What the dashboard's charts read beyond workers/census.py: completed and failed per minute."""

from __future__ import annotations

import time
from typing import Any

import redis

from tasks.core import keys

__all__ = ["rate_series"]


def rate_series(conn: redis.Redis, names: list[str], minutes: int, now: float | None = None) -> dict[str, Any]:
    """Completed and failed per minute for the last ``minutes`` minutes (oldest first), per queue."""
    now = time.time() if now is None else now
    last = int(now // 60)
    span = list(range(last - minutes + 1, last + 1))
    with conn.pipeline(transaction=False) as pipe:
        for q in names:
            for minute in span:
                pipe.hmget(keys.STATS.format(q, minute), "completed", "failed")
        replies = pipe.execute()
    series: dict[str, dict[str, list[int]]] = {}
    for i, q in enumerate(names):
        chunk = replies[i * len(span) : (i + 1) * len(span)]
        series[q] = {"completed": [int(c or 0) for c, _ in chunk], "failed": [int(f or 0) for _, f in chunk]}
    return {"minutes": [m * 60 for m in span], "queues": series}
