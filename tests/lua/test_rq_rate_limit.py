"""RQ 3's rate-limit slots through finish (includes/rq_rate_limit.lua): a settled job of RateLimit(key,
concurrency) gives its slot back unless it is queued again, and waiting jobs fill the freed slots."""

from __future__ import annotations

import redis

from tasks.core.protocol import DATA_MAX_BYTES as DATA_LIMIT
from tests.lua.helpers import NOW, NOW_TEXT, job, run, text

LIMIT = {"rate_limit_key": "k", "rate_limit_concurrency": 1}


def _limited(conn: redis.Redis, holder: str, *waiting: str) -> None:
    """``holder`` holds key k's only slot; ``waiting`` wait for it, oldest first (RQ's producer side)."""
    conn.hset("rq:rl:k", "concurrency", 1)
    job(conn, holder, **LIMIT)
    conn.zadd("rq:rl:k:allowed", {holder: NOW})
    for i, job_id in enumerate(waiting):
        job(conn, job_id, status="rate_limited", **LIMIT)
        conn.zadd("rq:rl:k:rate_limited", {job_id: NOW + i})


def _run(conn: redis.Redis, job_id: str, kind: str, **record: object) -> None:
    conn.rpush("rq:queue:q", job_id)
    args = ["w1", 1, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, DATA_LIMIT, 900, 1, 0, 0]
    assert run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", "q"], args)[0][0] == job_id.encode()
    token = int(conn.hget(f"rq:job:{job_id}", "tr_attempts"))
    fields = {"ttl": 500, "retry_at": 0, **record}
    values = [job_id, "q", kind, "", fields["ttl"], fields["retry_at"], "E", "", 1, "t", "", token]
    assert run(conn, "finish", ["taskrail:claims:w1"], ["w1", NOW, NOW_TEXT, 100, int(NOW // 60), *values])[0] == 1


def _allowed(conn: redis.Redis) -> list[str]:
    return text(conn.zrange("rq:rl:k:allowed", 0, -1))


def test_a_finished_job_gives_its_slot_to_the_oldest_waiting_job(conn: redis.Redis) -> None:
    _limited(conn, "a", "b", "c")
    _run(conn, "a", "ok")
    assert _allowed(conn) == ["b"] and text(conn.zrange("rq:rl:k:rate_limited", 0, -1)) == ["c"]
    assert conn.hget("rq:job:b", "status") == b"queued" and text(conn.lrange("rq:queue:q", 0, -1)) == ["b"]
    assert conn.hget("rq:job:c", "status") == b"rate_limited" and conn.llen("taskrail:wake:q") > 0


def test_a_job_deleted_by_its_settle_still_frees_its_slot(conn: redis.Redis) -> None:
    _limited(conn, "a", "b")
    _run(conn, "a", "ok", ttl=0)
    assert not conn.exists("rq:job:a") and _allowed(conn) == ["b"]


def test_a_failed_job_frees_its_slot_and_a_front_job_goes_first(conn: redis.Redis) -> None:
    _limited(conn, "a", "b")
    conn.hset("rq:job:b", "enqueue_at_front", 1)
    _run(conn, "a", "fail")
    conn.rpush("rq:queue:q", "later")
    assert _allowed(conn) == ["b"] and text(conn.lrange("rq:queue:q", 0, -1)) == ["b", "later"]


def test_a_job_queued_again_keeps_its_slot_and_a_scheduled_one_frees_it(conn: redis.Redis) -> None:
    _limited(conn, "a", "b")
    _run(conn, "a", "retry", retry_at=0)  # queued again at once: keeps its slot
    assert _allowed(conn) == ["a"] and conn.hget("rq:job:b", "status") == b"rate_limited"
    conn.lrem("rq:queue:q", 0, "a")
    _run(conn, "a", "retry", retry_at=NOW + 30)  # scheduled: frees it
    assert _allowed(conn) == ["b"]


def test_stale_waiting_entries_are_dropped_and_a_gone_key_promotes_none(conn: redis.Redis) -> None:
    _limited(conn, "a", "gone", "b")
    conn.delete("rq:job:gone")
    _run(conn, "a", "ok")
    assert _allowed(conn) == ["b"] and conn.zcard("rq:rl:k:rate_limited") == 0
    conn.flushdb()
    _limited(conn, "x", "y")
    conn.delete("rq:rl:k")  # its config is gone: concurrency 0
    _run(conn, "x", "ok")
    assert "x" not in _allowed(conn) and conn.hget("rq:job:y", "status") == b"rate_limited"
