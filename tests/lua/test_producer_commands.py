"""The producer's commands, each alone against the real server: given KEYS and ARGV, the reply and the keys left."""

from __future__ import annotations

import redis

from tests.lua.helpers import NOW, NOW_TEXT, events, job, run, text

ENQUEUE_KEYS = ["rq:job:j1", "rq:queue:q", "rq:queues", "rq:scheduled:q", "taskrail:wake:q", "taskrail:events:q"]


def _enqueue(conn: redis.Redis, job_id: str, run_at: float = 0, unique: str = "", mode: str = "", **fields: str):
    keys = [f"rq:job:{job_id}", *ENQUEUE_KEYS[1:], unique, "taskrail:levels:q"]
    flat = [item for pair in {"status": "queued", "origin": "q", "tr_task": "t", **fields}.items() for item in pair]
    return run(conn, "enqueue", keys, [job_id, run_at, 100, 60, mode, "t", *flat])


def test_enqueue_writes_the_job_hash_its_queue_a_wake_token_and_an_event(conn: redis.Redis) -> None:
    assert _enqueue(conn, "j1", data="[1]") == b"j1"
    assert conn.hget("rq:job:j1", "data") == b"[1]" and conn.hget("rq:job:j1", "status") == b"queued"
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["j1"] and conn.smembers("rq:queues") == {b"rq:queue:q"}
    assert conn.lrange("taskrail:wake:q", 0, -1) == [b"1"]
    assert [(e["event"], e["job"], e["task"]) for e in events(conn, "q")] == [("enqueued", "j1", "t")]


def test_enqueue_puts_a_prioritized_job_in_its_priority_list_and_schedules_a_delayed_job(conn: redis.Redis) -> None:
    _enqueue(conn, "plain")
    _enqueue(conn, "urgent", tr_priority="0")
    _enqueue(conn, "five", tr_priority="5")  # the default priority: RQ's own list
    _enqueue(conn, "later", run_at=NOW + 60)
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["plain", "five"]
    assert text(conn.lrange("rq:queue:q:p0", 0, -1)) == ["urgent"]
    assert conn.zrange("taskrail:levels:q", 0, -1, withscores=True) == [(b"0", 0.0)]
    assert conn.smembers("rq:queues") == {b"rq:queue:q", b"rq:queue:q:p0"}  # RQ's tools list it
    assert conn.zscore("rq:scheduled:q", "later") == NOW + 60


def test_enqueue_takes_a_new_jobs_priority_from_its_fields_and_a_reused_ids_from_its_hash(conn: redis.Redis) -> None:
    _enqueue(conn, "new", created_at=NOW_TEXT, tr_priority="1")
    conn.hset("rq:job:old", mapping={"created_at": "2020-01-01T00:00:00.000000Z", "tr_priority": "2"})
    _enqueue(
        conn, "old", created_at=NOW_TEXT
    )  # an id written before: its hash keeps tr_priority 2, and so does its place
    assert text(conn.lrange("rq:queue:q:p1", 0, -1)) == ["new"] and text(conn.lrange("rq:queue:q:p2", 0, -1)) == ["old"]
    assert conn.llen("rq:queue:q") == 0


def test_enqueue_keeps_at_most_1000_wake_up_tokens(conn: redis.Redis) -> None:
    for i in range(1003):
        _enqueue(conn, f"j{i}")
    assert conn.llen("taskrail:wake:q") == 1000 and conn.llen("rq:queue:q") == 1003


def test_enqueue_with_a_live_unique_key_returns_its_holder(conn: redis.Redis) -> None:
    assert _enqueue(conn, "j1", unique="taskrail:unique:k", mode="skip") == b"j1"
    assert _enqueue(conn, "j2", unique="taskrail:unique:k", mode="skip") == b"j1"
    assert not conn.exists("rq:job:j2") and conn.llen("rq:queue:q") == 1
    assert conn.get("taskrail:unique:k") == b"j1" and 0 < conn.ttl("taskrail:unique:k") <= 60


def test_enqueue_many_writes_every_job_with_the_shared_fields(conn: redis.Redis) -> None:
    keys = ["rq:queue:q", "rq:queues", "taskrail:wake:q", "taskrail:events:q"]
    shared = ["status", "queued", "origin", "q"]
    args = [100, "t", len(shared), *shared, "a", "[1]", "t(1)", "b", "[2]", "t(2)"]
    assert run(conn, "enqueue_many", keys, args) == 2
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["a", "b"]
    assert conn.hgetall("rq:job:b") == {b"data": b"[2]", b"description": b"t(2)", b"status": b"queued", b"origin": b"q"}
    assert [e["job"] for e in events(conn, "q")] == ["a", "b"] and conn.llen("taskrail:wake:q") == 1


def test_requeue_dead_puts_a_failed_job_back_fresh(conn: redis.Redis) -> None:
    job(conn, "j1", status="failed", tr_retries=3, tr_stalls=1, tr_exc_type="ValueError", ended_at=NOW_TEXT)
    conn.expire("rq:job:j1", 100)
    conn.zadd("rq:failed:q", {"j1": NOW})
    keys = ["rq:failed:q", "rq:job:j1", "rq:queue:q", "rq:queues", "taskrail:wake:q", "taskrail:events:q",
            "rq:results:j1", "taskrail:done:j1"]  # fmt: skip
    assert run(conn, "requeue_dead", keys, ["j1", NOW_TEXT, 100]) == 1
    assert conn.hget("rq:job:j1", "status") == b"queued" and conn.hget("rq:job:j1", "tr_retries") == b"0"
    assert not conn.hexists("rq:job:j1", "tr_exc_type") and conn.ttl("rq:job:j1") == -1
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["j1"] and conn.zcard("rq:failed:q") == 0
    assert events(conn, "q")[-1]["event"] == "requeued"
    assert run(conn, "requeue_dead", keys, ["j1", NOW_TEXT, 100]) == 0  # no longer a dead letter


def _record(job_id: str, state: str, parents: list[str], shared: list[str] | None) -> list:
    own = ["data", "[]", "origin", "q"]
    head = [job_id, "q", state, 0, -1, "t", len(parents), *parents]
    return [*head, -1 if shared is None else len(shared), *(shared or []), len(own), *own]


def _flow(conn: redis.Redis) -> None:
    shared = ["tr_task", "t", "failure_ttl", "900"]
    args = [100, NOW, *_record("child", "deferred", ["parent"], shared), *_record("parent", "queued", [], None)]
    assert run(conn, "flow_enqueue", [], args) == 1
    conn.hset("rq:job:parent", "status", "queued")
    conn.hset("rq:job:child", "status", "deferred")


def test_flow_enqueue_writes_the_dependent_deferred_and_the_parent_queued(conn: redis.Redis) -> None:
    _flow(conn)
    assert conn.hget("rq:job:child", "tr_pending") == b"1" and conn.hget("rq:job:child", "tr_task") == b"t"
    assert conn.hget("rq:job:parent", "tr_task") == b"t"  # shared fields reused by the next record
    assert conn.smembers("rq:job:parent:dependents") == {b"child"}
    assert conn.smembers("rq:job::child:dependencies") == {b"parent"}
    assert text(conn.zrange("rq:deferred:q", 0, -1)) == ["child"]
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["parent"] and conn.llen("taskrail:wake:q") == 1
    assert [(e["event"], e["job"]) for e in events(conn, "q")] == [("enqueued", "parent")]


def test_flow_revoke_cancels_a_waiting_job_and_what_waits_on_it(conn: redis.Redis) -> None:
    _flow(conn)
    job(conn, "running", status="started")
    reply = run(conn, "flow_revoke", [], [NOW, NOW_TEXT, 100, "parent", "running", "nobody"])
    assert text(reply) == ["canceled", "stopping", "missing"]
    assert conn.hget("rq:job:parent", "status") == b"canceled" and conn.hget("rq:job:child", "status") == b"canceled"
    assert conn.llen("rq:queue:q") == 0 and conn.zcard("rq:deferred:q") == 0
    assert set(text(conn.zrange("rq:canceled:q", 0, -1))) == {"parent", "child"}
    assert conn.exists("taskrail:revoke:running")
    assert [(e["event"], e["job"]) for e in events(conn, "q")][-2:] == [("revoked", "parent"), ("revoked", "child")]
