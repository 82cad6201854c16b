"""The worker's commands, each alone against the real server: given KEYS and ARGV, the reply and the keys left."""

from __future__ import annotations

import pytest
import redis

from tasks.core.protocol import DATA_MAX_BYTES as DATA_LIMIT
from tests.lua.helpers import NOW, NOW_TEXT, events, job, run, run_order, text


def _claim(conn: redis.Redis, count: int = 1, queues: tuple[str, ...] = ("q",)) -> list:
    args = ["w1", count, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, DATA_LIMIT, 900]
    for _ in queues:
        args += [1, 0, 0]
    return run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", *queues], args)


def _record(
    job_id: str, kind: str, payload: str = "", ttl: int = 500, exc_type: str = "", msg: str = "", token: int = 1
) -> list:
    bucket = "le_5ms" if kind in ("ok", "fail") else ""
    return [job_id, "q", kind, payload, ttl, 0, exc_type, msg, 1.5, "t", bucket, token, "", ""]


def _finish(conn: redis.Redis, *records: list, rq_worker: str | None = None) -> object:
    args = ["w1", NOW, NOW_TEXT, 100, int(NOW // 60)]
    for record in records:
        args += record
    return run(conn, "finish", ["taskrail:claims:w1", *([rq_worker] if rq_worker else [])], args)


def test_claim_moves_a_job_from_its_queue_into_the_claims_and_the_started_registry(conn: redis.Redis) -> None:
    job(conn, "j1")
    job(conn, "j2")
    conn.rpush("rq:queue:q", "j1", "j2")
    reply = _claim(conn)
    assert [row[:2] for row in reply[:-1]] == [[b"j1", b"q"]] and reply[-1] == 0
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["j2"]
    assert conn.hgetall("taskrail:claims:w1") == {b"j1": b"q"}
    assert conn.smembers("taskrail:workers") == {b"w1"}  # a claim holder is always where recovery looks
    assert conn.zscore("rq:wip:q", "j1:w1") == NOW + 60
    assert conn.hget("rq:job:j1", "status") == b"started" and conn.hget("rq:job:j1", "tr_attempts") == b"1"
    assert [(e["event"], e["job"]) for e in events(conn, "q")] == [("started", "j1")]


def test_claim_says_in_one_column_which_rq_callbacks_a_job_has(conn: redis.Redis) -> None:
    job(conn, "none", success_callback_name="", failure_callback_name="")  # RQ writes empty names
    job(conn, "ok", success_callback_name="m.on_ok", success_callback_timeout=60)
    job(conn, "all", success_callback_name="m.a", failure_callback_name="m.b", stopped_callback_name="m.c")
    job(conn, "stop", stopped_callback_name="m.c")
    conn.rpush("rq:queue:q", "none", "ok", "all", "stop")
    rows = _claim(conn, count=4)[:-1]
    assert [(row[0], row[11]) for row in rows] == [(b"none", b""), (b"ok", b"s"), (b"all", b"sft"), (b"stop", b"t")]


def test_claim_skips_paused_queues_and_drops_canceled_jobs(conn: redis.Redis) -> None:
    job(conn, "gone", status="canceled")
    job(conn, "p1", queue="p")
    job(conn, "j1")
    conn.rpush("rq:queue:q", "gone", "j1")
    conn.rpush("rq:queue:p", "p1")
    conn.sadd("taskrail:paused", "p")
    reply = _claim(conn, count=5, queues=("p", "q"))
    assert [row[0] for row in reply[:-1]] == [b"j1"]
    assert conn.llen("rq:queue:q") == 0 and text(conn.lrange("rq:queue:p", 0, -1)) == ["p1"]


def test_claim_sets_a_rate_limited_job_aside_in_its_place_and_says_how_long_to_wait(conn: redis.Redis) -> None:
    for job_id in ("r1", "r2"):
        job(conn, job_id, tr_rate="1/60")
    conn.rpush("rq:queue:q", "r1", "r2")
    first = _claim(conn)
    assert [row[0] for row in first[:-1]] == [b"r1"] and conn.zcard("taskrail:rl:t:t") == 1
    second = _claim(conn)
    assert second[:-1] == [] and 59_000 < second[-1] <= 60_000
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["r2"] and conn.hget("rq:job:r2", "status") == b"queued"


def test_finish_ok_writes_the_result_registry_stats_and_event(conn: redis.Redis) -> None:
    job(conn, "j1")
    conn.rpush("rq:queue:q", "j1")
    _claim(conn)
    assert _finish(conn, _record("j1", "ok", payload="NDI=")) == [1]
    assert conn.hget("rq:job:j1", "status") == b"finished"
    [(_, entry)] = conn.xrange("rq:results:j1")
    assert entry[b"type"] == b"1" and entry[b"return_value"] == b"NDI=" and entry[b"worker_name"] == b"w1"
    assert conn.zscore("rq:finished:q", "j1") == NOW + 500 and 0 < conn.ttl("rq:job:j1") <= 500
    assert conn.zcard("rq:wip:q") == 0 and conn.hlen("taskrail:claims:w1") == 0
    assert conn.hget(f"taskrail:stats:q:{int(NOW // 60)}", "completed") == b"1"
    assert conn.hmget("taskrail:taskstats:t", "completed", "le_5ms") == [b"1", b"1"]
    assert [e["event"] for e in events(conn, "q")] == ["started", "completed"]


def test_finish_fail_writes_the_failed_registry_and_notifies_waiters(conn: redis.Redis) -> None:
    job(conn, "j1")
    conn.rpush("rq:queue:q", "j1")
    _claim(conn)
    conn.set("taskrail:waiters:j1", 1)
    _finish(conn, _record("j1", "fail", payload="tb", ttl=900, exc_type="ValueError", msg="bad"))
    assert conn.hget("rq:job:j1", "status") == b"failed" and conn.hget("rq:job:j1", "tr_exc_type") == b"ValueError"
    assert conn.zscore("rq:failed:q", "j1") == NOW + 900
    assert conn.lrange("taskrail:done:j1", 0, -1) == [b"1"]
    assert events(conn, "q")[-1]["event"] == "failed" and events(conn, "q")[-1]["error"] == "ValueError"


def test_finish_stopped_marks_the_job_stopped_in_the_failed_registry(conn: redis.Redis) -> None:
    job(conn, "j1")
    conn.rpush("rq:queue:q", "j1")
    _claim(conn)
    _finish(conn, _record("j1", "stopped", payload="tb", ttl=900, exc_type="JobStopped", msg="stopped by user"))
    assert conn.hget("rq:job:j1", "status") == b"stopped" and conn.zscore("rq:failed:q", "j1") == NOW + 900
    [(_, entry)] = conn.xrange("rq:results:j1")
    assert entry[b"type"] == b"2" and entry[b"exc_string"] == b"tb"  # RQ records a stopped job's failure
    assert events(conn, "q")[-1]["event"] == "stopped"


def test_finish_counts_rq_worker_statistics_while_the_worker_hash_exists(conn: redis.Redis) -> None:
    for job_id in ("j1", "j2", "j3", "j4"):
        job(conn, job_id)
    conn.rpush("rq:queue:q", "j1", "j2", "j3", "j4")
    _claim(conn, count=4)
    conn.hset("rq:worker:w1", "state", "busy")
    records = [_record("j1", "ok"), _record("j2", "fail"), _record("j3", "retry"), _record("j4", "requeue")]
    assert _finish(conn, *records, rq_worker="rq:worker:w1") == [4]
    stats = conn.hmget("rq:worker:w1", "successful_job_count", "failed_job_count", "total_working_time")
    assert stats == [b"1", b"2", b"0.0045"]  # 1.5 ms for each job that ran to an end; a requeue is not counted
    conn.delete("rq:worker:w1")
    job(conn, "j5")
    conn.rpush("rq:queue:q", "j5")
    _claim(conn)
    _finish(conn, _record("j5", "ok"), rq_worker="rq:worker:w1")
    assert not conn.exists("rq:worker:w1")  # never recreated without its TTL


def test_finish_requeue_puts_the_job_back_at_the_front(conn: redis.Redis) -> None:
    job(conn, "j1")
    job(conn, "j2")
    conn.rpush("rq:queue:q", "j1", "j2")
    _claim(conn)
    _finish(conn, _record("j1", "requeue", exc_type="requeued"))
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["j1", "j2"]
    assert conn.hget("rq:job:j1", "status") == b"queued" and conn.llen("taskrail:wake:q") == 1


def test_finish_ok_of_a_parent_releases_its_dependent(conn: redis.Redis) -> None:
    job(conn, "parent")
    job(conn, "child", status="deferred", tr_pending=1)
    conn.sadd("rq:job:parent:dependents", "child")
    conn.zadd("rq:deferred:q", {"child": NOW})
    conn.rpush("rq:queue:q", "parent")
    _claim(conn)
    _finish(conn, _record("parent", "ok"))
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["child"] and conn.hget("rq:job:child", "status") == b"queued"
    assert conn.zcard("rq:deferred:q") == 0


def test_finish_refuses_a_bad_record_before_writing_anything(conn: redis.Redis) -> None:
    job(conn, "j1")
    conn.rpush("rq:queue:q", "j1")
    _claim(conn)
    with pytest.raises(redis.ResponseError, match="job j2: ttl, retry_at, ms and token must be numbers"):
        _finish(conn, _record("j1", "ok"), [*_record("j2", "ok")[:4], "soon", *_record("j2", "ok")[5:]])
    with pytest.raises(redis.ResponseError, match="records of 14 values"):
        _finish(conn, _record("j1", "ok")[:-1])
    assert conn.hget("rq:job:j1", "status") == b"started" and conn.hlen("taskrail:claims:w1") == 1


def test_heartbeat_extends_held_jobs_and_returns_those_flagged_for_revoke(conn: redis.Redis) -> None:
    conn.hset("taskrail:claims:w1", mapping={"j1": "q", "j2": "q"})
    conn.zadd("rq:wip:q", {"j1:w1": 1, "j2:w1": 1})
    conn.set("taskrail:revoke:j2", 1)
    reply = run(conn, "heartbeat", ["taskrail:hb:w1", "taskrail:claims:w1", "taskrail:workers"], ["w1", 5000, 99])
    assert reply == [b"j2"]
    assert 0 < conn.pttl("taskrail:hb:w1") <= 5000 and conn.smembers("taskrail:workers") == {b"w1"}
    assert conn.zrange("rq:wip:q", 0, -1, withscores=True) == [(b"j1:w1", 99.0), (b"j2:w1", 99.0)]


def _reap(conn: redis.Redis, max_stalled: int) -> list:
    return run(conn, "reap", ["taskrail:workers"], [NOW, NOW_TEXT, 100, int(NOW // 60), max_stalled, 900])


def _dead_worker_holding(conn: redis.Redis, job_id: str) -> None:
    job(conn, job_id, status="started")
    conn.sadd("taskrail:workers", "dead", "alive")
    conn.set("taskrail:hb:alive", 1)
    conn.hset("taskrail:claims:dead", job_id, "q")
    conn.zadd("rq:wip:q", {f"{job_id}:dead": 1})
    conn.hset("rq:worker:dead", "queues", "q")
    conn.sadd("rq:workers", "rq:worker:dead")
    conn.sadd("rq:workers:q", "rq:worker:dead")


def test_reap_requeues_a_dead_workers_job_and_forgets_the_worker(conn: redis.Redis) -> None:
    _dead_worker_holding(conn, "j1")
    conn.rpush("rq:queue:q", "other")
    assert _reap(conn, max_stalled=1) == [b"j1"]
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["j1", "other"]
    assert conn.hget("rq:job:j1", "status") == b"queued" and conn.hget("rq:job:j1", "tr_stalls") == b"1"
    assert conn.smembers("taskrail:workers") == {b"alive"} and not conn.exists("taskrail:claims:dead")
    assert not conn.exists("rq:worker:dead") and conn.scard("rq:workers") == 0 and conn.scard("rq:workers:q") == 0
    assert conn.zcard("rq:wip:q") == 0
    assert [e["event"] for e in events(conn, "q")] == ["stalled", "recovered"]


def test_reap_fails_a_job_that_stalled_too_often(conn: redis.Redis) -> None:
    _dead_worker_holding(conn, "j1")
    assert _reap(conn, max_stalled=0) == [b"j1"]
    assert conn.hget("rq:job:j1", "status") == b"failed" and conn.hget("rq:job:j1", "tr_exc_type") == b"JobStalled"
    assert conn.zscore("rq:failed:q", "j1") == NOW + 900 and conn.llen("rq:queue:q") == 0


def test_promote_moves_due_scheduled_jobs_in_priority_order(conn: redis.Redis) -> None:
    job(conn, "late", status="scheduled")
    job(conn, "due", status="scheduled")
    job(conn, "urgent", status="scheduled", tr_priority=0)
    conn.zadd("rq:scheduled:q", {"due": NOW - 2, "urgent": NOW - 1, "late": NOW + 60})
    assert run(conn, "promote", ["q"], [NOW, NOW_TEXT, 1000]) == 2
    assert run_order(conn) == ["urgent", "due"]
    assert text(conn.zrange("rq:scheduled:q", 0, -1)) == ["late"]
    assert conn.hget("rq:job:due", "status") == b"queued"
    assert conn.smembers("rq:queues") == {b"rq:queue:q", b"rq:queue:q:p0"}
    assert conn.llen("taskrail:wake:q") >= 1


def test_promote_drops_expired_finished_and_failed_entries_up_to_its_limit(conn: redis.Redis) -> None:
    for registry in ("rq:finished:q", "rq:failed:q"):
        conn.zadd(registry, {f"old{i}": NOW - 10 + i for i in range(3)} | {"live": NOW + 60, "kept": float("inf")})
    assert run(conn, "promote", ["q"], [NOW, NOW_TEXT, 2]) == 0  # the limit: 2 per registry and call
    assert text(conn.zrange("rq:finished:q", 0, -1)) == ["old2", "live", "kept"]
    assert run(conn, "promote", ["q"], [NOW, NOW_TEXT, 2]) == 0
    for registry in ("rq:finished:q", "rq:failed:q"):
        assert text(conn.zrange(registry, 0, -1)) == ["live", "kept"]


def test_a_finish_record_has_the_length_the_script_steps_by() -> None:
    from tasks.core.keys import RECORD_FIELDS
    from workers.runner import ClaimedJob, Outcome

    assert len(Outcome(ClaimedJob.orphan("j1", "q"), "requeue", exc_type="requeued").record()) == RECORD_FIELDS


def _completion_record(conn: redis.Redis, job_id: str) -> tuple[int, bytes | None, list[str]]:
    """What counts a completion: result entries of type 1, the task's completed counter, the events."""
    entries = [e for _, e in conn.xrange(f"rq:results:{job_id}") if e[b"type"] == b"1"]
    return len(entries), conn.hget("taskrail:taskstats:t", "completed"), [e["event"] for e in events(conn, "q")]


def test_finish_sent_twice_changes_nothing_the_second_time(conn: redis.Redis) -> None:
    for kind in ("ok", "retry", "requeue"):
        conn.flushdb()
        job(conn, "j1")
        conn.rpush("rq:queue:q", "j1")
        _claim(conn)
        record = _record("j1", kind, ttl=500)
        assert _finish(conn, record) == [1]
        before = {key: conn.dump(key) for key in conn.keys("*") if not key.startswith(b"taskrail:stats:")}
        assert _finish(conn, record) == [0]  # the reply of the first was lost; the worker sends it again
        after = {key: conn.dump(key) for key in conn.keys("*") if not key.startswith(b"taskrail:stats:")}
        assert after == before, kind
    # the last kind was requeue: the id is in its queue once, not twice
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["j1"]


def test_a_settle_from_a_worker_whose_claim_was_recovered_is_rejected(conn: redis.Redis) -> None:
    job(conn, "j1")
    conn.rpush("rq:queue:q", "j1")
    _claim(conn)  # w1 takes it, then looks dead: the leader recovers the job
    assert run(conn, "reap", ["taskrail:workers"], [NOW, NOW_TEXT, 100, int(NOW // 60), 3, 900]) == [b"j1"]
    # another worker claims it, runs it and settles it
    args = ["w2", 1, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, DATA_LIMIT, 900, 1, 0, 0]
    run(conn, "claim", ["taskrail:claims:w2", "taskrail:paused", "q"], args)
    w2 = ["w2", NOW, NOW_TEXT, 100, int(NOW // 60), *_record("j1", "ok", payload="Mg==", token=2)]
    assert run(conn, "finish", ["taskrail:claims:w2"], w2) == [1]
    # the slow first worker wakes up and settles its copy: nothing changes but one event
    assert _finish(conn, _record("j1", "fail", payload="tb", exc_type="ValueError", token=1)) == [0, b"j1"]
    count, completed, names = _completion_record(conn, "j1")
    assert (count, completed) == (1, b"1") and names.count("completed") == 1
    assert names[-1] == "settle_rejected" and conn.zcard("rq:failed:q") == 0
    assert conn.hget("rq:job:j1", "status") == b"finished"
    [(_, entry)] = conn.xrange("rq:results:j1")
    assert entry[b"worker_name"] == b"w2"


def test_a_stale_settle_of_an_earlier_claim_by_the_same_worker_is_rejected(conn: redis.Redis) -> None:
    job(conn, "j1", tr_attempts=3)  # the worker claimed it before (attempt 3), lost it, and claims it again
    conn.rpush("rq:queue:q", "j1")
    _claim(conn)
    assert conn.hget("rq:job:j1", "tr_attempts") == b"4"
    assert _finish(conn, _record("j1", "ok", token=3)) == [0, b"j1"]
    assert conn.hget("rq:job:j1", "status") == b"started" and conn.hlen("taskrail:claims:w1") == 1
    assert _finish(conn, _record("j1", "ok", token=4)) == [1]
    assert conn.hget("rq:job:j1", "status") == b"finished"
