"""What CLAIM reads when it runs rather than takes from its caller: it may be sent ahead, behind a blocking wait."""

from __future__ import annotations

import json

import redis

from tests.lua.helpers import NOW, NOW_TEXT, job, run, text

KEYS = ["taskrail:claims:w1", "taskrail:paused", "q"]
ARGS = ["w1", 5, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, 1000, 900, 1, 0, 0]


def _enqueue(conn: redis.Redis, *ids: str) -> None:
    for job_id in ids:
        job(conn, job_id, tr_task="t")
        conn.rpush("rq:queue:q", job_id)


def test_claim_applies_the_workers_runtime_rate_limits_from_its_key(conn: redis.Redis) -> None:
    _enqueue(conn, "a", "b", "c")
    conn.set("taskrail:rl:o:w1", json.dumps({"t": "1/60"}))
    assert [r[0] for r in run(conn, "claim", KEYS, ARGS)[:-1]] == [b"a"]  # a limited job: a batch of its own
    assert run(conn, "claim", KEYS, ARGS)[-1] > 50_000  # one start a minute: b waits most of it
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["b", "c"]
    conn.set("taskrail:rl:o:w1", json.dumps({"t": ""}))  # limit lifted
    assert [r[0] for r in run(conn, "claim", KEYS, ARGS)[:-1]] == [b"b", b"c"]


def test_claim_takes_nothing_while_rq_is_suspended(conn: redis.Redis) -> None:
    _enqueue(conn, "a")
    conn.set("rq:suspended", 1)
    assert run(conn, "claim", KEYS, ARGS) == [0]
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["a"] and conn.hget("rq:job:a", "status") == b"queued"
    conn.delete("rq:suspended")
    assert run(conn, "claim", KEYS, ARGS)[0][0] == b"a"


def test_claim_takes_nothing_once_the_worker_recorded_its_stop(conn: redis.Redis) -> None:
    _enqueue(conn, "a")
    conn.hset("rq:worker:w1", mapping={"state": "idle", "shutdown_requested_date": NOW_TEXT})
    assert run(conn, "claim", KEYS, ARGS) == [0]  # a claim queued behind the wait, run after the stop
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["a"] and conn.hget("rq:job:a", "status") == b"queued"
    assert conn.hget("rq:worker:w1", "state") == b"idle"
    other = ["taskrail:claims:w2", *KEYS[1:]]
    assert run(conn, "claim", other, ["w2", *ARGS[1:]])[0][0] == b"a"  # another worker's claim is not held
