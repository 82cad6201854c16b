"""execution.lua alone against the real server: RQ 3's execution record of a running job, fenced by its
claim, and deleted by the settle that ends the job."""

from __future__ import annotations

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from tests.lua.helpers import NOW, job, run
from tests.lua.test_worker_commands import _claim, _finish, _record


def _execution(conn: redis.Redis, *pairs: object, worker: str = "w1", ttl: int = 60) -> list:
    return run(conn, "execution", [f"taskrail:claims:{worker}"], [worker, NOW, ttl, *pairs])


def _claimed(conn: redis.Redis, job_id: str = "j1") -> None:
    job(conn, job_id)
    conn.rpush("rq:queue:q", job_id)
    _claim(conn)


def test_a_running_job_gets_rqs_execution_record_and_its_settle_deletes_it(conn: redis.Redis) -> None:
    _claimed(conn)
    assert _execution(conn, "j1", 1) == [b"j1"]
    assert conn.hgetall("rq:execution:j1:w1") == {
        b"id": b"w1", b"job_id": b"j1", b"created_at": str(int(NOW)).encode(),
        b"last_heartbeat": str(int(NOW)).encode(), b"worker_name": b"w1",
    }  # fmt: skip
    assert 0 < conn.ttl("rq:execution:j1:w1") <= 60
    assert conn.zscore("rq:executions:j1", "w1") == NOW + 120
    assert conn.smembers("rq:worker:w1:executions") == {b"j1:w1"}
    executions = Job.fetch("j1", connection=conn, serializer=JSONSerializer).get_executions()
    assert [(e.id, e.job_id, e.worker_name) for e in executions] == [("w1", "j1", "w1")]  # as RQ reads it
    assert _finish(conn, _record("j1", "ok")) == [1]
    assert not conn.exists("rq:execution:j1:w1", "rq:executions:j1", "rq:worker:w1:executions")
    assert conn.hget("rq:job:j1", "tr_exec") is None


def test_a_refresh_keeps_created_at_and_moves_last_heartbeat(conn: redis.Redis) -> None:
    _claimed(conn)
    _execution(conn, "j1", 1)
    run(conn, "execution", ["taskrail:claims:w1"], ["w1", NOW + 15, 60, "j1", 1])
    record = conn.hgetall("rq:execution:j1:w1")
    assert record[b"created_at"] == str(int(NOW)).encode() and record[b"last_heartbeat"] == str(int(NOW + 15)).encode()


@pytest.mark.parametrize("token", [2, 0])
def test_no_record_for_a_claim_under_another_token(conn: redis.Redis, token: int) -> None:
    _claimed(conn)
    assert _execution(conn, "j1", token) == []
    assert not conn.exists("rq:execution:j1:w1", "rq:executions:j1", "rq:worker:w1:executions")


def test_no_record_once_the_job_is_settled(conn: redis.Redis) -> None:
    _claimed(conn)
    _finish(conn, _record("j1", "ok"))
    assert _execution(conn, "j1", 1) == []  # the maintenance thread's write arriving after the settle
    assert not conn.exists("rq:execution:j1:w1") and conn.hget("rq:job:j1", "tr_exec") is None


def test_no_record_for_a_job_another_worker_holds(conn: redis.Redis) -> None:
    _claimed(conn)
    assert _execution(conn, "j1", 1, worker="w2") == []


@pytest.mark.parametrize(
    ("args", "error"),
    [(["w1", "soon", 60, "j1", 1], "expected worker, now, ttl > 0"), (["w1", NOW, 60, "j1"], "pairs of job id"),
     (["w1", NOW, 60, "j1", "x"], "job j1: token must be a number"), (["w1", NOW, 0, "j1", 1], "ttl > 0")],
)  # fmt: skip
def test_bad_arguments_are_refused_before_any_write(conn: redis.Redis, args: list, error: str) -> None:
    _claimed(conn)
    with pytest.raises(redis.ResponseError, match=error):
        run(conn, "execution", ["taskrail:claims:w1"], args)
    assert not conn.exists("rq:execution:j1:w1") and conn.hget("rq:job:j1", "tr_exec") is None
