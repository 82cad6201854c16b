"""release_dependents with plain RQ dependents (enqueued with depends_on, no tr_pending), through finish
and flow_revoke: RQ's rules (Job.dependencies_are_met), not the canvas policies."""

from __future__ import annotations

import redis

from tasks.core.protocol import DATA_MAX_BYTES as DATA_LIMIT
from tests.lua.helpers import NOW, NOW_TEXT, job, run, text


def _parents(conn: redis.Redis, child: str, *parents: str, **fields: object) -> None:
    """``child`` waits on ``parents`` as RQ's Queue.enqueue(depends_on=...) records it."""
    job(conn, child, status="deferred", **fields)
    for parent in parents:
        conn.sadd(f"rq:job:{parent}:dependents", child)
        conn.sadd(f"rq:job::{child}:dependencies", parent)
    conn.zadd("rq:deferred:q", {child: NOW})


def _run(conn: redis.Redis, job_id: str, kind: str) -> None:
    """Claim ``job_id`` (alone in its queue) and settle it as ``kind``."""
    _claim(conn, job_id)
    _settle(conn, job_id, kind)


def _claim(conn: redis.Redis, job_id: str) -> None:
    conn.rpush("rq:queue:q", job_id)
    args = ["w1", 1, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, DATA_LIMIT, 900, 1, 0, 0]
    assert run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", "q"], args)[0][0] == job_id.encode()


def _settle(conn: redis.Redis, job_id: str, kind: str) -> None:
    token = int(conn.hget(f"rq:job:{job_id}", "tr_attempts") or 0)
    record = [job_id, "q", kind, "", 500, 0, "E" if kind == "fail" else "", "", 1.5, "t", "", token, "", ""]
    assert run(conn, "finish", ["taskrail:claims:w1"], ["w1", NOW, NOW_TEXT, 100, int(NOW // 60), *record])[0] == 1


def _status(conn: redis.Redis, job_id: str) -> str:
    return conn.hget(f"rq:job:{job_id}", "status").decode()


def test_a_dependent_of_two_parents_is_queued_only_when_both_finished(conn: redis.Redis) -> None:
    job(conn, "a")
    job(conn, "b")
    _parents(conn, "c", "a", "b")
    _run(conn, "a", "ok")
    assert _status(conn, "c") == "deferred" and conn.zscore("rq:deferred:q", "c") == NOW
    assert conn.llen("rq:queue:q") == 0 and conn.smembers("rq:job:b:dependents") == {b"c"}
    _run(conn, "b", "ok")
    assert _status(conn, "c") == "queued" and text(conn.lrange("rq:queue:q", 0, -1)) == ["c"]
    assert conn.zcard("rq:deferred:q") == 0 and not conn.exists("rq:job:b:dependents")


def test_a_parent_whose_hash_is_gone_counts_as_finished(conn: redis.Redis) -> None:
    job(conn, "a")
    _parents(conn, "c", "a", "gone")
    _run(conn, "a", "ok")
    assert _status(conn, "c") == "queued"


def test_allow_failure_runs_the_dependent_after_its_parent_failed(conn: redis.Redis) -> None:
    job(conn, "a")
    _parents(conn, "allows", "a", allow_dependency_failures=1)
    _parents(conn, "strict", "a", allow_dependency_failures=0)
    _run(conn, "a", "fail")
    assert _status(conn, "allows") == "queued" and text(conn.lrange("rq:queue:q", 0, -1)) == ["allows"]
    assert _status(conn, "strict") == "deferred"


def test_allow_failure_still_waits_for_an_unfinished_parent(conn: redis.Redis) -> None:
    job(conn, "a")
    job(conn, "b")
    _parents(conn, "c", "a", "b", allow_dependency_failures=1)
    _run(conn, "a", "fail")
    assert _status(conn, "c") == "deferred"
    _run(conn, "b", "ok")
    assert _status(conn, "c") == "queued"


def test_a_failed_parent_leaves_its_dependent_deferred_until_it_is_requeued_and_finishes(conn: redis.Redis) -> None:
    job(conn, "a")
    _parents(conn, "c", "a")
    _run(conn, "a", "fail")
    assert _status(conn, "c") == "deferred" and conn.zscore("rq:deferred:q", "c") == NOW
    assert conn.smembers("rq:job:a:dependents") == {b"c"} and not conn.exists("rq:results:c")
    conn.hset("rq:job:a", "status", "queued")  # as `rq requeue` does
    conn.zrem("rq:failed:q", "a")
    _run(conn, "a", "ok")
    assert _status(conn, "c") == "queued"


def test_a_parent_canceled_while_it_ran_leaves_its_dependent_deferred(conn: redis.Redis) -> None:
    job(conn, "a")
    _parents(conn, "c", "a")
    _claim(conn, "a")
    conn.hset("rq:job:a", "status", "canceled")  # rq's Job.cancel() while a worker runs it
    _settle(conn, "a", "ok")
    assert _status(conn, "c") == "deferred" and conn.llen("rq:queue:q") == 0


def test_revoking_a_queued_parent_leaves_plain_dependents_deferred_and_cancels_flow_members(
    conn: redis.Redis,
) -> None:
    job(conn, "a")
    conn.rpush("rq:queue:q", "a")
    _parents(conn, "plain", "a")
    _parents(conn, "member", "a", tr_pending=1)
    assert run(conn, "flow_revoke", [], [NOW, NOW_TEXT, 100, "a"]) == [b"canceled"]
    assert _status(conn, "a") == "canceled"
    assert _status(conn, "plain") == "deferred" and conn.zscore("rq:deferred:q", "plain") == NOW
    assert _status(conn, "member") == "canceled"


def test_a_failed_parent_still_fails_a_flow_member_under_policy_fail(conn: redis.Redis) -> None:
    job(conn, "a")
    _parents(conn, "member", "a", tr_pending=1)
    _parents(conn, "plain", "a")
    _run(conn, "a", "fail")
    assert _status(conn, "member") == "failed" and _status(conn, "plain") == "deferred"


def test_a_dependent_canceled_while_it_waited_leaves_its_own_dependents_deferred(conn: redis.Redis) -> None:
    job(conn, "a")
    _parents(conn, "b", "a")
    _parents(conn, "c", "b")
    conn.hset("rq:job:b", "status", "canceled")  # rq's Job.cancel() of a deferred job
    conn.zrem("rq:deferred:q", "b")
    _run(conn, "a", "ok")
    assert _status(conn, "b") == "canceled" and _status(conn, "c") == "deferred"
    assert conn.llen("rq:queue:q") == 0


def test_a_dependent_with_enqueue_at_front_goes_to_the_head_of_its_queue(conn: redis.Redis) -> None:
    job(conn, "a")
    _parents(conn, "back", "a")
    _parents(conn, "front", "a", enqueue_at_front=1)
    _claim(conn, "a")
    conn.rpush("rq:queue:q", "waiting")
    _settle(conn, "a", "ok")
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["front", "waiting", "back"]
    assert _status(conn, "front") == "queued" and conn.zcard("rq:deferred:q") == 0
