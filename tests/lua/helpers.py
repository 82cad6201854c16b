"""Small helpers for running one command alone against the real server."""

from __future__ import annotations

from typing import Any

import redis

from tasks.core import keys
from tasks.core.scripting import load_command

NOW = 1_800_000_000.0
NOW_TEXT = "2027-01-15T08:00:00.000000Z"


def run(conn: redis.Redis, name: str, keys: list[Any], args: list[Any]) -> Any:
    """Call the command ``name`` through the loader."""
    return load_command(name)(conn, keys, args)


def events(conn: redis.Redis, queue: str) -> list[dict[str, str]]:
    """The queue's event stream, oldest first, decoded."""
    return [
        {k.decode(): v.decode() for k, v in fields.items()} for _, fields in conn.xrange(f"taskrail:events:{queue}")
    ]


def job(conn: redis.Redis, job_id: str, queue: str = "q", **fields: Any) -> None:
    """A job hash as the producer writes it."""
    base = {"data": "[]", "status": "queued", "origin": queue, "tr_task": "t", "timeout": 60, "result_ttl": 500,
            "failure_ttl": 900}  # fmt: skip
    conn.hset(f"rq:job:{job_id}", mapping={**base, **fields})


def text(values: list[bytes]) -> list[str]:
    return [v.decode() for v in values]


def run_order(conn: redis.Redis, queue: str = "q") -> list[str]:
    """The ids waiting in ``queue``, every priority's list, in the order workers take them."""
    return [i.decode() for key in keys.waiting_lists(queue) for i in conn.lrange(key, 0, -1)]
