"""RQ's own Retry through claim and finish (includes/rq_retry.lua): the claim flags a job with retries
left, finish settles kinds rq_retry and rq_returned as RQ 3's worker does (Job.retry, handle_job_retry)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from tasks.core.protocol import DATA_MAX_BYTES as DATA_LIMIT
from tasks.core.protocol import decode_return_value
from tests.lua.helpers import NOW, NOW_TEXT, job, run, text


def _claim(conn: redis.Redis, job_id: str) -> list[Any]:
    """Claim ``job_id``, alone in its queue; its reply row."""
    conn.rpush("rq:queue:q", job_id)
    args = ["w1", 1, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, DATA_LIMIT, 900, 1, 0, 0]
    rows = run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", "q"], args)
    assert rows[0][0] == job_id.encode() and len(rows[0]) in (12, 14)  # 14: on_success's name and timeout
    return list(rows[0])


def _finish(conn: redis.Redis, job_id: str, kind: str, payload: str = "") -> Any:
    token = int(conn.hget(f"rq:job:{job_id}", "tr_attempts") or 0)
    record = [job_id, "q", kind, payload, 500, 0, "ZeroDivisionError", "boom", 1500, "t", "", token, "", ""]
    return run(
        conn, "finish", ["taskrail:claims:w1", "rq:worker:w1"], ["w1", NOW, NOW_TEXT, 100, int(NOW // 60), *record]
    )


def _spec(max_: int = 1, intervals: list[int] | None = None, at_front: bool = False) -> str:
    return json.dumps({"max": max_, "intervals": intervals or [0], "at_front": at_front})


def _field(conn: redis.Redis, job_id: str, name: str) -> str | None:
    value = conn.hget(f"rq:job:{job_id}", name)
    return value.decode() if value is not None else None


def _results(conn: redis.Redis, job_id: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in conn.xrange(f"rq:results:{job_id}")]


def test_the_claim_flags_a_job_with_rq_retries_left_and_no_other(conn: redis.Redis) -> None:
    job(conn, "plain")
    job(conn, "spent", retries_left=0)
    job(conn, "left", retries_left=2, success_callback_name="m.ok")
    assert _claim(conn, "plain")[11] == b""
    assert _claim(conn, "spent")[11] == b""
    assert _claim(conn, "left")[11] == b"sr"


def test_the_claim_brings_the_on_success_callbacks_name_and_timeout(conn: redis.Redis) -> None:
    job(conn, "default", success_callback_name="m.ok")
    job(conn, "timed", success_callback_name="m.ok", success_callback_timeout=7)
    job(conn, "failure_only", failure_callback_name="m.bad")
    assert _claim(conn, "default")[11:] == [b"s", b"m.ok", b""]  # '': RQ's default timeout
    assert _claim(conn, "timed")[11:] == [b"s", b"m.ok", b"7"]
    assert _claim(conn, "failure_only")[11:] == [b"f"]  # read after its settle, as before


def test_a_retried_failure_is_queued_again_at_the_back_without_a_result(conn: redis.Redis) -> None:
    job(conn, "a", retries_left=2, retry_intervals="[0]")
    _claim(conn, "a")
    conn.rpush("rq:queue:q", "other")
    conn.hset("rq:worker:w1", "failed_job_count", 0)
    assert _finish(conn, "a", "rq_retry") == [1]
    assert _field(conn, "a", "status") == "queued" and _field(conn, "a", "retries_left") == "1"
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["other", "a"]
    assert _results(conn, "a") == [] and not conn.zscore("rq:failed:q", "a")  # RQ writes no result for it
    assert _field(conn, "a", "tr_exc_type") == "ZeroDivisionError"
    assert conn.hget("rq:worker:w1", "failed_job_count") == b"1"  # RQ counts a retry as a failure


def test_enqueue_at_front_on_retry_puts_it_at_the_head(conn: redis.Redis) -> None:
    job(conn, "a", retries_left=1, enqueue_at_front_on_retry=1)
    _claim(conn, "a")
    conn.rpush("rq:queue:q", "other")
    _finish(conn, "a", "rq_retry")
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["a", "other"]


@pytest.mark.parametrize(("left", "wait"), [(3, 10), (2, 20), (1, 30)])
def test_retry_intervals_are_read_as_rq_reads_them(conn: redis.Redis, left: int, wait: int) -> None:
    """RQ's Job.get_retry_interval: intervals[max(len(intervals) - retries_left, 0)]."""
    job(conn, "a", retries_left=left, retry_intervals="[10, 20, 30]")
    _claim(conn, "a")
    _finish(conn, "a", "rq_retry")
    assert _field(conn, "a", "status") == "scheduled" and _field(conn, "a", "retries_left") == str(left - 1)
    assert conn.zscore("rq:scheduled:q", "a") == NOW + wait and conn.llen("rq:queue:q") == 0


def test_a_retry_with_none_left_since_its_claim_fails_the_job(conn: redis.Redis) -> None:
    job(conn, "a", retries_left=1)
    _claim(conn, "a")
    conn.hset("rq:job:a", "retries_left", 0)
    _finish(conn, "a", "rq_retry")
    assert _field(conn, "a", "status") == "failed" and conn.zscore("rq:failed:q", "a") == NOW + 500
    assert _results(conn, "a")[0][b"type"] == b"2"


def test_a_returned_retry_is_retried_until_its_max_then_fails(conn: redis.Redis) -> None:
    job(conn, "a")
    for attempt in (1, 2):
        _claim(conn, "a")
        assert _finish(conn, "a", "rq_returned", _spec(2)) == [1]
        assert _field(conn, "a", "status") == "queued" and _field(conn, "a", "number_of_retries") == str(attempt)
        conn.lrem("rq:queue:q", 0, "a")
    _claim(conn, "a")
    _finish(conn, "a", "rq_returned", _spec(2))
    assert _field(conn, "a", "status") == "failed" and conn.zscore("rq:failed:q", "a") == NOW + 500
    results = _results(conn, "a")
    assert [r[b"type"] for r in results] == [b"4", b"4", b"5"]  # RETRIED, RETRIED, MAX_RETRIES_EXCEEDED
    assert decode_return_value(results[-1][b"return_value"]) == "Unserializable return value"  # RQ's, under JSON
    assert float(results[-1][b"execution_started_at"]) == NOW - 1.5 and b"exc_string" not in results[-1]
    assert 0 < conn.ttl("rq:job:a") <= 500


def test_a_returned_retry_with_an_interval_is_scheduled_and_can_ask_for_the_front(conn: redis.Redis) -> None:
    job(conn, "a")
    _claim(conn, "a")
    _finish(conn, "a", "rq_returned", _spec(3, [5, 7], at_front=True))
    assert _field(conn, "a", "status") == "scheduled" and conn.zscore("rq:scheduled:q", "a") == NOW + 5
    assert _field(conn, "a", "enqueue_at_front_on_retry") == "1"
    conn.zrem("rq:scheduled:q", "a")
    _claim(conn, "a")
    conn.rpush("rq:queue:q", "other")
    _finish(conn, "a", "rq_returned", _spec(3, [0]))  # the flag stays once set, as RQ's `or`
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["a", "other"]


@pytest.mark.parametrize(
    "payload",
    ["not json", json.dumps({"max": 0, "intervals": [], "at_front": False}),
     json.dumps({"max": 1, "intervals": [-1], "at_front": False}), json.dumps({"max": 1, "intervals": [1]})],
)  # fmt: skip
def test_a_bad_returned_retry_payload_is_refused_before_any_write(conn: redis.Redis, payload: str) -> None:
    job(conn, "a")
    _claim(conn, "a")
    with pytest.raises(redis.ResponseError, match="rq_returned payload must be JSON"):
        _finish(conn, "a", "rq_returned", payload)
    assert _field(conn, "a", "status") == "started" and conn.hexists("taskrail:claims:w1", "a")


def test_the_claim_flags_a_job_with_rq_repeats_left(conn: redis.Redis) -> None:
    job(conn, "spent", repeats_left=0)
    job(conn, "left", repeats_left=1, retries_left=1)
    assert _claim(conn, "spent")[11] == b""
    assert _claim(conn, "left")[11] == b"rp"


def test_a_repeat_keeps_the_result_and_queues_the_job_again(conn: redis.Redis) -> None:
    job(conn, "a", repeats_left=2)
    _claim(conn, "a")
    conn.rpush("rq:queue:q", "other")
    assert _finish(conn, "a", "rq_repeat", "IjEi") == [1]
    assert _field(conn, "a", "status") == "queued" and _field(conn, "a", "repeats_left") == "1"
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["other", "a"]
    assert _results(conn, "a")[0][b"type"] == b"1" and conn.zscore("rq:finished:q", "a") == NOW + 500
    assert conn.ttl("rq:job:a") == -1  # RQ does not expire a job that repeats
    assert conn.hget("rq:worker:w1", "successful_job_count") is None  # no such worker hash: nothing created


def test_repeat_intervals_are_consumed_from_the_head(conn: redis.Redis) -> None:
    job(conn, "a", repeats_left=3, repeat_intervals="[5, 10]")
    for wait, rest in ((5, "[10]"), (10, "[10]")):
        conn.zrem("rq:scheduled:q", "a")
        _claim(conn, "a")
        _finish(conn, "a", "rq_repeat")
        assert _field(conn, "a", "status") == "scheduled" and conn.zscore("rq:scheduled:q", "a") == NOW + wait
        assert json.loads(_field(conn, "a", "repeat_intervals") or "") == json.loads(rest)
    assert _field(conn, "a", "repeats_left") == "1"


def test_a_repeat_with_none_left_since_its_claim_finishes_the_job(conn: redis.Redis) -> None:
    job(conn, "a", repeats_left=1)
    _claim(conn, "a")
    conn.hset("rq:job:a", "repeats_left", 0)
    _finish(conn, "a", "rq_repeat")
    assert _field(conn, "a", "status") == "finished" and conn.llen("rq:queue:q") == 0
    assert 0 < conn.ttl("rq:job:a") <= 500
