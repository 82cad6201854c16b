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
    _claim(conn, job_id)
    _settle(conn, job_id, kind, **record)


def _claim(conn: redis.Redis, job_id: str) -> None:
    conn.lpush("rq:queue:q", job_id)
    args = ["w1", 1, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, DATA_LIMIT, 900, 1, 0, 0]
    assert run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", "q"], args)[0][0] == job_id.encode()


def _settle(conn: redis.Redis, job_id: str, kind: str, **record: object) -> None:
    token = int(conn.hget(f"rq:job:{job_id}", "tr_attempts"))
    fields = {"ttl": 500, "retry_at": 0, **record}
    values = [job_id, "q", kind, "", fields["ttl"], fields["retry_at"], "E", "", 1, "t", "", token, "", ""]
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


def _promote(conn: redis.Redis, *due: str) -> int:
    conn.zadd("rq:scheduled:q", {job_id: NOW - 1 for job_id in due})
    return int(run(conn, "promote", ["q"], [NOW, NOW_TEXT, 1000]))


def test_a_due_rate_limited_job_waits_for_a_slot_of_its_key(conn: redis.Redis) -> None:
    """RQ's scheduler enqueues a due job of a RateLimit through the limiter (Queue._enqueue_rate_limited_job)."""
    _limited(conn, "a")
    job(conn, "retried", status="scheduled", ended_at=NOW_TEXT, enqueue_at_front_on_retry=1, **LIMIT)
    assert _promote(conn, "retried") == 1
    assert conn.hget("rq:job:retried", "status") == b"rate_limited" and conn.llen("rq:queue:q") == 0
    assert text(conn.zrange("rq:rl:k:rate_limited", 0, -1)) == ["retried"] and conn.smembers("rq:rl-keys") == {b"k"}
    _claim(conn, "a")
    job(conn, "plain")
    conn.rpush("rq:queue:q", "plain")
    _settle(conn, "a", "ok")  # frees the key's slot: the retried job takes it, at the front
    assert _allowed(conn) == ["retried"] and text(conn.lrange("rq:queue:q", 0, -1)) == ["retried", "plain"]


def test_a_due_job_that_asks_for_the_front_goes_there(conn: redis.Redis) -> None:
    job(conn, "queued")
    conn.rpush("rq:queue:q", "queued")
    job(conn, "retried", status="scheduled", ended_at=NOW_TEXT, enqueue_at_front_on_retry=1)
    job(conn, "never_ran", status="scheduled", enqueue_at_front_on_retry=1)  # RQ: only once it ran
    job(conn, "front", status="scheduled", enqueue_at_front=1)
    assert _promote(conn, "retried", "never_ran", "front") == 3
    order = text(conn.lrange("rq:queue:q", 0, -1))
    assert set(order[:2]) == {"retried", "front"} and order[2:] == ["queued", "never_ran"]
    assert conn.hget("rq:job:front", "status") == b"queued"
