"""CLAIM and FINISH over a batch, alone against the real server: a batch writes each shared key once
(includes/tally.lua) and ends in exactly the state the same jobs settled one by one would."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.lua.helpers import NOW, NOW_TEXT, events, job, run, text

CLAIM_KEYS = ["taskrail:claims:w1", "taskrail:paused"]


def _claim(conn: redis.Redis, queues: list[str], count: int, score: Any = NOW + 60) -> list:
    per_queue = [v for _ in queues for v in (1, 0, 0)]
    args = ["w1", count, NOW, NOW_TEXT, score, 100, "strict", 0, 0, 100_000, 900, *per_queue]
    return run(conn, "claim", [*CLAIM_KEYS, *queues], args)


def _finish(conn: redis.Redis, rows: list[tuple[str, str, str]]) -> Any:
    """Settle (id, queue, kind) rows in one call, each with the token its claim gave it."""
    records = []
    for job_id, queue, kind in rows:
        token = int(conn.hget(f"rq:job:{job_id}", "tr_attempts") or 0)
        records += [job_id, queue, kind, "", 500, 0, "", "", 1.5, "t", "le_5ms", token, NOW_TEXT, NOW_TEXT]
    args = ["w1", NOW, NOW_TEXT, 100, int(NOW // 60), *records]
    return run(conn, "finish", ["taskrail:claims:w1", "rq:worker:w1"], args)


def _enqueue(conn: redis.Redis, queue: str, ids: list[str]) -> None:
    for job_id in ids:
        job(conn, job_id, queue)
        conn.rpush(f"rq:queue:{queue}", job_id)


def _calls(conn: redis.Redis) -> dict[str, int]:
    return {name[len("cmdstat_") :]: v["calls"] for name, v in conn.info("commandstats").items()}


def test_a_batch_of_50_ends_as_50_settled_one_by_one_writing_each_shared_key_once(conn: redis.Redis) -> None:
    ids = [f"j{i}" for i in range(50)]
    _enqueue(conn, "q", ids[:30])
    _enqueue(conn, "r", ids[30:])
    conn.config_resetstat()
    rows = _claim(conn, ["q", "r"], 50)
    assert [r[0].decode() for r in rows[:-1]] == ids
    assert conn.zcard("rq:wip:q") == 30 and conn.zcard("rq:wip:r") == 20
    assert conn.hlen("taskrail:claims:w1") == 50
    claimed = _calls(conn)
    assert claimed["zadd"] == 2 and claimed["hset"] == 50 + 1  # each job's status; the claims hash once

    conn.config_resetstat()
    assert _finish(conn, [(i, "q" if n < 30 else "r", "ok") for n, i in enumerate(ids)]) == [50]
    settled = _calls(conn)
    # one ZREM (started) and one ZADD (finished) per queue, the claims' HMGET and HDEL once, one EXISTS for
    # the batch's waiters, dependents and dependencies (and one for the RQ worker hash)
    assert settled["zrem"] == 2 and settled["zadd"] == 2 and settled["hdel"] == 1 and settled["exists"] == 2
    assert settled["hmget"] == 50 + 1
    assert not conn.exists("rq:wip:q", "rq:wip:r", "taskrail:claims:w1")
    assert conn.zcard("rq:finished:q") == 30 and conn.zcard("rq:finished:r") == 20
    assert conn.zscore("rq:finished:q", "j0") == NOW + 500
    assert {conn.hget(f"rq:job:{i}", "status") for i in ids} == {b"finished"}
    minute = int(NOW // 60)
    assert conn.hget(f"taskrail:stats:q:{minute}", "completed") == b"30"
    assert conn.hget(f"taskrail:stats:r:{minute}", "completed") == b"20"
    assert 0 < conn.ttl(f"taskrail:stats:q:{minute}") <= 7200 and 0 < conn.ttl(f"taskrail:stats:r:{minute}") <= 7200
    assert conn.hgetall("taskrail:taskstats:t") == {b"completed": b"50", b"le_5ms": b"50", b"sum_us": b"75000"}
    assert conn.smembers("taskrail:tasks") == {b"t"}
    assert [e["event"] for e in events(conn, "q")].count("completed") == 30


def test_a_batch_naming_a_job_twice_settles_it_once(conn: redis.Redis) -> None:
    _enqueue(conn, "q", ["a", "b"])
    _claim(conn, ["q"], 2)
    assert _finish(conn, [("a", "q", "ok"), ("a", "q", "fail"), ("b", "q", "ok")]) == [2]
    assert conn.hget("rq:job:a", "status") == b"finished"
    assert conn.hget("taskrail:taskstats:t", "completed") == b"2" and not conn.hexists("taskrail:taskstats:t", "failed")
    assert "settle_rejected" not in [e["event"] for e in events(conn, "q")]


def test_in_a_batch_only_the_job_with_a_waiter_notifies_and_only_the_parent_releases_its_dependent(
    conn: redis.Redis,
) -> None:
    _enqueue(conn, "q", ["plain", "waited", "parent"])
    job(conn, "child", status="deferred")
    conn.zadd("rq:deferred:q", {"child": NOW})
    conn.sadd("rq:job:parent:dependents", "child")
    conn.sadd("rq:job::child:dependencies", "parent")
    conn.set("taskrail:waiters:waited", 1)
    _claim(conn, ["q"], 3)
    assert _finish(conn, [("plain", "q", "ok"), ("waited", "q", "ok"), ("parent", "q", "ok")]) == [3]
    assert conn.lrange("taskrail:done:waited", 0, -1) == [b"1"] and not conn.exists("taskrail:done:plain")
    assert conn.hget("rq:job:child", "status") == b"queued" and text(conn.lrange("rq:queue:q", 0, -1)) == ["child"]


def test_a_batch_with_a_refused_settle_applies_the_others_and_counts_only_them(conn: redis.Redis) -> None:
    _enqueue(conn, "q", ["a", "b"])
    _claim(conn, ["q"], 2)
    conn.hdel("taskrail:claims:w1", "b")  # taken away: the worker looked dead
    assert _finish(conn, [("a", "q", "ok"), ("b", "q", "ok")]) == [1, b"b"]
    assert conn.hget("rq:job:b", "status") == b"started" and conn.hget("taskrail:taskstats:t", "completed") == b"1"
    assert [e["event"] for e in events(conn, "q")][-2:] == ["completed", "settle_rejected"]


def test_claim_refuses_a_score_that_is_not_a_number_before_popping(conn: redis.Redis) -> None:
    _enqueue(conn, "q", ["a"])
    with pytest.raises(redis.ResponseError, match=r"ARGV\[5\].*must be a number"):
        _claim(conn, ["q"], 1, score="soon")
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["a"] and conn.hget("rq:job:a", "status") == b"queued"
